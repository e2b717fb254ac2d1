"""The `count-feed` stage: smtp-auth.events → <app_id>-count-feed, a fetch at a time.

faust hands an agent one message at a time through several asyncio tasks, which caps it at
a few thousand messages a second on a small machine (bench/RESULTS.md), while the counters
themselves count tens of thousands of events a second. So a plain consumer (group
`<app_id>-count-feed`) reads the events topic a fetch at a time and forwards each fetch, as
a few framed messages, to the same partition number of an internal topic that the `count`
agent reads; faust keeps what it is good at (the table, its changelog and recovery, the
assignment the live views gather by) and sees a message per fetch instead of per event.

Exactly once, although every hop is at-least-once: a frame carries each event's own offset
in the events topic, and a counter entry remembers the last offset applied to it (pipeline/
live/count.py), so a frame forwarded twice (a crash before the commit, a rebalance) counts
nothing twice. Offsets are committed only after the broker has acknowledged the frames.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Iterator, Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from pipeline.ingest.kafka import backlog, client_options, committing_consumer
from pipeline.settings import Settings

log = logging.getLogger(__name__)

VERSION = b"\x01"
_HEAD = struct.Struct(">qII")  # offset, key length, value length
FRAME_BYTES = 512 * 1024  # well under the broker's default 1 MB message limit
# An event this large is no canonical event (the sink dead-letters it from the events
# topic); it is forwarded without its value, so the frame stays under the limit.
MAX_EVENT_BYTES = FRAME_BYTES - 1024

Record = tuple[int, bytes, bytes]  # offset in the events topic, key, value


def frames(records: Sequence[Record], limit: int = FRAME_BYTES) -> Iterator[bytes]:
    """Pack records into frames of at most about `limit` bytes each (one record at least)."""
    parts: list[bytes] = [VERSION]
    size = 1
    for offset, key, value in records:
        if len(value) > MAX_EVENT_BYTES:
            value = b""
        if len(key) > MAX_EVENT_BYTES:
            key = b""
        n = _HEAD.size + len(key) + len(value)
        if size > 1 and size + n > limit:
            yield b"".join(parts)
            parts, size = [VERSION], 1
        parts += (_HEAD.pack(offset, len(key), len(value)), key, value)
        size += n
    if size > 1:
        yield b"".join(parts)


def unframe(frame: bytes) -> Iterator[Record]:
    """The records of one frame; a frame of another version raises ValueError."""
    if frame[:1] != VERSION:
        raise ValueError(f"unknown count-feed frame version {frame[:1]!r}")
    view = memoryview(frame)
    pos, end = 1, len(frame)
    while pos < end:
        offset, klen, vlen = _HEAD.unpack_from(view, pos)
        pos += _HEAD.size
        key = bytes(view[pos:pos + klen])
        pos += klen
        value = bytes(view[pos:pos + vlen])
        pos += vlen
        if pos > end:
            raise ValueError("truncated count-feed frame")
        yield offset, key, value


class CountFeed:
    def __init__(self, settings: Settings, topic: str) -> None:
        self.settings = settings
        self.topic = topic  # the internal topic the count agent reads
        self._consumer: AIOKafkaConsumer | None = None
        self._done: dict[TopicPartition, int] = {}  # next offset after the last forwarded

    async def run(self) -> None:
        s = self.settings
        consumer = self._consumer = committing_consumer(s, "count-feed", s.count_batch_size)
        consumer.subscribe([s.topic_events])
        producer = AIOKafkaProducer(acks="all", enable_idempotence=True, linger_ms=2,
                                    max_batch_size=FRAME_BYTES + 4096,
                                    max_request_size=4 * FRAME_BYTES, **client_options(s))
        await producer.start()
        await consumer.start()
        log.info("count feed consuming %s", s.topic_events)
        try:
            while True:
                fetched = await consumer.getmany(timeout_ms=1000,
                                                 max_records=s.count_batch_size)
                if not fetched:
                    continue
                sent: list[asyncio.Future[object]] = []
                due: dict[TopicPartition, int] = {}
                for tp, records in fetched.items():
                    sent += [await producer.send(self.topic, frame, partition=tp.partition)
                             for frame in frames(_records(records))]
                    due[tp] = records[-1].offset + 1
                self._done.update(due)
                await self._settle(consumer, sent, due)
        finally:
            # Whatever was not committed is forwarded again, and counted once.
            await consumer.stop()
            await producer.stop()

    def lag(self) -> int | None:
        """Events on the topic not yet forwarded to the counters (None before an
        assignment)."""
        return backlog(self._consumer, lambda tp, highwater: self._done.get(tp, highwater))

    @staticmethod
    async def _settle(consumer: AIOKafkaConsumer, sent: list[asyncio.Future[object]],
                      due: dict[TopicPartition, int]) -> None:
        """The broker's acknowledgements of every frame first, then the commit."""
        await asyncio.gather(*sent)
        try:
            await consumer.commit(due)
        except (CommitFailedError, IllegalStateError) as exc:
            log.warning("count feed: commit failed, the events are forwarded again: %s", exc)
        except KafkaError as exc:
            log.warning("count feed: commit failed, retried with the next fetch: %s", exc)


def _records(records: list[ConsumerRecord]) -> list[Record]:
    return [(r.offset, r.key or b"", r.value or b"") for r in records]
