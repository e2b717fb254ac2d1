"""The worker's side of the normalize processes: children's counts folded in once, their
lags summed, and a child that exits stops the worker."""

from __future__ import annotations

import asyncio
from multiprocessing import get_context

import pytest

from pipeline.metrics import Metrics
from pipeline.normalize.process import NormalizeProcesses, Report, _Child, _totals
from pipeline.settings import Settings


def metric_value(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def _child(processes: NormalizeProcesses) -> _Child:
    child = _Child(get_context("spawn").Process(), None)  # type: ignore[arg-type]
    processes._children.append(child)
    return child


def test_a_childs_totals_are_added_once_however_often_it_reports() -> None:
    theirs, ours = Metrics(), Metrics()
    processes = NormalizeProcesses(Settings(), ours, 2)
    a, b = _child(processes), _child(processes)
    theirs.lines.labels("postfix", "parsed").inc(5)
    processes._apply(a, Report(_totals(theirs), 1, True, 0))
    processes._apply(a, Report(_totals(theirs), 1, True, 0))  # nothing new since
    theirs.lines.labels("postfix", "parsed").inc(2)
    theirs.events.labels("postfix", "submission").inc(3)
    processes._apply(a, Report(_totals(theirs), 2, True, 0))
    processes._apply(b, Report(_totals(theirs), 4, True, 0))  # another child's own counts
    assert metric_value(ours, "smtp_auth_lines_total", dialect="postfix", outcome="parsed") == 14
    assert metric_value(ours, "smtp_auth_events_total", source="postfix",
                        kind="submission") == 6
    assert metric_value(ours, "smtp_auth_pending_sessions") == 6


def test_lag_is_known_only_when_every_child_holding_partitions_knows_it() -> None:
    processes = NormalizeProcesses(Settings(), Metrics(), 2)
    a, b = _child(processes), _child(processes)
    assert processes.lag() is None and not processes.assigned()
    processes._apply(a, Report({}, 0, True, 7))
    assert processes.lag() is None  # b has not reported
    processes._apply(b, Report({}, 0, False, None))  # holds no partition: not counted
    assert processes.lag() == 7 and processes.assigned()
    processes._apply(b, Report({}, 0, True, None))
    assert processes.lag() is None
    processes._apply(b, Report({}, 0, True, 5))
    assert processes.lag() == 12


def test_a_child_that_exits_stops_the_worker() -> None:
    # Nothing listens on port 1: the child's Kafka clients cannot start, and it exits.
    settings = Settings(kafka_bootstrap_servers="127.0.0.1:1")
    processes = NormalizeProcesses(settings, Metrics(), 1)
    with pytest.raises(RuntimeError, match=r"normalize-0 exited \(code 1\)"):
        asyncio.run(asyncio.wait_for(processes.run(), 60))
    assert not processes._children  # stopped and forgotten
