"""Liveness, readiness and the status line: what the worker says about itself.

`/healthz` answers while the process serves HTTP (a liveness probe must not restart a worker
that is only waiting for ClickHouse). `/readyz` tells the truth: the Kafka assignment, the
sink (failing writes, lag, dead letters), a ClickHouse round trip and whether the live
counters are still being read back from their changelog; 503 when any is wrong.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pipeline.metrics import Metrics
from pipeline.store.clickhouse import ClickHouse
from pipeline.store.sink import EventSink

CLICKHOUSE_TIMEOUT = 5.0


@dataclass
class Health:
    ch: ClickHouse
    sink: EventSink
    metrics: Metrics
    normalize_lag: Callable[[], int | None]
    assigned: Callable[[], bool]
    clock: Callable[[], datetime]
    live_recovering: Callable[[], bool] = lambda: False
    count_lag: Callable[[], int | None] = lambda: None
    # The totals at the last status line: zero when the worker started, so that the first
    # line's rates cover the start-up too.
    _last: dict[str, float] = field(default_factory=lambda: {"at": time.monotonic()})

    def lags(self) -> dict[str, int | None]:
        lags = {"normalize": self.normalize_lag(), "count": self.count_lag(),
                "sink": self.sink.lag()}
        for group, lag in lags.items():
            if lag is not None:
                self.metrics.consumer_lag.labels(group).set(lag)
        return lags

    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        checks: dict[str, Any] = {}
        try:
            await asyncio.wait_for(self.ch.call(self.ch.query_rows, "SELECT 1"),
                                   CLICKHOUSE_TIMEOUT)
            checks["clickhouse"] = {"ok": True}
        except Exception as exc:  # any failure is the answer, not an error of ours
            checks["clickhouse"] = {"ok": False, "error": type(exc).__name__}
        status = self.sink.status
        checks["sink"] = {
            "ok": status.failing_since is None,
            "failing_since": status.failing_since.isoformat() if status.failing_since else None,
            "last_error": status.last_error, "dead_letters": status.dead_letters,
            "inserted_rows": status.inserted_rows,
            "last_insert": status.last_insert.isoformat() if status.last_insert else None}
        lags = self.lags()
        checks["kafka"] = {"ok": self.assigned() and lags["sink"] is not None,
                           "lag": lags}
        recovering = self.live_recovering()
        checks["live"] = {"ok": not recovering, "recovering": recovering}
        return all(c["ok"] for c in checks.values()), checks

    def status_line(self) -> str:
        """One line for the console: rates since the last line, lags, dead letters."""
        now = time.monotonic()
        registry = self.metrics.registry
        totals = {
            "lines": _sum(registry, "smtp_auth_lines_total"),
            "events": _sum(registry, "smtp_auth_events_total"),
            "dlq": _sum(registry, "smtp_auth_rejections_total"),
            "alerts": _sum(registry, "smtp_auth_alerts_total"),
            "rows": _sum(registry, "smtp_auth_sink_rows_total")}
        elapsed = now - self._last["at"]
        rates = {k: (v - self._last.get(k, 0.0)) / elapsed if elapsed > 0 else 0.0
                 for k, v in totals.items()}
        self._last = {"at": now, **totals}
        lags = self.lags()
        failing = self.sink.status.failing_since
        return (f"status: {rates['lines']:,.0f} lines/s, {rates['events']:,.0f} events/s, "
                f"{rates['rows']:,.0f} rows/s to ClickHouse; lag normalize "
                f"{_n(lags['normalize'])}, count {_n(lags['count'])}, sink "
                f"{_n(lags['sink'])}; dead letters {totals['dlq']:,.0f}; alerts "
                f"{totals['alerts']:,.0f}" + (f"; ClickHouse failing since {failing:%H:%M:%S}"
                                              if failing else ""))


def _sum(registry: Any, name: str) -> float:
    return float(sum(sample.value for metric in registry.collect()
                     for sample in metric.samples if sample.name == name))


def _n(value: int | None) -> str:
    return "?" if value is None else f"{value:,}"
