"""Alerts through the real broker: a generated week with injected incidents gives exactly
the expected alerts once each, and a second replay of the same topic gives the same ids."""

from __future__ import annotations

import json

import pytest

from tests.helpers import consume, create_topics, produce, wait_for
from tests.unit.test_alerts import EXPECTED, week

pytestmark = pytest.mark.integration


def _alerts(kafka: str, topic: str) -> list[dict]:
    return [json.loads(r.value) for r in consume(kafka, topic, len(EXPECTED), 120)]


def test_week_with_incidents_gives_the_expected_alerts_once(kafka, names, worker_factory):
    events = week()
    raw = names.env["SMTP_AUTH_TOPIC_RAW"]
    create_topics(kafka, [raw], partitions=2)
    produce(kafka, raw, [((e.sender or "").encode(), e.model_dump_json().encode())
                         for e in events])
    first = worker_factory(SMTP_AUTH_TOPIC_PARTITIONS="2").start()
    alerts = _alerts(kafka, names.env["SMTP_AUTH_TOPIC_ALERTS"])
    assert sorted((a["rule"], a["key"]) for a in alerts) == sorted(EXPECTED)
    listed = wait_for(lambda: (rows := first.get("/api/v1/alerts?range=custom&start="
                                                 "2026-11-01T00:00:00Z&end=2026-12-01T00:00:00Z"))
                      and len(rows) == len(EXPECTED) and rows, 60, "the alerts view")
    assert {a["alert_id"] for a in listed} == {a["alert_id"] for a in alerts}
    first.stop()

    # The same raw topic again, by a pipeline with fresh state (another app id).
    again = worker_factory(SMTP_AUTH_TOPIC_PARTITIONS="2", SMTP_AUTH_APP_ID=names.prefix + "b",
                           SMTP_AUTH_TOPIC_EVENTS=names.prefix + ".events2",
                           SMTP_AUTH_TOPIC_ALERTS=names.prefix + ".alerts2").start()
    second = _alerts(kafka, names.prefix + ".alerts2")
    again.stop()
    assert sorted(a["alert_id"] for a in second) == sorted(a["alert_id"] for a in alerts)
