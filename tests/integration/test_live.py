"""Live counters on a real broker: exact after a SIGKILL, and the same from every worker."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pipeline.synthetic import LogGenerator
from tests.helpers import create_topics, live_truth, produce, settle_live, wait_for

pytestmark = pytest.mark.integration


def _corpus(count: int, seed: int) -> tuple[list[tuple[bytes, bytes]], list[dict[str, Any]]]:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    lines, truth = LogGenerator("postfix", seed, accounts=300).log(count, start, spacing=1.5)
    return [(s.encode(), t.encode()) for s, t in lines], truth


def _ready(worker: Any) -> bool:
    try:
        return bool(worker.get("/readyz"))
    except OSError:  # 503 while anything (the live table included) is not ready
        return False


def test_counters_are_exact_after_a_sigkill(kafka, names, worker_factory):
    items, truth = _corpus(3000, seed=31)
    expected = live_truth(truth)
    create_topics(kafka, [names.env["SMTP_AUTH_TOPIC_RAW"]], partitions=2)
    produce(kafka, names.env["SMTP_AUTH_TOPIC_RAW"], items)
    # Small fetches: the normalize process has the whole corpus ready before the counters
    # start, and one fetch would count it all before the first look.
    worker = worker_factory(SMTP_AUTH_SINK_BATCH_SECONDS="0.1",
                            SMTP_AUTH_NORMALIZE_BATCH_SIZE="200",
                            SMTP_AUTH_COUNT_BATCH_SIZE="50").start()
    seen = wait_for(lambda: worker.get("/live/v1/summary")["messages"], 120, "first counts")
    worker.kill()
    assert 0 < seen < expected["messages"], "the kill must land mid-stream"
    worker.start()
    settle_live(worker, expected, "live counters equal to the ground truth")
    # ClickHouse agrees with the live counters over the same window: the TLS totals, and
    # the widget's distinct senders (both count whole hours of the last 7 days).
    stored = wait_for(lambda: (s := worker.get("/api/v1/summary"))["messages"]
                      == expected["messages"] and s, 60, "ClickHouse totals")
    assert stored["by_tls"] == expected["by_tls"] == worker.get("/live/v1/summary")["by_tls"]
    # The hourly aggregates are written right after the events: wait for them too.
    wait_for(lambda: {t["tls_version"]: t["messages"] for t in worker.get(
        "/api/v1/tls?range=7d")["totals"]} == expected["by_tls"], 60, "hourly TLS totals")
    wait_for(lambda: worker.get("/api/v1/widget")["senders"] == worker.get(
        "/live/v1/summary")["senders"] == expected["senders"], 60, "widget = live senders")


def test_ready_means_the_live_counters_are_whole_after_a_restart(kafka, names, worker_factory):
    """The sink and the normalize stage start before faust has read the counters back from
    their changelog: /readyz must still say ready only once the counters are whole."""
    items, truth = _corpus(1500, seed=33)
    expected = live_truth(truth)
    create_topics(kafka, [names.env["SMTP_AUTH_TOPIC_RAW"]], partitions=2)
    produce(kafka, names.env["SMTP_AUTH_TOPIC_RAW"], items)
    worker = worker_factory().start()
    settle_live(worker, expected, "live counters equal to the ground truth")
    worker.stop()
    worker.start()  # its web server answers before the tables are recovered
    wait_for(lambda: _ready(worker), 120, "ready after the restart", interval=0.02)
    assert worker.get("/live/v1/summary") == expected


def test_every_worker_gives_the_same_answers(kafka, names, worker_factory):
    items, truth = _corpus(1500, seed=32)
    expected = live_truth(truth)
    two = {"SMTP_AUTH_TOPIC_PARTITIONS": "2"}
    create_topics(kafka, [names.env["SMTP_AUTH_TOPIC_RAW"]], partitions=2)
    a = worker_factory(**two).start()
    b = worker_factory(**two).start()
    produce(kafka, names.env["SMTP_AUTH_TOPIC_RAW"], items)
    for worker in (a, b):
        wait_for(lambda w=worker: w.get("/live/v1/summary") == expected, 180,
                 f"summary from the worker on {worker.port}")
    subs = [t for t in truth if t["kind"] == "submission"]
    sender = Counter(t["sender"] for t in subs).most_common(1)[0][0]
    domain = "contoso.org"
    domain_tls = dict(sorted(Counter(t["tls_version"] for t in subs
                                     if t["sender_domain"] == domain).items()))
    # The two workers' group may still be settling (b joined while the lines were read):
    # a table partition being read back answers as such, so ask until both are ready.
    for worker in (a, b):
        wait_for(lambda w=worker: w.get("/live/v1/summary") == expected and _ready(w), 120,
                 f"worker on {worker.port} ready with the whole summary")
    for worker in (a, b):
        wait_for(lambda w=worker: w.get(f"/live/v1/sender/{sender}")["messages"] == sum(
            t["sender"] == sender for t in subs) and w.get(
            f"/live/v1/domain/{domain}")["by_tls"] == domain_tls, 60,
            f"sender and domain views on {worker.port}")
    assert a.get("/live/v1/legacy") == b.get("/live/v1/legacy")
    assert a.get("/live/v1/failures") == b.get("/live/v1/failures")
    ips = Counter(t["client_ip"] for t in truth if t["kind"] == "auth_failure")
    assert sum(r["failures"] for r in a.get("/live/v1/failures")["by_ip"]) == sum(
        n for _, n in ips.most_common(20))


def test_two_servers_replayed_at_different_speeds_end_exact(kafka, names, worker_factory):
    """Issue 12.4: one server's backlog ran ahead of the other's, so the other's events were
    judged late against it and left out of the live counts for good. Lateness is by each
    server's own clock: server A's three hours are read first, then server B's."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=4)
    lines, truth = LogGenerator("postfix", 33, accounts=300).log(900, start, spacing=9)
    servers = sorted({t["server"] for t in truth})
    assert len(servers) == 2
    first = [(s.encode(), t.encode()) for s, t in lines if s == servers[0]]
    second = [(s.encode(), t.encode()) for s, t in lines if s == servers[1]]
    raw = names.env["SMTP_AUTH_TOPIC_RAW"]
    create_topics(kafka, [raw], partitions=2)
    produce(kafka, raw, first)
    worker = worker_factory().start()
    expected_first = live_truth([t for t in truth if t["server"] == servers[0]])
    wait_for(lambda: worker.get("/live/v1/summary") == expected_first, 180,
             f"live counters of {servers[0]} alone")
    produce(kafka, raw, second)
    expected = live_truth(truth)
    last = settle_live(worker, expected, "live counters equal to both servers' truth")
    stored = wait_for(lambda: (s := worker.get("/api/v1/summary"))["messages"]
                      == expected["messages"] and s, 60, "ClickHouse totals")
    assert stored["by_tls"] == expected["by_tls"] == last["by_tls"]
