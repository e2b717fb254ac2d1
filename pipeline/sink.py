"""sink: smtp-auth.events → ClickHouse, batched per partition, idempotent, commit after insert.

This is a plain aiokafka consumer with manual commits rather than a faust agent: inside a
faust `take()` batch an exception (or a shutdown while retrying) acks the messages, which
would commit offsets of rows that never reached ClickHouse. Here an offset is committed only
after its insert succeeded; a failing ClickHouse pauses the partitions (back-pressure) and
the insert is retried with back-off. Each insert carries a deduplication token built from
topic/partition/offset range, so a retried batch is a no-op; the events table collapses
replayed copies by event_id (see migration 001).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, IllegalStateError
from pydantic import ValidationError

from pipeline.aggregate import recompute_hours, touched_hours
from pipeline.clickhouse import ClickHouse
from pipeline.kafka import client_options
from pipeline.metrics import Metrics
from pipeline.settings import Settings
from schemas.event import AuthEvent
from schemas.rejection import Rejection

log = logging.getLogger(__name__)

EVENT_COLUMNS = (
    "event_id", "kind", "ts", "server", "source", "sender", "sender_domain", "envelope_from",
    "auth_mechanism", "client_ip", "client_host", "tls_version", "tls_cipher", "message_id",
    "recipients", "size",
)
MAX_BACKOFF = 30.0
TS = EVENT_COLUMNS.index("ts")


def event_row(event: AuthEvent) -> list[Any]:
    return [getattr(event, name) for name in EVENT_COLUMNS]


@dataclass(slots=True)
class Batch:
    """Deterministic contents of one insert: rows in offset order, deduplicated by event_id."""

    rows: list[list[Any]] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)


def build_batch(records: Sequence[ConsumerRecord], received: datetime) -> Batch:
    batch = Batch()
    seen: set[str] = set()
    for record in records:
        try:
            event = AuthEvent.model_validate_json(record.value)
        except ValidationError as exc:
            batch.rejections.append(Rejection(
                reason="invalid_event", detail=str(exc.errors()[0]["msg"]), stage="validate",
                raw=(record.value or b"")[:4096].decode("utf-8", errors="replace"),
                topic=record.topic, partition=record.partition, offset=record.offset,
                received_at=received))
            continue
        if event.event_id not in seen:
            seen.add(event.event_id)
            batch.rows.append(event_row(event))
    return batch


def dedup_token(tp: TopicPartition, records: Sequence[ConsumerRecord]) -> str:
    return f"{tp.topic}:{tp.partition}:{records[0].offset}-{records[-1].offset}"


class EventSink(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, settings: Settings, ch: ClickHouse, metrics: Metrics) -> None:
        self.settings = settings
        self.ch = ch
        self.metrics = metrics
        self._buffers: dict[TopicPartition, list[ConsumerRecord]] = {}
        self._first_at: float | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None

    async def run(self) -> None:
        s = self.settings
        options = client_options(s)
        self._consumer = AIOKafkaConsumer(
            group_id=f"{s.app_id}-sink", enable_auto_commit=False,
            auto_offset_reset="earliest", max_poll_records=s.sink_batch_size,
            max_poll_interval_ms=600_000, **options)
        self._consumer.subscribe([s.topic_events], listener=self)
        self._producer = AIOKafkaProducer(acks="all", **options)
        await self._producer.start()
        await self._consumer.start()
        log.info("sink consuming %s", s.topic_events)
        try:
            while True:
                await self._poll()
        finally:
            # Buffered records are not flushed here: they are uncommitted, so whoever owns
            # the partition next reads them again; a shutdown must not wait on ClickHouse.
            await self._consumer.stop()
            await self._producer.stop()

    async def _poll(self) -> None:
        assert self._consumer is not None
        s = self.settings
        wait_ms = int(s.sink_batch_seconds * 1000)
        if self._first_at is not None:
            wait_ms = max(0, int((self._first_at + s.sink_batch_seconds - time.monotonic()) * 1000))
        fetched = await self._consumer.getmany(timeout_ms=wait_ms, max_records=s.sink_batch_size)
        for tp, records in fetched.items():
            self._buffers.setdefault(tp, []).extend(records)
            if self._first_at is None:
                self._first_at = time.monotonic()
        size = sum(len(r) for r in self._buffers.values())
        due = self._first_at is not None and (
            time.monotonic() - self._first_at >= s.sink_batch_seconds)
        if size >= s.sink_batch_size or (size and due):
            await self._flush(list(self._buffers))

    async def _flush(self, tps: list[TopicPartition]) -> None:
        for tp in tps:
            records = self._buffers.pop(tp, [])
            if records:
                await self._write(tp, records)
        if not self._buffers:
            self._first_at = None

    async def _write(self, tp: TopicPartition, records: list[ConsumerRecord]) -> None:
        assert self._consumer is not None and self._producer is not None
        batch = build_batch(records, datetime.now(UTC))
        for rejection in batch.rejections:
            await self._producer.send_and_wait(
                self.settings.topic_dlq, rejection.model_dump_json().encode())
            self.metrics.rejections.labels("validate", rejection.reason).inc()
        if batch.rows:
            token = dedup_token(tp, records)
            await self._until_done("events", token, self.ch.insert, "events", batch.rows,
                                   EVENT_COLUMNS, token)
            self.metrics.sink_rows.labels("events").inc(len(batch.rows))
            self.metrics.sink_batch.observe(len(batch.rows))
            hours = touched_hours(row[TS] for row in batch.rows)
            await self._until_done("hourly", token, recompute_hours, self.ch, hours)
        try:
            await self._consumer.commit({tp: records[-1].offset + 1})
        except (CommitFailedError, IllegalStateError) as exc:
            # Lost the partition meanwhile: its new owner re-reads these records; the
            # dedup token and event ids make that harmless.
            log.warning("commit of %s failed after insert, will be re-read: %s", tp, exc)

    async def _until_done(self, table: str, token: str, fn: Callable[..., Any],
                          *args: Any) -> None:
        """Run a ClickHouse write until it succeeds; meanwhile pause fetching."""
        assert self._consumer is not None
        backoff = 0.5
        while True:
            try:
                await self.ch.call(fn, *args)
                break
            except Exception as exc:
                self.metrics.sink_failures.labels(table).inc()
                log.error("write to %s (%s) failed, retrying in %.1fs: %s",
                          table, token, backoff, _one_line(exc))
                # Back-pressure: pause fetching but keep polling so the group keeps us.
                self._consumer.pause(*self._consumer.assignment())
                await self._consumer.getmany(timeout_ms=int(backoff * 1000))
                backoff = min(backoff * 2, MAX_BACKOFF)
        self._consumer.resume(*self._consumer.paused())

    # ConsumerRebalanceListener: write what we hold for partitions we are about to lose.
    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self._flush([tp for tp in revoked if tp in self._buffers])

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        log.info("sink assigned %s", sorted(tp.partition for tp in assigned))


def _one_line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return json.dumps(text[:500])[1:-1]
