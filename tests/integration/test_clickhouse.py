"""The real ClickHouse engine (embedded chDB): migrations, idempotent inserts, the widget."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import clickhouse_connect
import pytest

from pipeline.store import reports
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
