"""The faust worker: wiring only. Logic lives in normalize/, sink, reports.

Agents and topics have stable names:
  normalize   smtp-auth.raw → smtp-auth.events (key: sender) + smtp-auth.dlq
  sink        smtp-auth.events → ClickHouse (see pipeline/store/sink.py for why it is not an agent)
  web         /api/v1/…, /live/v1/…, /metrics, /healthz, /readyz on web_host:web_port
              (127.0.0.1 by default; only the allowed Host names)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import faust
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from pipeline.ingest.kafka import ensure_topics, faust_credentials
from pipeline.live.alerting import Alerting
from pipeline.live.counters import LiveCounters
from pipeline.metrics import Metrics
from pipeline.normalize.acks import AckOrder
from pipeline.normalize.normalizer import Normalizer, Origin, Outcome, normalize_config
from pipeline.settings import Settings
from pipeline.store import reports
from pipeline.store.clickhouse import ClickHouse, connect, migrate
from pipeline.store.sink import EventSink
from pipeline.web import api, dashboard
from pipeline.web.health import Health

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class Pipeline:
    """One worker's faust app and the objects its agents share."""

    def __init__(self, settings: Settings, ch: ClickHouse, clock: Clock = utc_now) -> None:
        self.settings = settings
        self.ch = ch
        self.clock = clock
        self.metrics = Metrics()
        self.normalizers: dict[int, Normalizer] = {}
        self.acks: AckOrder[Any] = AckOrder()
        self._ack_stream: Any = None
        self._fed: dict[int, int] = {}  # raw partition → offset of the last line fed
        self._openapi = api.openapi()
        self.sink = EventSink(settings, ch, self.metrics)
        self.app = self._build_app()
        self.health = Health(ch, self.sink, self.metrics, self._normalize_lag, self._assigned,
                             clock)

    def _build_app(self) -> faust.App:
        s = self.settings
        app = faust.App(
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
        raw = app.topic(s.topic_raw, key_type=bytes, value_type=bytes,
                        key_serializer="raw", value_serializer="raw")
        self.events_topic = app.topic(s.topic_events, key_serializer="raw",
                                      value_serializer="raw")
        self.dlq_topic = app.topic(s.topic_dlq, key_serializer="raw", value_serializer="raw")

        app.agent(raw, name="normalize")(self._normalize_agent)
        self.live = LiveCounters(app, s, self.events_topic, self.clock, self.metrics)
        self.alerting = Alerting(app, s, self.events_topic, self.metrics, self.clock)
        app.timer(max(1.0, s.session_timeout_seconds / 10), name="expire-idle")(self._expire)
        app.task(self._sink_task)
        app.timer(s.status_interval_seconds, name="status-line")(self._status_line)
        app.on_partitions_revoked.connect(self._on_revoked)  # type: ignore[arg-type]  # faust stub
        # Before start-up: aiohttp freezes its middleware list when the server starts.
        web_app = app.web.web_app  # type: ignore[attr-defined]  # the aiohttp driver's app
        web_app.middlewares.append(dashboard.middleware(dashboard.Access(s),
                                                        dashboard.allowed_hosts(s)))
        self._routes(app)
        return app

    # ---- normalize ---------------------------------------------------------------------
    def _normalizer(self, partition: int) -> Normalizer:
        normalizer = self.normalizers.get(partition)
        if normalizer is None:
            normalizer = self.normalizers[partition] = Normalizer(
                normalize_config(self.settings), self.settings.max_line_bytes,
                metrics=self.metrics)
        return normalizer

    async def _normalize_agent(self, stream: Any) -> None:
        # Manual acks: a line is acked when everything it contributed to has been emitted,
        # so a restart replays the lines of still-open sessions and rebuilds them.
        stream = stream.noack()
        self._ack_stream = stream
        async for event in stream.events():
            message = event.message
            self.acks.fed(message.partition, message.offset)
            self._fed[message.partition] = message.offset
            outcome = self._normalizer(message.partition).feed(
                message.value or b"", event, self.clock(),
                Origin(message.topic, message.partition, message.offset), key=message.key)
            await self._route(outcome, stream)

    async def _route(self, outcome: Outcome, stream: Any) -> None:
        for ev in outcome.events:
            await self.events_topic.send(key=(ev.sender or "").encode(),
                                         value=ev.model_dump_json().encode())
        for rejection in outcome.rejections:
            await self.dlq_topic.send(value=rejection.model_dump_json().encode())
        for done in outcome.released:
            event: Any = done  # the worker's tokens are faust events
            for ready in self.acks.released(event.message.partition, event.message.offset,
                                            event):
                await stream.ack(ready)
        self.metrics.pending.set(sum(n.pending() for n in self.normalizers.values()))

    async def _expire(self) -> None:
        """Sessions of servers that went quiet end by the receive clock. Only on a partition
        read up to its end: lines still waiting in Kafka would show the server is not quiet,
        and a worker behind (a replay, a restart) expires by event time alone."""
        if self._ack_stream is None:
            return
        now = self.clock()
        for partition, normalizer in list(self.normalizers.items()):
            if self._caught_up(partition):
                await self._route(normalizer.expire_quiet(now), self._ack_stream)

    async def _status_line(self) -> None:
        log.info(self.health.status_line())

    def _assigned(self) -> bool:
        return any(tp.topic == self.settings.topic_raw
                   for tp in self.app.assignor.assigned_actives())

    def _normalize_lag(self) -> int | None:
        from faust.types import TP

        total = 0
        for partition, fed in list(self._fed.items()):
            try:
                highwater = self.app.consumer.highwater(TP(self.settings.topic_raw, partition))
            except Exception:  # no consumer yet, or the partition just left
                return None
            if highwater is not None:
                total += max(0, highwater - fed - 1)
        return total

    def _caught_up(self, partition: int) -> bool:
        from faust.types import TP

        try:
            highwater = self.app.consumer.highwater(TP(self.settings.topic_raw, partition))
        except Exception:  # no consumer yet, or the partition just left: not known
            return False
        fed = self._fed.get(partition)
        return highwater is not None and fed is not None and fed + 1 >= highwater

    async def _on_revoked(self, app: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
        revoked = args[0] if args else kwargs.get("revoked", ())
        # The new owner replays the unacked lines of these partitions; forget our copy.
        for tp in revoked:
            if tp.topic == self.settings.topic_raw:
                self.normalizers.pop(tp.partition, None)
                self._fed.pop(tp.partition, None)
                self.acks.forget(tp.partition)

    # ---- sink --------------------------------------------------------------------------
    async def _sink_task(self) -> None:
        try:
            await self.sink.run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("sink failed")
            await self.app.crash(exc)

    # ---- web ---------------------------------------------------------------------------
    def _report_view(self, route: api.Route) -> Callable[..., Any]:
        async def view(web: Any, request: Any) -> Any:
            try:
                query = api.parse_query(request.query, route.takes_query, route.sorts)
            except api.BadRequest as exc:
                return web.json({"error": str(exc), "details": exc.errors}, status=400)
            try:
                result = await self.ch.call(route.run, self.ch, query, self.clock())
            except Exception:
                log.exception("report %s failed", route.name)
                return web.json({"error": "the report query failed; see the worker log"},
                                status=503)
            return web.json(api.answer_json(route, result))

        return view

    async def _stream_csv(self, request: Any, query: reports.ReportQuery) -> Any:
        """Stream the export a day at a time: each day is one short call on the ClickHouse
        thread (query and CSV), so reports and the sink run between days, and a client that
        goes away, or stops reading for export_write_timeout_seconds, is cut off without
        holding anything."""
        from aiohttp import web as aioweb

        now = self.clock()
        since, until = query.window(now)
        response = aioweb.StreamResponse(headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="smtp-auth-{since:%Y%m%d%H}-'
                                   f'{until:%Y%m%d%H}.csv"'})
        await response.prepare(request)
        header: tuple[str, ...] | None = reports.EXPORT_COLUMNS
        timeout = self.settings.export_write_timeout_seconds
        try:
            for start, end in reports.export_slices(query, now):
                body = await self.ch.call(_export_csv, self.ch, query, start, end, header)
                header = None
                await asyncio.wait_for(response.write(body), timeout)
            await response.write_eof()
        except TimeoutError:
            log.warning("export stalled for %.0f s: cut off", timeout)
            request.transport.close()
        except ConnectionError:
            pass  # the client went away: nothing is held, nothing to do
        except Exception:
            # The client sees a truncated file without the final newline.
            log.exception("export failed")
        return response

    def _routes(self, app: faust.App) -> None:
        files = dashboard.static_files()

        @app.page(dashboard.PREFIX, name="dashboard")
        async def index(web: Any, request: Any) -> Any:
            return dashboard.static_response(files, "")

        @app.page(dashboard.PREFIX + "{name:.+}", name="dashboard-file")
        async def static(web: Any, request: Any, name: str) -> Any:
            return dashboard.static_response(files, name)

        for route in api.ROUTES:
            app.page(route.path, name=route.name)(self._report_view(route))

        @app.page("/api/v1/export.csv", name="export")
        async def export(web: Any, request: Any) -> Any:
            try:
                query = api.parse_query(request.query)
            except api.BadRequest as exc:
                return web.json({"error": str(exc), "details": exc.errors}, status=400)
            return await self._stream_csv(request, query)

        @app.page("/openapi.json", name="openapi")
        async def openapi(web: Any, request: Any) -> Any:
            return web.json(self._openapi)

        @app.page("/api/v1/summary")
        async def summary(web: Any, request: Any) -> Any:
            now = self.clock()
            result = await self.ch.call(reports.summary, self.ch, now - reports.WEEK, now)
            return web.json(result.model_dump(mode="json"))

        @app.page("/metrics")
        async def metrics(web: Any, request: Any) -> Any:
            self.health.lags()
            body = generate_latest(self.metrics.registry)
            return web.bytes(body, content_type=CONTENT_TYPE_LATEST.split(";")[0])

        @app.page("/healthz")
        async def healthz(web: Any, request: Any) -> Any:
            return web.json({"status": "ok"})  # liveness: the process serves HTTP

        @app.page("/readyz")
        async def readyz(web: Any, request: Any) -> Any:
            ready, checks = await self.health.readiness()
            return web.json({"status": "ready" if ready else "not ready", **checks},
                            status=200 if ready else 503)


def _export_csv(ch: ClickHouse, query: reports.ReportQuery, since: datetime, until: datetime,
                header: tuple[str, ...] | None) -> bytes:
    return b"".join(api.csv_chunks(reports.export_slice(ch, query, since, until), header))


def run_worker(settings: Settings) -> None:
    """Create topics, migrate ClickHouse, then run the faust worker until stopped."""
    from faust.worker import Worker

    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(ensure_topics(settings))
    ch = connect(settings)
    migrate(ch, settings.events_ttl_days, settings.aggregate_ttl_days)
    pipeline = Pipeline(settings, ch)
    try:
        Worker(pipeline.app, loglevel="INFO", quiet=True).execute_from_commandline()
    finally:
        ch.close()
