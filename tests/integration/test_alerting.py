"""Alerts through the real broker: a generated week with injected incidents gives exactly
the expected alerts once each, and a second replay of the same topic gives the same ids."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from tests.helpers import consume, create_topics, produce, wait_for
from tests.unit.live.test_alerts import EXPECTED, week

pytestmark = pytest.mark.integration


class Receiver(BaseHTTPRequestHandler):
    """A webhook endpoint that refuses its first two deliveries."""

    received: ClassVar[list[dict]] = []
    calls = 0
    auth: ClassVar[set[str]] = set()

    def do_POST(self) -> None:
        Receiver.calls += 1
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.auth.add(self.headers.get("Authorization", ""))
        if Receiver.calls <= 2:
            self.send_response(500)
        else:
            Receiver.received.append(json.loads(body))
            self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()


def _alerts(kafka: str, topic: str) -> list[dict]:
    return [json.loads(r.value) for r in consume(kafka, topic, len(EXPECTED), 120)]


def test_week_with_incidents_gives_the_expected_alerts_once(kafka, names, worker_factory,
                                                            webhook):
    events = week()
    raw = names.env["SMTP_AUTH_TOPIC_RAW"]
    create_topics(kafka, [raw], partitions=2)
    produce(kafka, raw, [((e.sender or "").encode(), e.model_dump_json().encode())
                         for e in events])
    first = worker_factory(SMTP_AUTH_TOPIC_PARTITIONS="2", SMTP_AUTH_ALERT_WEBHOOK_URL=webhook,
                           SMTP_AUTH_ALERT_WEBHOOK_TOKEN="s3cret").start()
    alerts = _alerts(kafka, names.env["SMTP_AUTH_TOPIC_ALERTS"])
    assert sorted((a["rule"], a["key"]) for a in alerts) == sorted(EXPECTED)
    listed = wait_for(lambda: (rows := first.get("/api/v1/alerts?range="
                                                 "2026-11-01T00:00:00Z/P30D"))
                      and len(rows) == len(EXPECTED) and rows, 60, "the alerts view")
    assert {a["alert_id"] for a in listed} == {a["alert_id"] for a in alerts}
    # The webhook refused twice; retries with back-off delivered every alert anyway.
    wait_for(lambda: len(Receiver.received) == len(EXPECTED), 60, "webhook deliveries")
    assert {a["alert_id"] for a in Receiver.received} == {a["alert_id"] for a in alerts}
    assert Receiver.auth == {"Bearer s3cret"}
    failures = [line for line in first.metrics().splitlines()
                if line.startswith("smtp_auth_webhook_failures_total")]
    assert 'smtp_auth_webhook_failures_total{stage="attempt"} 2.0' in failures
    assert "s3cret" not in first.log.read_text()
    first.stop()

    # The same raw topic again, by a pipeline with fresh state (another app id).
    again = worker_factory(SMTP_AUTH_TOPIC_PARTITIONS="2", SMTP_AUTH_APP_ID=names.prefix + "b",
                           SMTP_AUTH_TOPIC_EVENTS=names.prefix + ".events2",
                           SMTP_AUTH_TOPIC_ALERTS=names.prefix + ".alerts2").start()
    second = _alerts(kafka, names.prefix + ".alerts2")
    again.stop()
    assert sorted(a["alert_id"] for a in second) == sorted(a["alert_id"] for a in alerts)
