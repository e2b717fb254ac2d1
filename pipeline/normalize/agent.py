"""The `normalize` stage: smtp-auth.raw → smtp-auth.events (key: sender) + smtp-auth.dlq.

Wiring around the pure normalizer, a Kafka fetch at a time. It is a plain aiokafka consumer
(group `<app_id>-normalize`) in a faust task rather than a faust agent: faust hands a stream
one message at a time through several asyncio tasks each, which caps a worker at a few
thousand raw lines a second on this project's test machine (bench/RESULTS.md), while a mail
log is mostly lines no dialect cares about. Here a fetch of up to `normalize_batch_size`
lines is normalized in one call, its events go to the producer as one batch per partition
and its dead letters without waiting for each, and only once the broker has acknowledged
all of them are the raw offsets committed.

Commits keep the offset discipline of pipeline/normalize/acks.py: a raw line is committed
only when everything it contributed to has been emitted, so a restart (or the next owner of
the partition) replays the lines of still-open sessions and rebuilds them. Sessions of a
server that went quiet end by the receive clock, only on a partition read to its end.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, cast

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from aiokafka.producer.message_accumulator import BatchBuilder

from pipeline.ingest.kafka import client_options, committing_consumer, key_partition
from pipeline.metrics import Metrics
from pipeline.normalize.acks import AckOrder
from pipeline.normalize.dialects.base import NormalizeConfig
from pipeline.normalize.normalizer import Normalizer
from pipeline.normalize.outcome import Origin, Outcome
from pipeline.settings import Settings

log = logging.getLogger(__name__)


class NormalizeAgent(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, settings: Settings, metrics: Metrics,
                 clock: Callable[[], datetime]) -> None:
        self.settings = settings
        self.metrics = metrics
        self.clock = clock
        self.normalizers: dict[int, Normalizer] = {}
        self.acks = AckOrder()  # tokens are the raw offsets
        self._fed: dict[int, int] = {}        # raw partition → offset of the last line fed
        self._commit: dict[int, int] = {}     # raw partition → next offset safe to commit
        self._committed: dict[int, int] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._sent: list[asyncio.Future[Any]] = []
        self._batches: dict[int, BatchBuilder] = {}  # events partition → open batch
        # A batch is normalized, produced and committed under this lock; a rebalance takes
        # it too, so a revoked partition's state is dropped only between batches.
        self._lock = asyncio.Lock()
        self._expire_every = max(1.0, settings.session_timeout_seconds / 10)
        self._expired_at = time.monotonic()

    def _normalizer(self, partition: int) -> Normalizer:
        normalizer = self.normalizers.get(partition)
        if normalizer is None:
            normalizer = self.normalizers[partition] = Normalizer(
                NormalizeConfig.from_settings(self.settings), self.settings.max_line_bytes,
                metrics=self.metrics, native=self.settings.native_scan)
        return normalizer

    async def run(self) -> None:
        s = self.settings
        self._consumer = committing_consumer(s, "normalize", s.normalize_batch_size)
        self._consumer.subscribe([s.topic_raw], listener=self)
        # Idempotent, so a retried produce request cannot put an event on the topic twice.
        self._producer = AIOKafkaProducer(acks="all", enable_idempotence=True, linger_ms=5,
                                          max_batch_size=512 * 1024, **client_options(s))
        await self._producer.start()
        await self._consumer.start()
        log.info("normalize consuming %s", s.topic_raw)
        try:
            while True:
                fetched = await self._consumer.getmany(
                    timeout_ms=int(self._expire_every * 1000),
                    max_records=s.normalize_batch_size)
                async with self._lock:
                    for tp, records in fetched.items():
                        await self._feed(tp, records)
                    if time.monotonic() - self._expired_at >= self._expire_every:
                        await self._expire()
                    await self._send_batches()
                    sent, self._sent = self._sent, []
                    due = self._due()
                # Outside the lock: a commit waits for a rebalance in progress, and the
                # rebalance waits for the lock (on_partitions_revoked).
                await self._settle(sent, due)
        finally:
            # Whatever was not committed is read again by the next owner: nothing to flush.
            await self._consumer.stop()
            await self._producer.stop()

    async def _feed(self, tp: TopicPartition, records: list[ConsumerRecord]) -> None:
        partition = tp.partition
        offsets = [r.offset for r in records]
        self.acks.fed(partition, offsets)
        self._fed[partition] = offsets[-1]
        topic = tp.topic
        outcome = self._normalizer(partition).feed_messages(
            offsets, [r.key for r in records], [r.value for r in records], self.clock(),
            origin=lambda offset: Origin(topic, partition, cast(int, offset)))
        await self._route(partition, outcome)

    async def _expire(self) -> None:
        """Sessions of servers that went quiet end by the receive clock. Only on a partition
        read up to its end: lines still waiting in Kafka would show the server is not quiet,
        and a worker behind (a replay, a restart) expires by event time alone."""
        self._expired_at = time.monotonic()
        now = self.clock()
        for partition, normalizer in list(self.normalizers.items()):
            if self._caught_up(partition):
                await self._route(partition, normalizer.expire_quiet(now))

    async def _route(self, partition: int, outcome: Outcome) -> None:
        """Add events to the open batches and hand dead letters to the producer, and note
        which raw offsets they free; _settle() commits those once the broker has
        acknowledged everything."""
        assert self._producer is not None
        s = self.settings
        if outcome.events:
            # The producer's default partitioner, by the key (Kafka's murmur2), applied here:
            # the events go as one batch per partition, not a send (a future and a metadata
            # tuple) per event.
            partitions = self._producer.client.cluster.partitions_for_topic(s.topic_events)
            if not partitions:
                partitions = await self._producer.partitions_for(s.topic_events)
            ordered = sorted(partitions)
            for ev in outcome.events:
                key = (ev.sender or "").encode()
                await self._append(ordered[key_partition(key, len(ordered))], key,
                                   ev.model_dump_json().encode())
        for rejection in outcome.rejections:
            self._sent.append(await self._producer.send(
                s.topic_dlq, value=rejection.model_dump_json().encode()))
        if outcome.released:
            # The worker's tokens are raw offsets.
            self.acks.released(partition, cast(list[int], outcome.released))
            safe = self.acks.safe(partition)
            if safe is not None:
                self._commit[partition] = safe

    async def _append(self, partition: int, key: bytes, value: bytes) -> None:
        assert self._producer is not None
        batch = self._batches.get(partition)
        if batch is None:
            batch = self._batches[partition] = self._producer.create_batch()
        if batch.append(key=key, value=value, timestamp=None) is not None:
            return
        await self._send_batch(partition)  # full
        batch = self._batches[partition] = self._producer.create_batch()
        if batch.append(key=key, value=value, timestamp=None) is None:  # alone over the limit
            del self._batches[partition]
            self._sent.append(await self._producer.send(
                self.settings.topic_events, value, key=key, partition=partition))

    async def _send_batch(self, partition: int) -> None:
        assert self._producer is not None
        batch = self._batches.pop(partition)
        batch.close()
        self._sent.append(await self._producer.send_batch(
            batch, self.settings.topic_events, partition=partition))

    async def _send_batches(self) -> None:
        for partition in list(self._batches):
            await self._send_batch(partition)

    def _due(self) -> dict[TopicPartition, int]:
        self.metrics.pending.set(sum(n.pending() for n in self.normalizers.values()))
        return {TopicPartition(self.settings.topic_raw, p): o for p, o in self._commit.items()
                if self._committed.get(p) != o}

    async def _settle(self, sent: list[asyncio.Future[Any]],
                      due: dict[TopicPartition, int]) -> None:
        """Wait for the broker to acknowledge every event and dead letter handed over, then
        commit the raw offsets they freed. A failed produce stops the worker uncommitted:
        the lines are read again after the restart, and the events table and the counters
        collapse the copies."""
        assert self._consumer is not None
        if sent:
            await asyncio.gather(*sent)  # the broker's acknowledgements
        if not due:
            return
        try:
            await self._consumer.commit(due)
        except (CommitFailedError, IllegalStateError) as exc:
            # Lost the partition meanwhile: its new owner re-reads from the last commit.
            log.warning("commit of raw offsets failed, they will be read again: %s", exc)
            return
        except KafkaError as exc:  # the broker is away: the next batch commits again
            log.warning("commit of raw offsets failed, retried with the next batch: %s", exc)
            return
        for tp, offset in due.items():
            if tp.partition in self._commit:  # still ours
                self._committed[tp.partition] = offset

    def assigned(self) -> bool:
        consumer = self._consumer
        return consumer is not None and bool(consumer.assignment())

    def _highwater(self, partition: int) -> int | None:
        consumer = self._consumer
        if consumer is None:
            return None
        try:
            highwater = consumer.highwater(TopicPartition(self.settings.topic_raw, partition))
        except IllegalStateError:  # the partition just left
            return None
        return None if highwater is None else int(highwater)

    def lag(self) -> int | None:
        """Raw lines on the assigned partitions not yet fed (None while unknown)."""
        consumer = self._consumer
        if consumer is None or not consumer.assignment():
            return None
        total = 0
        for tp in consumer.assignment():
            highwater = self._highwater(tp.partition)
            if highwater is None:
                return None
            total += max(0, highwater - self._fed.get(tp.partition, -1) - 1)
        return total

    def _caught_up(self, partition: int) -> bool:
        highwater = self._highwater(partition)
        fed = self._fed.get(partition)
        return highwater is not None and fed is not None and fed + 1 >= highwater

    # ConsumerRebalanceListener (awaited by aiokafka before the group moves partitions).
    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        async with self._lock:
            # The new owner replays the uncommitted lines of these partitions; forget ours.
            for tp in revoked:
                self.normalizers.pop(tp.partition, None)
                self._fed.pop(tp.partition, None)
                self._commit.pop(tp.partition, None)
                self._committed.pop(tp.partition, None)
                self.acks.forget(tp.partition)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        log.info("normalize assigned %s", sorted(tp.partition for tp in assigned))
