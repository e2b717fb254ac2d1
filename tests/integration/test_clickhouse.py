"""The real ClickHouse engine (embedded chDB): migrations, idempotent inserts, the widget."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import clickhouse_connect
import pytest

from pipeline.store import reports
from pipeline.store.aggregate import store_events
from pipeline.store.clickhouse import ClickHouse, migrate, migrations
from pipeline.store.sink import EVENT_COLUMNS, event_row
from schemas.event import AuthEvent

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.fixture
def ch(tmp_path: Path) -> Iterator[ClickHouse]:
    """A fresh database on the embedded engine (one engine per process: opened, then closed)."""
    client = clickhouse_connect.get_client(dsn=f"chdb://{tmp_path / 'ch'}")
    db = ClickHouse(client, f"test_{uuid.uuid4().hex[:8]}")
    migrate(db, ttl_days=90)
    yield db
    db.close()


def _event(n: int, sender: str, ts: datetime, kind: str = "submission") -> AuthEvent:
    return AuthEvent(event_id=f"e{n}", kind=kind, ts=ts, server="mx1", source="postfix",  # type: ignore[arg-type]
                     sender=sender, sender_domain=sender.rpartition("@")[2],
                     tls_version="TLS1.2", recipients=1, size=100)


def test_migrations_are_idempotent(ch):
    assert migrate(ch, ttl_days=90) == []
    versions = [row[0] for row in ch.query_rows(
        f"SELECT version FROM {ch.database}.schema_migrations ORDER BY version")]
    assert versions == [v for v, _, _ in migrations()]


def test_same_batch_twice_is_inserted_once(ch):
    rows = [event_row(_event(i, f"u{i}@example.com", NOW - timedelta(hours=1))) for i in range(50)]
    ch.insert("events", rows, EVENT_COLUMNS, token="t.events:0:0-49")
    ch.insert("events", rows, EVENT_COLUMNS, token="t.events:0:0-49")
    assert ch.query_rows(f"SELECT count() FROM {ch.database}.events")[0][0] == 50


def test_replayed_events_in_another_batch_are_collapsed(ch):
    rows = [event_row(_event(i, "a@example.com", NOW - timedelta(hours=1))) for i in range(10)]
    ch.insert("events", rows, EVENT_COLUMNS, token="t:0:0-9")
    ch.insert("events", rows[5:], EVENT_COLUMNS, token="t:0:5-14")  # other boundaries
    result = reports.summary(ch, NOW - reports.WEEK, NOW)
    assert result.messages == 10


def test_widget_counts_distinct_senders_per_week(ch):
    events = [
        _event(1, "a@example.com", NOW - timedelta(days=1)),
        _event(2, "a@example.com", NOW - timedelta(days=2)),
        _event(3, "b@example.com", NOW - timedelta(days=6, hours=23)),
        _event(4, "c@example.com", NOW - timedelta(days=8)),          # previous week
        _event(5, "a@example.com", NOW - timedelta(days=9)),          # previous week
        _event(6, "d@example.com", NOW - timedelta(days=15)),         # outside both
        _event(7, "e@example.com", NOW - timedelta(hours=1), "auth_failure"),
        _event(8, "f@example.com", NOW + timedelta(hours=1)),         # future: not counted
    ]
    ch.insert("events", [event_row(e) for e in events], EVENT_COLUMNS)
    result = reports.widget(ch, NOW)
    assert (result.senders, result.previous_senders, result.change) == (2, 2, 0.0)


def _rollup_totals(ch: ClickHouse) -> tuple[int, ...]:
    db = ch.database
    return tuple(ch.query_rows(
        f"SELECT (SELECT sum(messages) FROM {db}.hourly), (SELECT sum(messages) FROM {db}.daily),"
        f" (SELECT sum(messages) FROM {db}.domain_daily),"
        f" (SELECT sum(messages) FROM {db}.export_daily),"
        f" (SELECT sum(messages) FROM {db}.daily_by_sender),"
        f" (SELECT sum(messages) FROM {db}.tls_hourly),"
        f" (SELECT uniqExact(sender_id) FROM {db}.sender_names),"
        f" (SELECT uniqExactMerge(senders) FROM {db}.senders_daily),"
        f" (SELECT count() FROM {db}.event_ids)")[0])


def test_rollups_count_each_event_once_under_retries_and_replays(ch):
    events = [_event(i, f"u{i % 7}@example.com", NOW - timedelta(minutes=7 * i))
              for i in range(300)]
    rows = [event_row(e) for e in events]
    assert store_events(ch, rows, EVENT_COLUMNS, "t:0:0-299") == 300
    once = _rollup_totals(ch)
    assert once == (300, 300, 300, 300, 300, 300, 7, 7, 300)
    # A retried batch (same token), e.g. after an insert that succeeded but timed out.
    assert store_events(ch, rows, EVENT_COLUMNS, "t:0:0-299") == 0
    # Replays with other boundaries, one overlapping new events.
    assert store_events(ch, rows[100:250], EVENT_COLUMNS, "t:0:100-249") == 0
    more = [event_row(_event(1000 + i, "new@example.com", NOW - timedelta(hours=2)))
            for i in range(5)]
    assert store_events(ch, rows[290:] + more, EVENT_COLUMNS, "t:0:290-304") == 5
    assert _rollup_totals(ch) == (305, 305, 305, 305, 305, 305, 8, 8, 305)
    assert reports.volume(ch, reports.ReportQuery(range="7d"), NOW).page.total == 8


def test_replays_find_stored_events_of_any_id_over_many_lookups(ch, monkeypatch):
    """The lookup before an insert finds every stored event whatever its id holds (hex,
    the longest allowed, characters that need escaping), also when a batch takes several
    lookup queries."""
    from pipeline.store import aggregate

    monkeypatch.setattr(aggregate, "LOOKUP_CHARS", 20_000)  # ~150 of the longest ids a query
    odd = ["it's", "back\\slash", "tab\there", "é", "{ids:String}", "a,b", "x" * 128]
    ids = [f"{n:032x}" for n in range(1500)] + [f"{n}".rjust(128, "z") for n in range(600)] + [
        f"{n}-{o}" for n in range(40) for o in odd]
    ids = [i[:128] for i in ids]
    rows = [event_row(_event(0, f"u{n % 9}@example.com", NOW - timedelta(seconds=n)).model_copy(
        update={"event_id": i})) for n, i in enumerate(ids)]
    stored = rows[::2]
    assert store_events(ch, stored, EVENT_COLUMNS, "first") == len(stored)
    assert store_events(ch, rows, EVENT_COLUMNS, "replay") == len(rows) - len(stored)
    assert _rollup_totals(ch)[0] == len(rows) == len(set(ids))
    assert ch.query_rows(f"SELECT count(), uniqExact(event_id) FROM {ch.database}.events"
                         " FINAL") == [(len(rows), len(rows))]


def test_an_existing_database_is_migrated_and_back_filled_once(ch, tmp_path, monkeypatch):
    """A database at 003 (hourly recomputed) holding events, two copies of some not yet
    collapsed: 004 and 005 fill the rollups from what the events hold, each event once, and
    006 its own from 004's."""
    client = ch.client
    old = ClickHouse(client, f"old_{uuid.uuid4().hex[:8]}")
    import pipeline.store.clickhouse as clickhouse

    upto_003 = [m for m in migrations() if m[0] <= 3]
    monkeypatch.setattr(clickhouse, "migrations", lambda: upto_003)
    assert migrate(old, ttl_days=90) == [1, 2, 3]
    rows = [event_row(_event(i, f"u{i % 5}@example.com", NOW - timedelta(hours=i)))
            for i in range(40)]
    old.insert("events", rows, EVENT_COLUMNS, token="a")
    old.insert("events", rows[:10], EVENT_COLUMNS, token="b")  # copies, in another part
    monkeypatch.undo()
    assert migrate(old, ttl_days=90) == [v for v, _, _ in migrations() if v > 3]
    assert _rollup_totals(old) == (40, 40, 40, 40, 40, 40, 5, 5, 40)
    assert store_events(old, rows, EVENT_COLUMNS, "c") == 0  # the ledger was filled too
    assert reports.widget(old, NOW).senders == 5


def test_long_integer_lists_are_bound_as_the_values_they_hold(ch):
    """The text of a long list of ids (`_as_text`) binds the same values as the client's own
    formatting, across the whole UInt64 and Int64 ranges, and a short or mixed list and a
    bool list are left to the client."""
    ids = [0, 1, 2**63, 2**64 - 1, *range(10**18, 10**18 + 200)]
    signed = [-(2**63), -1, 0, 2**63 - 1, *range(-100, 100)]
    got = ch.query_rows("SELECT {ids:Array(UInt64)}, {signed:Array(Int64)},"
                        " {short:Array(UInt64)}, {flags:Array(Bool)}, {mixed:Array(String)}",
                        {"ids": ids, "signed": signed, "short": [7, 8],
                         "flags": [True, False] * 40, "mixed": ["a", *map(str, range(80))]})
    assert got == [(ids, signed, [7, 8], [True, False] * 40, ["a", *map(str, range(80))])]
    plain = ["", "0f" * 16, "u@example.com", "a.b-c+d:e_f", *map(str, range(80))]
    escaped = [*plain, "it's", "back\\slash", "tab\t", "line\n", "é", "[x]", "a,b"]
    assert ch.query_rows("SELECT {plain:Array(String)}, {escaped:Array(String)}",
                         {"plain": plain, "escaped": escaped}) == [(plain, escaped)]
    assert ch.query_rows("SELECT count() FROM numbers(1000) WHERE number IN"
                         " {keys:Array(UInt64)}", {"keys": list(range(0, 2000, 3))}) == [(334,)]


def test_the_sinks_connection_does_not_wait_for_the_reports(tmp_path):
    """The worker's two connections, as its pipeline holds them (one engine in the
    process): while a slow report query holds the routes' connection, a batch is stored
    and counted through the sink's, and the slow query is still running when it is."""
    import asyncio

    from pipeline.settings import Settings
    from pipeline.worker import Pipeline, connections

    settings = Settings(data_dir=tmp_path, normalize_processes=0)
    pipeline = Pipeline(settings, *connections(settings))
    sink, reads = pipeline.sink.ch, pipeline.routes.ch
    db = sink.database
    rows = [event_row(_event(i, f"u{i}@example.com", NOW - timedelta(hours=1)))
            for i in range(200)]
    running = ("SELECT count() FROM system.processes WHERE query LIKE '%sleepEachRow%'"
               " AND query NOT LIKE '%system.processes%'")

    async def side_by_side() -> None:
        # Three seconds inside the engine (its own limit per block), not a client wait.
        slow = asyncio.ensure_future(reads.call(
            reads.query_rows, "SELECT sum(sleepEachRow(0.25)) FROM numbers(12)"))
        deadline = asyncio.get_running_loop().time() + 10
        while (await sink.call(sink.query_rows, running))[0][0] == 0:
            assert asyncio.get_running_loop().time() < deadline, "the slow query never ran"
            await asyncio.sleep(0.02)  # poll
        assert await sink.call(store_events, sink, rows, EVENT_COLUMNS, "t:0:0-199") == 200
        counted = await sink.call(sink.query_rows, f"SELECT count() FROM {db}.events")
        assert counted == [(200,)] and not slow.done()
        assert await slow == [(0,)]

    try:
        asyncio.run(side_by_side())
    finally:
        reads.close()
        sink.close()
