"""The faust worker: composition only. It builds the app and hands each stage what it needs.

Agents, tasks and topics have stable names:
  normalize   smtp-auth.raw → smtp-auth.events (key: sender) + smtp-auth.dlq, a plain
              consumer, a fetch at a time (pipeline/normalize/agent.py says why), in
              `normalize_processes` processes of its own (pipeline/normalize/process.py)
  count-feed  smtp-auth.events → <app>-count-feed, a fetch per message, a plain consumer task
              (pipeline/live/feed.py says why)
  count       <app>-count-feed → the live counters table and /live/v1 (pipeline/live/), and
              the alert signals from the same decoded events
  alert       alert signals → smtp-auth.alerts (+ webhook) (pipeline/live/alerting.py)
  sink        smtp-auth.events + smtp-auth.alerts → ClickHouse, a plain consumer task
              (pipeline/store/sink.py says why it is not an agent)
  web         /ui/, /api/v1/…, /openapi.json, /metrics, /healthz, /readyz (pipeline/web/) on
              web_host:web_port (127.0.0.1 by default; only the allowed Host names)

Two ClickHouse connections, each with its own thread: the sink's (inserts, and the health
check of that path) and the reports' (every /api/v1 query and export slice), so a slow or
busy dashboard never queues in front of an insert.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import faust

from pipeline.ingest.kafka import ensure_topics, faust_credentials
from pipeline.live.alerting import Alerting
from pipeline.live.counters import LiveCounters
from pipeline.live.feed import CountFeed
from pipeline.metrics import Metrics
from pipeline.normalize.agent import NormalizeAgent
from pipeline.normalize.process import NormalizeProcesses
from pipeline.settings import Settings
from pipeline.store.clickhouse import ClickHouse, connect, migrate
from pipeline.store.sink import EventSink
from pipeline.web.health import Health
from pipeline.web.routes import Routes

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
FETCH_MAX_WAIT_MS = 100
# The collector's thresholds for the worker (CPython's default: 700, 10, 10). Its live heap
# is large and long-lived (two dicts per sender in the counters, the alert states), and
# every full collection walks all of it: with the defaults a 200,000-sender run spent
# about 9 s of its 30 s in the collector, 8 s of it in 24 full collections (measured with
# gc.callbacks); with these, about 2 s, and events → counters ran 1.2-1.5x faster
# (bench/RESULTS.md). Cycles are still collected, a little later.
GC_THRESHOLDS = (50_000, 20, 100)


def _short_fetch_waits() -> None:
    """faust's consumer asks the broker to hold a fetch up to 1.5 s (hard-coded). aiokafka
    leaves out of a fetch the partitions whose records are still being handled, so while
    the count agent works through one fetch, the next one asks only for partitions with
    nothing new and waits out the 1.5 s: the live views then move in 1.5-2 s steps
    (measured: live latency p50 0.1 s, p99 2 s). 100 ms keeps an idle worker's fetches
    cheap and bounds that wait."""
    from faust.transport.drivers import aiokafka as faust_kafka

    create = faust_kafka.AIOKafkaConsumerThread._create_worker_consumer
    if getattr(create, "_short_wait", False):
        return

    def create_worker_consumer(self: Any, transport: Any) -> Any:
        consumer = create(self, transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read when the consumer starts
        return consumer

    create_worker_consumer._short_wait = True  # type: ignore[attr-defined]
    faust_kafka.AIOKafkaConsumerThread._create_worker_consumer = (  # type: ignore[method-assign]
        create_worker_consumer)


def utc_now() -> datetime:
    return datetime.now(UTC)


class Pipeline:
    """One worker's faust app and the stages it runs."""

    def __init__(self, settings: Settings, ch: ClickHouse, reads: ClickHouse,
                 clock: Clock = utc_now, normalize: NormalizeProcesses | None = None) -> None:
        self.settings = settings
        self.ch = ch
        self.clock = clock
        self.metrics = normalize.metrics if normalize else Metrics()
        self.sink = EventSink(settings, ch, self.metrics)
        s = settings
        _short_fetch_waits()
        self.app = app = faust.App(
            s.app_id,
            broker=[f"kafka://{h.strip()}" for h in s.kafka_bootstrap_servers.split(",")],
            broker_credentials=faust_credentials(s),
            store="memory://",
            datadir=str(s.data_dir / "faust"),
            web_bind=s.web_host,
            web_host=s.web_host,
            web_port=s.web_port,
            web_in_thread=False,
            # Only our routes: faust's own views would show raw table entries to anyone.
            web_router_enabled=False, web_tables_enabled=False, web_stats_enabled=False,
            web_graph_enabled=False,
            topic_partitions=s.topic_partitions,
            topic_replication_factor=s.topic_replication,
            # Lines of open sessions stay unacked on purpose; a rebalance must not wait for them.
            stream_wait_empty=False,
            table_standby_replicas=0,  # live views gather from active owners only
            producer_acks=-1,
        )
        # Normalizing is the heaviest stage: run_worker starts it in processes of its own
        # (normalize_processes); 0 runs it in this loop.
        self.normalize: NormalizeAgent | NormalizeProcesses = (
            normalize or NormalizeAgent(s, self.metrics, clock))
        self.alerting = Alerting(app, s, self.metrics, clock)
        self.live = LiveCounters(app, s, clock, self.metrics, [self.alerting])
        self.feed = CountFeed(s, self.live.feed_topic.get_topic_name())
        app.task(self._guarded("normalize", self.normalize.run))
        app.task(self._guarded("count-feed", self.feed.run))
        app.task(self._guarded("sink", self.sink.run))
        self.health = Health(ch, self.sink, self.metrics, self.normalize.lag,
                             self.normalize.assigned, clock, self.live.recovering,
                             self.feed.lag)
        app.timer(s.status_interval_seconds, name="status-line")(self._status_line)
        self.routes = Routes(app, s, reads, self.metrics, self.health, clock)

    def _guarded(self, name: str, run: Callable[[], Awaitable[None]]
                 ) -> Callable[[], Awaitable[None]]:
        """A plain-consumer stage as a faust task: if it fails, the worker stops (and is
        restarted) rather than running on without it."""
        async def task() -> None:
            try:
                await run()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("%s failed", name)
                await self.app.crash(exc)
        task.__name__ = task.__qualname__ = f"{name}_task"
        return task

    async def _status_line(self) -> None:
        log.info(self.health.status_line())


def tune_gc() -> None:
    """Once the worker is built: what start-up made (modules, the app, the engine's
    bindings) lives as long as the process, so no collection scans it again."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def connections(settings: Settings) -> tuple[ClickHouse, ClickHouse]:
    """The sink's connection (the database migrated through it) and the reports'."""
    ch = connect(settings, "sink", side=False)
    migrate(ch, settings.events_ttl_days, settings.aggregate_ttl_days)
    return ch, connect(settings, "reports")


def run_worker(settings: Settings) -> None:
    """Create topics, migrate ClickHouse, then run the faust worker until stopped."""
    from faust.worker import Worker

    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(ensure_topics(settings))
    normalize = None
    if settings.normalize_processes:
        normalize = NormalizeProcesses(settings, Metrics(), settings.normalize_processes)
        normalize.start()  # raw lines are normalized while the rest of the worker starts
    ch, reads = connections(settings)
    pipeline = Pipeline(settings, ch, reads, normalize=normalize)
    tune_gc()
    try:
        Worker(pipeline.app, loglevel="INFO", quiet=True).execute_from_commandline()
    finally:
        reads.close()
        ch.close()
