"""What a hostile probe of a running worker found (issue 16), each through the real broker
and the real ClickHouse engine: the worker must stay up and exact, and keep flowing."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pipeline.synthetic import LogGenerator
from tests.helpers import create_topics, produce, wait_for

pytestmark = pytest.mark.integration
LEGACY = {"TLS1.0", "TLS1.1", "SSL3"}


def _wave(count: int, seed: int, start: datetime) -> tuple[list[tuple[bytes, bytes]],
                                                           list[dict[str, Any]]]:
    lines, truth = LogGenerator("postfix", seed, accounts=200).log(count, start, spacing=1.5)
    return [(s.encode(), t.encode()) for s, t in lines], truth


def _expected(truth: list[dict[str, Any]]) -> dict[str, Any]:
    subs = [t for t in truth if t["kind"] == "submission"]
    by_tls = dict(sorted(Counter(t["tls_version"] for t in subs).items()))
    legacy = sum(n for tls, n in by_tls.items() if tls in LEGACY)
    return {"messages": len(subs), "by_tls": by_tls,
            "senders": len({t["sender"] for t in subs}),
            "auth_failures": len(truth) - len(subs),
            "legacy_share": round(legacy / len(subs), 6), "late": 0}


def _settle(worker: Any, expected: dict[str, Any], what: str) -> None:
    last: list[Any] = []

    def equal() -> bool:
        assert worker.alive(), f"the worker exited:\n{worker.tail()}"
        last.append(worker.get("/live/v1/summary"))
        return bool(last[-1] == expected)

    try:
        wait_for(equal, 180, what)
    finally:
        assert last and last[-1] == expected


def test_old_logs_across_many_prune_and_expiry_periods(kafka, names, worker_factory):
    """Issue 16.1 and 16.5: the prune timer crashed the worker once an entry held ids older
    than the dedup horizon (any replayed log), and sessions expired by the wall clock while
    their lines were still arriving. Both periods are shortened, the log is six hours old."""
    now = datetime.now(UTC).replace(microsecond=0)
    first, truth1 = _wave(1200, 41, now - timedelta(hours=6))
    second, truth2 = _wave(1200, 42, now - timedelta(hours=1, minutes=30))
    raw = names.env["SMTP_AUTH_TOPIC_RAW"]
    create_topics(kafka, [raw], partitions=2)
    produce(kafka, raw, first)
    worker = worker_factory(SMTP_AUTH_PRUNE_INTERVAL_SECONDS="0.5",
                            SMTP_AUTH_SESSION_TIMEOUT_SECONDS="5").start()
    _settle(worker, _expected(truth1), "live counters equal to the first wave's truth")
    # The second wave moves event time 4.5 hours on: the first wave's ids leave the dedup
    # memory while the agent prunes, pass after pass.
    passes = worker.sample("smtp_auth_counter_prunes_total")
    produce(kafka, raw, second)
    expected = _expected(truth1 + truth2)
    _settle(worker, expected, "live counters equal to both waves' truth")
    wait_for(lambda: worker.sample("smtp_auth_counter_prunes_total") >= passes + 3, 60,
             "three more pruning passes")
    assert worker.sample("smtp_auth_counter_pruned_entries_total") > 0
    assert worker.alive() and worker.starts == 1
    stored = wait_for(lambda: (s := worker.get("/api/v1/summary"))["messages"]
                      == expected["messages"] and s, 60, "ClickHouse totals")
    assert stored["by_tls"] == expected["by_tls"] == worker.get("/live/v1/summary")["by_tls"]
    assert worker.get("/live/v1/summary") == expected  # still exact after the passes
