"""sink: smtp-auth.events → ClickHouse, batched, idempotent, commit after insert.

This is a plain aiokafka consumer with manual commits rather than a faust agent: inside a
faust `take()` batch an exception (or a shutdown while retrying) acks the messages, which
would commit offsets of rows that never reached ClickHouse. Here an offset is committed only
after its insert succeeded; a failing ClickHouse pauses the partitions (back-pressure) and
the insert is retried with back-off. Each insert carries a deduplication token built from
the topic/partition/offset ranges it holds, so a retried batch is a no-op; events already stored (a
replay with other boundaries) are left out before the insert, so the rollups that the
insert feeds count each event once (`aggregate.store_events`, migration 004).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, IllegalStateError
from pydantic import BaseModel, ValidationError

from pipeline.ingest.kafka import backlog, client_options, committing_consumer
from pipeline.metrics import Metrics
from pipeline.settings import Settings
from pipeline.store.aggregate import store_events
from pipeline.store.clickhouse import ClickHouse, is_transient
from schemas.alert import Alert
from schemas.event import CanonicalEvent
from schemas.rejection import RAW_EXCERPT, Rejection, Stage

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)

EVENT_COLUMNS = (
    "event_id", "kind", "ts", "server", "source", "sender", "sender_domain", "envelope_from",
    "auth_mechanism", "client_ip", "client_host", "tls_version", "tls_cipher", "message_id",
    "recipients", "size",
)
ALERT_COLUMNS = ("alert_id", "rule", "severity", "key", "ts", "window_start", "window_end",
                 "value", "threshold", "baseline_mean", "baseline_sd", "details", "message")
MAX_BACKOFF = 30.0
TS = EVENT_COLUMNS.index("ts")
MAX_PARTITIONS_PER_INSERT = 90
# The rollups' DateTime holds 1970-01-01 .. 2106-02-07; the normalizer already
# refuses implausible stamps, this guards what other producers put on the events topic.
STORABLE = (datetime(1970, 1, 1, tzinfo=UTC), datetime(2106, 1, 1, tzinfo=UTC))


@dataclass(slots=True)
class SinkStatus:
    """What /readyz and the status line say about the sink."""

    inserted_rows: int = 0
    dead_letters: int = 0
    last_insert: datetime | None = None
    failing_since: datetime | None = None  # set while a write is being retried
    last_error: str | None = None


def event_row(event: CanonicalEvent) -> list[Any]:
    return [getattr(event, name) for name in EVENT_COLUMNS]


@dataclass(slots=True)
class Batch:
    """Deterministic contents of one insert: rows in offset order, deduplicated by event_id,
    each beside the record it came from (for a dead letter, should ClickHouse refuse it)."""

    rows: list[list[Any]] = field(default_factory=list)
    records: list[ConsumerRecord] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)


def _decoded(records: Sequence[ConsumerRecord], model: type[M], reason: str, batch: Batch,
             received: datetime) -> Iterator[tuple[ConsumerRecord, M]]:
    """Each record as its model; one that does not validate is the batch's dead letter."""
    for record in records:
        try:
            yield record, model.model_validate_json(record.value)
        except ValidationError as exc:
            batch.rejections.append(_rejection(
                record, reason, str(exc.errors()[0]["msg"]), "validate", received))


def build_batch(records: Sequence[ConsumerRecord], received: datetime) -> Batch:
    batch = Batch()
    seen: set[str] = set()
    for record, event in _decoded(records, CanonicalEvent, "invalid_event", batch, received):
        if not STORABLE[0] <= event.ts < STORABLE[1]:
            batch.rejections.append(_rejection(
                record, "ts_out_of_range", f"event time {event.ts.isoformat()} is outside "
                f"{STORABLE[0]:%Y} .. {STORABLE[1]:%Y}, what ClickHouse's DateTime stores",
                "validate", received))
            continue
        if event.event_id not in seen:
            seen.add(event.event_id)
            batch.rows.append(event_row(event))
            batch.records.append(record)
    return batch


def alert_row(alert: Alert) -> list[Any]:
    data = alert.model_dump()
    data["details"] = json.dumps(data["details"], sort_keys=True)
    for name in ("ts", "window_start", "window_end"):
        data[name] = getattr(alert, name)
    return [data[name] for name in ALERT_COLUMNS]


def build_alert_batch(records: Sequence[ConsumerRecord], received: datetime) -> Batch:
    batch = Batch()
    for record, alert in _decoded(records, Alert, "invalid_alert", batch, received):
        batch.rows.append(alert_row(alert))
        batch.records.append(record)
    return batch


def _rejection(record: ConsumerRecord, reason: str, detail: str, stage: Stage,
               received: datetime) -> Rejection:
    return Rejection(
        reason=reason, detail=detail, stage=stage,
        raw=(record.value or b"")[:RAW_EXCERPT].decode("utf-8", errors="replace"),
        topic=record.topic, partition=record.partition, offset=record.offset,
        received_at=received)


def partition_blocks(batch: Batch, limit: int = MAX_PARTITIONS_PER_INSERT) -> list[Batch]:
    """Split a batch so that no insert block spans more than `limit` daily partitions of the
    events table (ClickHouse refuses more than 100 per block by default): a replay of a
    year of logs is cut into blocks of consecutive days, in a deterministic order."""
    days = sorted({row[TS].date() for row in batch.rows})
    if len(days) <= limit:
        return [batch]
    block_of = {day: i // limit for i, day in enumerate(days)}
    blocks = [Batch() for _ in range(block_of[days[-1]] + 1)]
    for row, record in zip(batch.rows, batch.records, strict=True):
        block = blocks[block_of[row[TS].date()]]
        block.rows.append(row)
        block.records.append(record)
    return blocks


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
        self.status = SinkStatus()
        self._first: dict[TopicPartition, int] = {}  # first offset fetched, per partition
        self._done: dict[TopicPartition, int] = {}   # next offset after the last one written

    async def run(self) -> None:
        s = self.settings
        self._consumer = committing_consumer(s, "sink", s.sink_batch_size)
        self._consumer.subscribe([s.topic_events, s.topic_alerts], listener=self)
        self._producer = AIOKafkaProducer(acks="all", **client_options(s))
        await self._producer.start()
        await self._consumer.start()
        log.info("sink consuming %s and %s", s.topic_events, s.topic_alerts)
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
            self._first.setdefault(tp, records[0].offset)
            self._buffers.setdefault(tp, []).extend(records)
            if self._first_at is None:
                self._first_at = time.monotonic()
        size = sum(len(r) for r in self._buffers.values())
        due = self._first_at is not None and (
            time.monotonic() - self._first_at >= s.sink_batch_seconds)
        if size >= s.sink_batch_size or (size and due):
            await self._flush(list(self._buffers))

    async def _flush(self, tps: list[TopicPartition]) -> None:
        taken = {tp: records for tp in sorted(tps) if (records := self._buffers.pop(tp, []))}
        events = {tp: r for tp, r in taken.items() if tp.topic != self.settings.topic_alerts}
        if events:
            await self._write_events(events)
        for tp, records in taken.items():
            if tp not in events:
                await self._write_alerts(tp, records)
        if not self._buffers:
            self._first_at = None

    async def _write_events(self, taken: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        """The events of every partition buffered, in one insert: an insert's cost is mostly
        fixed (the rollups' views run once per block; about 0.1 s on the embedded engine
        whatever its size), so one per partition would multiply it."""
        batch = build_batch([r for records in taken.values() for r in records],
                            datetime.now(UTC))
        for rejection in batch.rejections:
            await self._dead_letter(rejection)
        if batch.rows:
            token = ",".join(dedup_token(tp, records) for tp, records in taken.items())
            for index, block in enumerate(partition_blocks(batch)):
                await self._insert(block, f"{token}:{index}")
        for tp, records in taken.items():
            await self._commit(tp, records)

    async def _write_alerts(self, tp: TopicPartition, records: list[ConsumerRecord]) -> None:
        """Alerts as events are written: retried, deduplicated (by token, and by alert_id
        in the table), committed after the insert, a refused one dead-lettered."""
        assert self._consumer is not None
        batch = build_alert_batch(records, datetime.now(UTC))
        for rejection in batch.rejections:
            await self._dead_letter(rejection)
        if batch.rows:
            await self._insert(batch, dedup_token(tp, records), "alerts", ALERT_COLUMNS)
        await self._commit(tp, records)

    async def _commit(self, tp: TopicPartition, records: list[ConsumerRecord]) -> None:
        assert self._consumer is not None
        self._done[tp] = records[-1].offset + 1
        try:
            await self._consumer.commit({tp: records[-1].offset + 1})
        except (CommitFailedError, IllegalStateError) as exc:
            # Lost the partition meanwhile: its new owner re-reads these records; the
            # dedup token and the tables' ids make that harmless.
            log.warning("commit of %s failed after insert, will be re-read: %s", tp, exc)

    async def _insert(self, block: Batch, token: str, table: str = "events",
                      columns: Sequence[str] = EVENT_COLUMNS) -> None:
        """Insert a block; if ClickHouse refuses it for good, halve it until the refused
        rows stand alone, and dead-letter those with their offsets: the rest flows."""
        if table == "events":  # only events not stored yet; the insert feeds the rollups
            refused = await self._until_done(table, token, store_events, self.ch,
                                             block.rows, columns, token)
        else:
            refused = await self._until_done(table, token, self.ch.insert, table,
                                             block.rows, columns, token)
        if refused is None:
            if table == "events":
                self.metrics.sink_batch.observe(len(block.rows))
            self.status.inserted_rows += len(block.rows)
            self.status.last_insert = datetime.now(UTC)
            self.metrics.sink_rows.labels(table).inc(len(block.rows))
            return
        if len(block.rows) == 1:
            self.metrics.sink_dead_letters.labels(table).inc()
            await self._dead_letter(_rejection(
                block.records[0], "clickhouse_refused", _one_line(refused), "store",
                datetime.now(UTC)))
            return
        half = len(block.rows) // 2
        for part, suffix in ((slice(None, half), "a"), (slice(half, None), "b")):
            await self._insert(Batch(block.rows[part], block.records[part]), token + suffix,
                               table, columns)

    async def _dead_letter(self, rejection: Rejection) -> None:
        assert self._producer is not None
        await self._producer.send_and_wait(
            self.settings.topic_dlq, rejection.model_dump_json().encode())
        self.metrics.rejections.labels(rejection.stage, rejection.reason).inc()
        self.status.dead_letters += 1

    async def _until_done(self, table: str, token: str, fn: Callable[..., Any],
                          *args: Any) -> BaseException | None:
        """Run a ClickHouse write until it succeeds (None) or is refused for a permanent
        reason (the error); while a transient failure lasts, pause fetching."""
        assert self._consumer is not None
        backoff = 0.5
        refused: BaseException | None = None
        while True:
            try:
                await self.ch.call(fn, *args)
                break
            except Exception as exc:
                self.metrics.sink_failures.labels(table).inc()
                self.status.last_error = f"{table}: {_one_line(exc)}"
                if not is_transient(exc):
                    log.error("write to %s (%s) refused: %s", table, token, _one_line(exc))
                    refused = exc
                    break
                self.status.failing_since = self.status.failing_since or datetime.now(UTC)
                log.error("write to %s (%s) failed, retrying in %.1fs: %s",
                          table, token, backoff, _one_line(exc))
                # Back-pressure: pause fetching but keep polling so the group keeps us.
                self._consumer.pause(*self._consumer.assignment())
                await self._consumer.getmany(timeout_ms=int(backoff * 1000))
                backoff = min(backoff * 2, MAX_BACKOFF)
        self.status.failing_since = None
        self._consumer.resume(*self._consumer.paused())
        return refused

    # ConsumerRebalanceListener: write what we hold for partitions we are about to lose.
    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self._flush([tp for tp in revoked if tp in self._buffers])

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        log.info("sink assigned %s", sorted(tp.partition for tp in assigned))

    def lag(self) -> int | None:
        """Events on the topic not yet written to ClickHouse (None before an assignment)."""
        return backlog(self._consumer, lambda tp, highwater: self._done.get(
            tp, self._first.get(tp, highwater)))


def _one_line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return json.dumps(text[:500])[1:-1]
