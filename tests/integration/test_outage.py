"""A 60 s ClickHouse outage with alerts due, through a whole worker (issue 16.8): the real
broker, the real worker process with its embedded engine (tests/integration/outage_worker.py
injects the fault), a generated week whose incidents make every alert due while ClickHouse
refuses every call; then a second, 20 s outage that meets the first alert write (the sink
retries one batch at a time, so the first outage only ever meets event writes). Afterwards
live == ClickHouse == truth and the alerts equal the fault-free decision
(pipeline.live.decide.run_alerts over the same events), each once, on the topic and in
ClickHouse."""

from __future__ import annotations

import json
import urllib.error
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pipeline.live.decide import run_alerts
from schemas.event import AuthEvent
from tests.helpers import consume, create_topics, live_truth, produce, settle_live, wait_for
from tests.unit.live.test_alerts import START, week

pytestmark = pytest.mark.integration

OUTAGES = "events:60,alerts:20"


def _recent_week(now: datetime) -> list[AuthEvent]:
    """tests/unit/live/test_alerts.week() moved by whole days to end at today's midnight, so
    most of it is inside the live views' 7 days (the rules see the same hours)."""
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    shift = timedelta(days=(midnight - timedelta(days=8) - START).days)
    return [e.model_copy(update={"ts": e.ts + shift}) for e in week()]


def _in_live_window(truth: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    until = int(now.timestamp()) // 3600 + 1
    return [t for t in truth if until - 168 <= int(datetime.fromisoformat(
        t["ts"]).timestamp()) // 3600 < until]


def _answer(worker: Any, path: str) -> Any:
    """The API's answer, or None while ClickHouse is away (the report answers 503)."""
    try:
        return worker.get(path)
    except urllib.error.HTTPError as exc:
        if exc.code == 503:
            return None
        raise


def test_a_60_second_outage_with_alerts_due_loses_nothing(kafka, names, worker_factory,
                                                           tmp_path, capsys):
    now = datetime.now(UTC)
    events = _recent_week(now)
    truth = [e.model_dump(mode="json") for e in events]
    decided = {a.alert_id: a.model_dump(mode="json") for a in run_alerts(events)}
    assert len(decided) == 8  # the week's incidents (tests/unit/live/test_alerts.EXPECTED)
    # The baseline days first; the days with the incidents once the outage has begun.
    incidents = min(e.ts for e in events if e.sender == "ceo@example.com")
    before = [e for e in events if e.ts < incidents]
    during = events[len(before):]

    raw = names.env["SMTP_AUTH_TOPIC_RAW"]
    create_topics(kafka, [raw], partitions=1)
    produce(kafka, raw, [((e.sender or "").encode(), e.model_dump_json().encode())
                         for e in before])
    state = tmp_path / "outage.json"
    worker = worker_factory(SMTP_AUTH_TOPIC_PARTITIONS="1", TEST_OUTAGES=OUTAGES,
                            TEST_OUTAGE_STATE=str(state))
    worker.module = "tests.integration.outage_worker"
    worker.start()
    window = wait_for(lambda: state.exists() and json.loads(state.read_text())[0], 60,
                      f"the sink's first insert, which starts the outage ({worker.log})")
    produce(kafka, raw, [((e.sender or "").encode(), e.model_dump_json().encode())
                         for e in during])

    # Alerts: the fault-free decision, each once, decided while ClickHouse was away.
    records = consume(kafka, names.env["SMTP_AUTH_TOPIC_ALERTS"], len(decided), 240)
    alerts = [json.loads(r.value) for r in records]
    assert sorted(a["alert_id"] for a in alerts) == sorted(decided), alerts
    assert {a["alert_id"]: a for a in alerts} == decided
    in_outage = [r for r in records
                 if window["start"] * 1000 <= r.timestamp < window["end"] * 1000]
    assert len(in_outage) >= 3, "alerts were due during the outage"

    # ClickHouse, once it is back: every event and every alert, once.
    span = f"{events[0].ts - timedelta(days=1):%Y-%m-%d}/P10D"
    subs = [t for t in truth if t["kind"] == "submission"]
    by_tls = dict(Counter(t["tls_version"] for t in subs))

    seen: list[Any] = []

    def stored_totals() -> bool:
        answer = _answer(worker, f"/api/v1/tls?range={span}")
        seen.append(answer and {t["tls_version"]: t["messages"] for t in answer["totals"]
                                if t["messages"]})
        return bool(seen[-1] == by_tls)

    try:
        wait_for(stored_totals, 240, "ClickHouse to hold every submission after the outage")
    finally:
        assert seen[-1] == by_tls, f"ClickHouse {seen[-1]} != truth {by_tls}"

    def stored_alerts() -> bool:
        seen.append(_answer(worker, f"/api/v1/alerts?range={span}&page_size=1000"))
        return bool(seen[-1]) and len(seen[-1]) >= len(decided)

    try:
        wait_for(stored_alerts, 120, "ClickHouse to hold every alert")
    finally:
        assert sorted(a["alert_id"] for a in seen[-1] or []) == sorted(decided), (
            f"ClickHouse holds {len(seen[-1] or [])} alerts of {len(decided)}")
    failures = _answer(worker, f"/api/v1/failures?range={span}&page_size=1000")
    assert sum(row["failures"] for row in failures["by_account"]) == len(truth) - len(subs)

    # Live == ClickHouse == truth over the live views' 7 days.
    expected = live_truth(_in_live_window(truth, datetime.now(UTC)))
    settle_live(worker, expected, "live counters equal to the truth after the outage")
    until = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    week_span = f"{until - timedelta(days=7):%Y-%m-%dT%HZ}/P7D"
    stored_week = {t["tls_version"]: t["messages"] for t in _answer(
        worker, f"/api/v1/tls?range={week_span}")["totals"] if t["messages"]}
    assert stored_week == expected["by_tls"] == worker.get("/live/v1/summary")["by_tls"]

    # Both outages were real, and the worker rode them out without a restart.
    outages = json.loads(state.read_text())
    assert [(o["table"], round(o["end"] - o["start"])) for o in outages] == [
        ("events", 60), ("alerts", 20)]
    assert outages[0]["refused"] >= 10 and outages[1]["refused"] >= 3, outages
    assert datetime.now(UTC).timestamp() > outages[1]["end"]
    assert worker.alive() and worker.starts == 1
    with capsys.disabled():
        print(f"\noutages: 60 s ({outages[0]['refused']} ClickHouse calls refused, "
              f"{len(in_outage)} of {len(decided)} alerts decided meanwhile), then 20 s at "
              f"the first alert write ({outages[1]['refused']} refused); {len(truth)} "
              "events and every alert stored once, live == ClickHouse == truth")
