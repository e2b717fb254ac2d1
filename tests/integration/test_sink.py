"""The sink on a real broker and the real engine, with faults injected around the engine:
a crash between insert and commit, a replay from offset 0, inserts failing for 60 s under
load. Afterwards ClickHouse holds every event exactly once and the aggregates agree."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import clickhouse_connect
import pytest
from aiokafka import AIOKafkaProducer
from clickhouse_connect.driver.exceptions import DatabaseError

from pipeline.metrics import Metrics
from pipeline.settings import Settings
from pipeline.store import reports
from pipeline.store.clickhouse import ClickHouse, migrate
from pipeline.store.sink import EventSink
from schemas.alert import Alert
from schemas.event import AuthEvent
from tests.helpers import create_topics

pytestmark = pytest.mark.integration
NOW = datetime.now(UTC).replace(microsecond=0)


class FaultyClickHouse(ClickHouse):
    """The real engine, with writes that fail while `failing()` says so."""

    def __init__(self, client: Any, database: str, failing: Callable[[], bool]) -> None:
        super().__init__(client, database)
        self.failing = failing
        self.refused = 0

    def _maybe_fail(self) -> None:
        if self.failing():
            self.refused += 1
            raise ConnectionError("injected: ClickHouse unreachable")

    def insert(self, *args: Any, **kwargs: Any) -> None:
        self._maybe_fail()
        super().insert(*args, **kwargs)

    def command(self, *args: Any, **kwargs: Any) -> Any:
        self._maybe_fail()
        return super().command(*args, **kwargs)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Any]:
    client = clickhouse_connect.get_client(dsn=f"chdb://{tmp_path / 'ch'}")
    yield client
    client.close()


def _settings(kafka: str, prefix: str, **extra: Any) -> Settings:
    values: dict[str, Any] = {"topic_events": f"{prefix}.events", "topic_dlq": f"{prefix}.dlq",
                              "topic_alerts": f"{prefix}.alerts",
                              "sink_batch_size": 200, "sink_batch_seconds": 0.2, **extra}
    return Settings(_env_file=None, kafka_bootstrap_servers=kafka, app_id=prefix, **values)


def _events(n: int, start: int = 0) -> list[AuthEvent]:
    return [AuthEvent(
        event_id=f"ev{i}", kind="submission", server="mx1", source="json",
        ts=NOW - timedelta(hours=3) + timedelta(seconds=i), sender=f"u{i % 97}@example.com",
        sender_domain="example.com", tls_version=("TLS1.2", "TLS1.0", "TLS1.3")[i % 3],
        auth_mechanism="PLAIN", client_ip=f"192.0.2.{i % 200 + 1}", recipients=1 + i % 3,
        size=100 + i) for i in range(start, start + n)]


async def _produce(kafka: str, topic: str, events: list[AuthEvent], pause: float = 0) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka, acks="all")
    await producer.start()
    try:
        for i, event in enumerate(events):
            await producer.send(topic, event.model_dump_json().encode(),
                                key=(event.sender or "").encode())
            if pause and i % 100 == 0:
                await asyncio.sleep(pause)  # poll: spread the load over the fault window
        await producer.flush()
    finally:
        await producer.stop()


def _counts(ch: ClickHouse) -> tuple[int, int, int]:
    """(rows, distinct event ids, messages in the hourly aggregates)."""
    rows, ids = ch.query_rows(
        f"SELECT count(), uniqExact(event_id) FROM {ch.database}.events FINAL")[0]
    hourly = ch.query_rows(f"SELECT sum(messages) FROM {ch.database}.hourly FINAL")[0][0]
    return rows, ids, hourly


async def _run_until(sink: EventSink, done: Callable[[], bool], timeout: float) -> None:
    task = asyncio.create_task(sink.run())
    deadline = time.monotonic() + timeout
    try:
        # Checked on the engine's own thread, so the check never races the sink's writes.
        while not await sink.ch.call(done):
            assert time.monotonic() < deadline, "timed out waiting for the sink"
            if task.done():
                task.result()
            await asyncio.sleep(0.2)  # poll
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def _db(engine: Any, failing: Callable[[], bool] = lambda: False,
        ttl_days: int = 90) -> FaultyClickHouse:
    ch = FaultyClickHouse(engine, f"s_{uuid.uuid4().hex[:8]}", failing)
    migrate(ch, ttl_days, ttl_days)
    return ch


def test_crash_between_insert_and_commit_then_full_replay(kafka, engine):
    prefix = f"sink{uuid.uuid4().hex[:8]}"
    settings = _settings(kafka, prefix)
    create_topics(kafka, [settings.topic_events, settings.topic_dlq, settings.topic_alerts],
                  partitions=2)
    events = _events(1000)
    asyncio.run(_produce(kafka, settings.topic_events, events))
    ch = _db(engine)

    class CrashAfterInsert(EventSink):
        """Dies right after its third insert, before committing it (like a SIGKILL)."""
        inserts = 0

        async def _until_done(self, table: str, *args: Any) -> BaseException | None:
            refused = await super()._until_done(table, *args)
            if table == "events":
                CrashAfterInsert.inserts += 1
                if CrashAfterInsert.inserts == 3:
                    raise RuntimeError("killed between insert and commit")
            return refused

    with pytest.raises(RuntimeError, match="killed"):
        asyncio.run(_run_until(CrashAfterInsert(settings, ch, Metrics()), lambda: False, 60))
    partial = _counts(ch)
    assert 0 < partial[0] < 1000

    # A new sink resumes from the committed offsets: the uncommitted batch comes again.
    # Done when the aggregates caught up too: they are written after the events.
    asyncio.run(_run_until(EventSink(settings, ch, Metrics()),
                           lambda: _counts(ch)[2] >= 1000, 60))
    assert _counts(ch) == (1000, 1000, 1000)
    before = reports.volume(ch, reports.ReportQuery(range="24h", page_size=1000), NOW)

    # The whole topic replayed from offset 0 by a fresh consumer group.
    replay = _settings(kafka, prefix + "r", topic_events=settings.topic_events,
                       topic_dlq=settings.topic_dlq, topic_alerts=settings.topic_alerts)
    consumed = Metrics()
    asyncio.run(_run_until(
        EventSink(replay, ch, consumed),
        lambda: (consumed.registry.get_sample_value("smtp_auth_sink_rows_total",
                                                    {"table": "events"}) or 0) >= 1000, 60))
    assert _counts(ch) == (1000, 1000, 1000)
    after = reports.volume(ch, reports.ReportQuery(range="24h", page_size=1000), NOW)
    assert after == before


def _alerts(n: int) -> list[Alert]:
    return [Alert(alert_id=f"brute_force_ip:192.0.2.{i}:{i}", rule="brute_force_ip",
                  severity="warning", key=f"192.0.2.{i}", ts=NOW - timedelta(minutes=i),
                  window_start=NOW - timedelta(hours=2, minutes=i),
                  window_end=NOW - timedelta(minutes=i), value=9, threshold=8,
                  details={"accounts": ["a", "b"]}, message=f"9 failures from 192.0.2.{i}")
            for i in range(n)]


def test_inserts_failing_for_60_seconds_under_load(kafka, engine):
    """Events and alerts alike (issue 16.8: alerts were inserted inline, without retry, and
    lost in an outage): every one reaches ClickHouse once, after the outage."""
    prefix = f"sink{uuid.uuid4().hex[:8]}"
    settings = _settings(kafka, prefix)
    create_topics(kafka, [settings.topic_events, settings.topic_dlq, settings.topic_alerts],
                  partitions=2)
    fail_until = time.monotonic() + 60
    ch = _db(engine, failing=lambda: time.monotonic() < fail_until)
    events = _events(3000)
    alerts = _alerts(40)

    def stored_alerts() -> list[tuple[Any, ...]]:
        return list(ch.query_rows(f"SELECT alert_id, count() FROM {ch.database}.alerts FINAL"
                                  " GROUP BY alert_id ORDER BY alert_id"))

    async def produce_alerts() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=kafka, acks="all")
        await producer.start()
        try:
            for alert in alerts:
                await producer.send(settings.topic_alerts, alert.model_dump_json().encode(),
                                    key=alert.alert_id.encode())
                await asyncio.sleep(0.5)  # poll: spread over the fault window (pacing, not a wait)
            for alert in alerts[:10]:  # a replayed copy: same ids, stored once
                await producer.send(settings.topic_alerts, alert.model_dump_json().encode())
            await producer.flush()
        finally:
            await producer.stop()

    async def scenario() -> None:
        sink = EventSink(settings, ch, Metrics())
        load = asyncio.create_task(_produce(kafka, settings.topic_events, events, pause=1.5))
        more = asyncio.create_task(produce_alerts())
        await _run_until(sink, lambda: load.done() and more.done() and _counts(ch)[2] >= len(
            events) and len(stored_alerts()) == len(alerts), 150)
        await load

    asyncio.run(scenario())
    assert ch.refused > 5, "the fault window was exercised"
    assert _counts(ch) == (3000, 3000, 3000)
    assert stored_alerts() == sorted((a.alert_id, 1) for a in alerts)
    total = reports.summary(ch, NOW - timedelta(days=1), NOW + timedelta(hours=1))
    assert total.messages == 3000
    assert total.by_tls == {"TLS1.0": 1000, "TLS1.2": 1000, "TLS1.3": 1000}


def test_invalid_records_on_the_events_topic_are_dead_lettered(kafka, engine):
    prefix = f"sink{uuid.uuid4().hex[:8]}"
    settings = _settings(kafka, prefix)
    create_topics(kafka, [settings.topic_events, settings.topic_dlq, settings.topic_alerts],
                  partitions=1)
    ch = _db(engine)

    async def scenario() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=kafka)
        await producer.start()
        await producer.send_and_wait(settings.topic_events, b'{"event_id": "x"}')
        await producer.send_and_wait(settings.topic_events, _events(1)[0].model_dump_json()
                                     .encode())
        await producer.stop()
        await _run_until(EventSink(settings, ch, Metrics()), lambda: _counts(ch)[2] == 1, 60)

    asyncio.run(scenario())
    from tests.helpers import consume
    dead = [json.loads(r.value) for r in consume(kafka, settings.topic_dlq, 1, 30)]
    assert [(d["stage"], d["reason"], d["offset"]) for d in dead] == [
        ("validate", "invalid_event", 0)]


def test_a_year_of_history_and_a_year_0001_event_do_not_jam_the_sink(kafka, engine):
    """Issue 16.2: 300 days in one batch spanned more than 100 daily partitions and a year
    0001 stamp broke the hourly recompute; the sink retried either forever."""
    prefix = f"sink{uuid.uuid4().hex[:8]}"
    settings = _settings(kafka, prefix, sink_batch_size=5000, sink_batch_seconds=1.0)
    create_topics(kafka, [settings.topic_events, settings.topic_dlq, settings.topic_alerts],
                  partitions=1)
    ch = _db(engine, ttl_days=3650)
    history = [event.model_copy(update={"ts": NOW - timedelta(days=i % 300, hours=1)})
               for i, event in enumerate(_events(1500))]
    year_one = history[0].model_copy(update={
        "event_id": "year-one", "ts": datetime(1, 1, 1, tzinfo=UTC)})
    later = _events(100, start=5000)
    asyncio.run(_produce(kafka, settings.topic_events, [*history, year_one, *later]))
    asyncio.run(_run_until(EventSink(settings, ch, Metrics()),
                           lambda: _counts(ch)[2] >= 1600, 120))
    assert _counts(ch) == (1600, 1600, 1600)
    days = ch.query_rows(f"SELECT uniqExact(toDate(ts)) FROM {ch.database}.events")[0][0]
    assert days == len({e.ts.date() for e in history + later}) >= 300
    from tests.helpers import consume
    dead = [json.loads(r.value) for r in consume(kafka, settings.topic_dlq, 1, 30)]
    assert [(d["stage"], d["reason"], d["offset"]) for d in dead] == [
        ("validate", "ts_out_of_range", 1500)]


class RefusingClickHouse(FaultyClickHouse):
    """The real engine, refusing for good any insert that holds a poison row (as a server
    refuses a value it cannot parse)."""

    def insert(self, table: str, rows: Any, *args: Any, **kwargs: Any) -> None:
        if table == "events" and any(str(row[0]).startswith("poison") for row in rows):
            self.refused += 1
            raise DatabaseError("Code: 27. DB::Exception: Cannot parse input (injected)")
        super().insert(table, rows, *args, **kwargs)


def test_rows_clickhouse_refuses_are_dead_lettered_and_the_rest_flows(kafka, engine):
    prefix = f"sink{uuid.uuid4().hex[:8]}"
    settings = _settings(kafka, prefix, sink_batch_size=500)
    create_topics(kafka, [settings.topic_events, settings.topic_dlq, settings.topic_alerts],
                  partitions=1)
    ch = RefusingClickHouse(engine, f"s_{uuid.uuid4().hex[:8]}", lambda: False)
    migrate(ch, 90)
    events = _events(1000)
    for i in (137, 802):
        events[i] = events[i].model_copy(update={"event_id": f"poison{i}"})
    metrics = Metrics()
    asyncio.run(_produce(kafka, settings.topic_events, events))
    asyncio.run(_run_until(EventSink(settings, ch, metrics), lambda: _counts(ch)[2] >= 998, 90))
    assert _counts(ch) == (998, 998, 998)
    from tests.helpers import consume
    dead = [json.loads(r.value) for r in consume(kafka, settings.topic_dlq, 2, 30)]
    assert sorted((d["stage"], d["reason"], d["offset"]) for d in dead) == [
        ("store", "clickhouse_refused", 137), ("store", "clickhouse_refused", 802)]
    assert all("Cannot parse input" in d["detail"] for d in dead)
    assert metrics.registry.get_sample_value("smtp_auth_sink_dead_letters_total",
                                             {"table": "events"}) == 2
