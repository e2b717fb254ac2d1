"""The `normalize` stage in processes of its own, beside the worker.

Normalizing is the worker's heaviest stage (about half of one core at the raw line rate,
bench/RESULTS.md), and a Python process has one core. Each child here runs the same
`NormalizeAgent` (a consumer of group `<app_id>-normalize`, its own producer, its own
commits), so Kafka's group protocol shares the raw partitions among the children, and
nothing the worker guarantees changes: a child commits raw offsets only after the broker
has acknowledged what they produced, exactly as the in-loop stage does.

What the worker needs from a child comes through a pipe twice a second: its metric counts
(added to the worker's own, so /metrics and the status line read as before), its lag and
whether it holds partitions. A child that exits stops the worker (it is restarted and the
children with it); a child whose worker is gone stops itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from pipeline.metrics import Metrics
from pipeline.settings import Settings

log = logging.getLogger(__name__)

REPORT_SECONDS = 0.5
STOP_SECONDS = 15.0
# The counters a child's normalizer adds to, by their Metrics attribute.
COUNTED = ("lines", "events", "rejections", "dead_letters")
Totals = dict[tuple[str, tuple[str, ...]], float]


def _totals(metrics: Metrics) -> Totals:
    totals: Totals = {}
    for name in COUNTED:
        metric = getattr(metrics, name)
        labelnames = metric._labelnames  # prometheus_client keeps no public accessor
        for family in metric.collect():
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    labels = tuple(sample.labels[n] for n in labelnames)
                    totals[(name, labels)] = sample.value
    return totals


@dataclass
class Report:
    """What a child says about itself."""
    totals: Totals
    pending: int
    assigned: bool
    lag: int | None


def child_main(settings: Settings, conn: Connection, parent: int) -> None:
    """A child's whole life: normalize until told to stop or until the worker is gone."""
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s[normalize]: %(message)s")
    asyncio.run(_child(settings, conn, parent))


async def _child(settings: Settings, conn: Connection, parent: int) -> None:
    from pipeline.normalize.agent import NormalizeAgent

    metrics = Metrics()
    agent = NormalizeAgent(settings, metrics, lambda: datetime.now(UTC))
    run = asyncio.ensure_future(agent.run())
    loop = asyncio.get_running_loop()
    # Ctrl-C reaches the whole process group: the worker stops the children itself. A
    # SIGTERM (the worker's, or a service manager's to the group) stops this one cleanly.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    loop.add_signal_handler(signal.SIGTERM, run.cancel)
    try:
        while not run.done():
            if os.getppid() != parent:
                log.warning("the worker is gone; normalize stops")
                run.cancel()
                break
            pending = sum(n.pending() for n in agent.normalizers.values())
            try:
                conn.send(Report(_totals(metrics), pending, agent.assigned(), agent.lag()))
            except (BrokenPipeError, OSError):
                run.cancel()
                break
            await asyncio.wait([run], timeout=REPORT_SECONDS)
        with contextlib.suppress(asyncio.CancelledError):
            await run  # a failure of the stage is raised here: the child exits with it
    finally:
        conn.close()


@dataclass
class _Child:
    process: BaseProcess
    conn: Connection
    report: Report | None = None
    seen: Totals = field(default_factory=dict)


class NormalizeProcesses:
    """The worker's side: start the children, fold their reports in, stop them."""

    def __init__(self, settings: Settings, metrics: Metrics, count: int) -> None:
        self.settings = settings
        self.metrics = metrics
        self.count = count
        self._children: list[_Child] = []
        self._failed: asyncio.Future[None] | None = None
        self._lost: list[asyncio.Future[None]] = []  # children gone, being looked at

    def start(self) -> None:
        """Start the children (the worker does so before its own start-up, which they do
        not need: raw lines flow meanwhile)."""
        context = multiprocessing.get_context("spawn")  # no fork of a threaded process
        for i in range(len(self._children), self.count):
            receive, send = context.Pipe(duplex=False)
            process = context.Process(target=child_main, name=f"normalize-{i}",
                                      args=(self.settings, send, os.getpid()), daemon=True)
            process.start()
            send.close()  # the child holds the writing end; EOF means it is gone
            self._children.append(_Child(process, receive))

    async def run(self) -> None:
        """Run the children until one exits (an error: the worker stops) or until cancelled
        (the worker stops: the children leave the group and exit)."""
        loop = asyncio.get_running_loop()
        self._failed = loop.create_future()
        try:
            self.start()
            for child in self._children:
                loop.add_reader(child.conn.fileno(), self._receive, child)
                self._receive(child)  # what it said before the loop listened, or its exit
            await self._failed
        finally:
            await self._stop(loop)

    def _receive(self, child: _Child) -> None:
        try:
            while child.conn.poll():
                self._apply(child, child.conn.recv())
        except (EOFError, OSError):
            asyncio.get_running_loop().remove_reader(child.conn.fileno())
            self._lost.append(asyncio.ensure_future(self._exited(child)))

    async def _exited(self, child: _Child) -> None:
        """A child that stopped cleanly was told to (a SIGTERM to the worker's process
        group, from a service manager or a test): the worker stops the same way, which is
        a no-op if it is stopping already. Any other exit is a failure."""
        process = child.process
        await asyncio.get_running_loop().run_in_executor(None, process.join, STOP_SECONDS)
        if process.exitcode == 0:
            log.info("%s stopped; the worker stops", process.name)
            os.kill(os.getpid(), signal.SIGTERM)
        elif self._failed is not None and not self._failed.done():
            self._failed.set_exception(RuntimeError(
                f"{process.name} exited (code {process.exitcode})"))

    def _apply(self, child: _Child, report: Report) -> None:
        for (name, labels), total in report.totals.items():
            delta = total - child.seen.get((name, labels), 0.0)
            if delta > 0:
                getattr(self.metrics, name).labels(*labels).inc(delta)
        child.seen = report.totals
        child.report = report
        self.metrics.pending.set(sum(c.report.pending for c in self._children if c.report))

    async def _stop(self, loop: asyncio.AbstractEventLoop) -> None:
        for lost in self._lost:
            lost.cancel()
        for child in self._children:
            # Deaf first: the exits asked for here are no news to act on.
            with contextlib.suppress(OSError, ValueError):
                loop.remove_reader(child.conn.fileno())
            if child.process.is_alive():
                child.process.terminate()  # SIGTERM: the child's consumer leaves the group
        for child in self._children:
            await loop.run_in_executor(None, child.process.join, STOP_SECONDS)
            if child.process.is_alive():
                log.warning("%s did not stop in %.0f s; killed", child.process.name,
                            STOP_SECONDS)
                child.process.kill()
            with contextlib.suppress(OSError, ValueError):
                child.conn.close()
        self._children.clear()

    def _reports(self) -> list[Report] | None:
        reports = [c.report for c in self._children]
        if not reports or any(r is None for r in reports):
            return None
        return [r for r in reports if r is not None]

    def assigned(self) -> bool:
        reports = self._reports()
        return reports is not None and any(r.assigned for r in reports)

    def lag(self) -> int | None:
        """Raw lines not yet fed, over the children holding partitions (None while any of
        them does not know, or none holds any)."""
        reports = self._reports()
        if reports is None:
            return None
        held = [r.lag for r in reports if r.assigned]
        if not held or any(lag is None for lag in held):
            return None
        return sum(lag for lag in held if lag is not None)

