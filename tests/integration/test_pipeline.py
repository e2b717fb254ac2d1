"""The thin slice on real components: Kafka broker → faust worker → embedded ClickHouse."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import clickhouse_connect
import pytest

from pipeline.settings import Settings
from pipeline.store.clickhouse import connect
from pipeline.synthetic import LogGenerator
from tests.helpers import consume, create_topics, json_lines, produce, wait_for

pytestmark = pytest.mark.integration


def _corpus(count: int, seed: int) -> tuple[list[tuple[bytes, bytes]], list[dict[str, Any]]]:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    lines, truth = LogGenerator("postfix", seed).log(count, start)
    # Keyed by server, as a shipper does, so that a server's lines stay ordered.
    return [(server.encode(), line.encode()) for server, line in lines], truth


def _without_id(event: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k != "event_id"}


def _key(event: dict[str, Any]) -> tuple[Any, ...]:
    return (event["kind"], event["ts"], event["server"], event["client_ip"], event["message_id"])


def _clickhouse_events(worker: Any) -> list[tuple[Any, ...]]:
    """Read what the worker stored, after it has stopped: its embedded engine directly, or
    the ClickHouse server it was given (SMTP_AUTH_TEST_CONTAINERS=1)."""
    database = "smtp_auth"
    if "CLICKHOUSE_URL" in worker.env:
        ch = connect(Settings(clickhouse_url=worker.env["CLICKHOUSE_URL"],
                              clickhouse_password=worker.env["SMTP_AUTH_CLICKHOUSE_PASSWORD"]))
        client, database = ch.client, ch.database
    else:
        data_dir = Path(worker.env["SMTP_AUTH_DATA_DIR"])
        client = clickhouse_connect.get_client(
            dsn=f"chdb://{(data_dir / 'clickhouse').resolve()}")
    try:
        return list(client.query(
            "SELECT event_id, kind, sender, message_id, tls_version"
            f" FROM {database}.events FINAL ORDER BY event_id").result_rows)
    finally:
        client.close()


def test_postfix_lines_reach_events_topic_and_clickhouse(kafka, names, worker_factory):
    items, truth = _corpus(120, seed=7)
    submissions = [t for t in truth if t["kind"] == "submission"]
    senders = {t["sender"] for t in submissions}
    create_topics(kafka, [names.env["SMTP_AUTH_TOPIC_RAW"]], partitions=2)
    produce(kafka, names.env["SMTP_AUTH_TOPIC_RAW"], items)

    worker = worker_factory().start()
    widget = wait_for(lambda: (w := worker.get("/api/v1/widget"))["senders"] == len(senders)
                      and w, 120, "widget to count every sender")
    assert widget["previous_senders"] == 0

    # The exact canonical events on the events topic, one per encoded session.
    events = json_lines(consume(kafka, names.env["SMTP_AUTH_TOPIC_EVENTS"], len(truth), 60))
    assert sorted(map(_without_id, events), key=_key) == sorted(truth, key=_key)
    assert len({e["event_id"] for e in events}) == len(truth)

    summary = wait_for(lambda: (s := worker.get("/api/v1/summary"))["messages"]
                       == len(submissions) and s, 60, "summary to count every message")
    assert summary["by_tls"] == dict(sorted(Counter(t["tls_version"] for t in submissions).items()))
    assert summary["auth_failures"] == len(truth) - len(submissions)

    worker.stop()
    rows = _clickhouse_events(worker)
    assert len(rows) == len(truth)
    assert Counter((r[1], r[2], r[3]) for r in rows) == Counter(
        (t["kind"], t["sender"], t["message_id"]) for t in truth)


def test_worker_killed_mid_stream_does_not_double_count(kafka, names, worker_factory):
    items, truth = _corpus(4000, seed=11)
    submissions = [t for t in truth if t["kind"] == "submission"]
    create_topics(kafka, [names.env["SMTP_AUTH_TOPIC_RAW"]], partitions=2)
    produce(kafka, names.env["SMTP_AUTH_TOPIC_RAW"], items)

    # Small inserts: the sink takes every partition's events in one, and the normalize
    # process has the whole corpus ready before the sink starts.
    worker = worker_factory(SMTP_AUTH_SINK_BATCH_SECONDS="0.1",
                            SMTP_AUTH_SINK_BATCH_SIZE="300").start()
    seen = wait_for(lambda: worker.get("/api/v1/summary")["messages"], 120, "first inserts")
    worker.kill()
    assert 0 < seen < len(submissions), "the kill must land mid-stream"

    worker.start()
    wait_for(lambda: worker.get("/api/v1/summary")["messages"] >= len(submissions), 180,
             "every message after the restart")
    final = worker.get("/api/v1/summary")
    assert final["messages"] == len(submissions)
    assert final["auth_failures"] == len(truth) - len(submissions)
    # At-least-once upstream: the events topic may hold replayed copies, never fewer.
    events = json_lines(consume(kafka, names.env["SMTP_AUTH_TOPIC_EVENTS"], len(truth), 60))
    assert len(events) >= len(truth)
    assert len({e["event_id"] for e in events}) == len(truth)

    worker.stop()
    rows = _clickhouse_events(worker)
    assert len(rows) == len(truth) == len({r[0] for r in rows})
