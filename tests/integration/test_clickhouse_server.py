"""The HTTP path of pipeline/store/clickhouse.py against a real ClickHouse server (testcontainers,
SMTP_AUTH_TEST_CONTAINERS=1): migrations, idempotent inserts, reports, and a worker sinking
into it. Without containers these skip (tests/backends.py says why)."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from pipeline.settings import Settings
from pipeline.store import reports
from pipeline.store.clickhouse import connect, migrate, migrations
from pipeline.store.sink import EVENT_COLUMNS, event_row
from pipeline.synthetic import LogGenerator
from schemas.event import AuthEvent
from tests.helpers import create_topics, produce, wait_for

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def test_server_migrates_inserts_once_and_reports(clickhouse_server):
    settings = Settings(clickhouse_url=clickhouse_server.url(f"srv_{uuid.uuid4().hex[:8]}"),
                        clickhouse_password=clickhouse_server.password)
    ch = connect(settings)
    try:
        assert migrate(ch, 90) == [v for v, _, _ in migrations()]
        assert migrate(ch, 90) == []
        senders = [f"u{i % 7}@example.com" for i in range(60)]
        events = [AuthEvent(event_id=f"s{i}", kind="submission", ts=NOW - timedelta(hours=i),
                            server="mx1", source="postfix", sender=s, sender_domain="example.com",
                            tls_version="TLS1.0" if i % 3 else "TLS1.3")
                  for i, s in enumerate(senders)]
        rows = [event_row(e) for e in events]
        ch.insert("events", rows, EVENT_COLUMNS, token="srv.events:0:0-59")
        ch.insert("events", rows, EVENT_COLUMNS, token="srv.events:0:0-59")  # a retried batch
        summary = reports.summary(ch, NOW - reports.WEEK, NOW + timedelta(hours=1))
        assert summary.messages == 60
        assert summary.by_tls == dict(sorted(Counter(e.tls_version for e in events).items()))
        assert reports.widget(ch, NOW).senders == len(set(senders))
    finally:
        ch.close()


def test_worker_sinks_into_the_server(clickhouse_server, kafka, names, worker_factory):
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    lines, truth = LogGenerator("postfix", 41).log(200, start)
    create_topics(kafka, [names.env["SMTP_AUTH_TOPIC_RAW"]], partitions=2)
    produce(kafka, names.env["SMTP_AUTH_TOPIC_RAW"],
            [(s.encode(), line.encode()) for s, line in lines])
    worker = worker_factory().start()
    assert worker.env["CLICKHOUSE_URL"].startswith("http://")
    submissions = [t for t in truth if t["kind"] == "submission"]
    summary = wait_for(lambda: (s := worker.get("/api/v1/summary"))["messages"]
                       == len(submissions) and s, 180, "the server to hold every message")
    assert summary["auth_failures"] == len(truth) - len(submissions)
    assert summary["senders"] == len({t["sender"] for t in submissions})
