"""The console's status line: rates since the last line, each stage's lag, the totals."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pipeline.metrics import Metrics
from pipeline.settings import Settings
from pipeline.store.sink import EventSink
from pipeline.web.health import Health


def test_the_status_line_names_every_lag_and_counts_dead_letters_and_alerts(tmp_path: Any) -> None:
    metrics = Metrics()
    # A sink that never started: its lag is unknown, which the line says as "?".
    sink = EventSink(Settings(data_dir=tmp_path), None, metrics)  # type: ignore[arg-type]
    health = Health(None, sink, metrics, lambda: 12, lambda: True,  # type: ignore[arg-type]
                    lambda: datetime.now(UTC), lambda: False, lambda: 3)
    health.status_line()  # the first line starts the rates
    metrics.alerts.labels("first_legacy_tls").inc(4)
    metrics.alerts.labels("password_spray").inc()
    metrics.rejections.labels("normalize", "no_syslog_header").inc(2)
    line = health.status_line()
    assert "lag normalize 12, count 3, sink ?" in line
    assert "dead letters 2" in line and "alerts 5" in line
    assert "ClickHouse failing" not in line


def test_the_first_status_line_counts_what_came_since_the_worker_started(tmp_path: Any) -> None:
    metrics = Metrics()
    sink = EventSink(Settings(data_dir=tmp_path), None, metrics)  # type: ignore[arg-type]
    health = Health(None, sink, metrics, lambda: 0, lambda: True,  # type: ignore[arg-type]
                    lambda: datetime.now(UTC))
    metrics.lines.labels("postfix", "event").inc(500)
    metrics.events.labels("postfix", "submission").inc(50)
    line = health.status_line()
    assert not line.startswith("status: 0 lines/s")
    assert " 0 events/s" not in line
