"""Every HTTP route on the worker's port but the live views (pipeline/live/counters.py):
the dashboard's files, one route per registered report, the OpenAPI document, /metrics,
/healthz and /readyz. Report queries run on the reports' ClickHouse connection and thread
(not the sink's), never on the loop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

import faust
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from pipeline.metrics import Metrics
from pipeline.settings import Settings
from pipeline.store import reports
from pipeline.store.clickhouse import ClickHouse
from pipeline.store.registry import CSV, REPORTS, Report
from pipeline.web import access, api, static
from pipeline.web.health import Health

log = logging.getLogger(__name__)


class Routes:
    def __init__(self, app: faust.App, settings: Settings, ch: ClickHouse, metrics: Metrics,
                 health: Health, clock: Callable[[], datetime]) -> None:
        self.settings = settings
        self.ch = ch
        self.metrics = metrics
        self.health = health
        self.clock = clock
        self._openapi = api.openapi()
        # Before start-up: aiohttp freezes its middleware list when the server starts.
        web_app = app.web.web_app  # type: ignore[attr-defined]  # the aiohttp driver's app
        web_app.middlewares.append(access.middleware(access.Access(settings),
                                                        access.allowed_hosts(settings)))
        self._register(app)

    def _report_view(self, route: Report) -> Callable[..., Any]:
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

    def _export_view(self, route: Report) -> Callable[..., Any]:
        # A plain function, as faust binds a page's handler to its view like a method.
        async def view(web: Any, request: Any) -> Any:
            try:
                query = api.parse_query(request.query, sorts=route.sorts)
            except api.BadRequest as exc:
                return web.json({"error": str(exc), "details": exc.errors}, status=400)
            return await self._stream_csv(request, query)

        return view

    async def _stream_csv(self, request: Any, query: reports.ReportQuery) -> Any:
        """Stream the export a slice (reports.SLICE_DAYS) at a time: each slice is one bounded
        call on the reports' ClickHouse thread (query and CSV), so other reports run between
        slices, and a client that goes away, or stops reading for
        export_write_timeout_seconds, is cut off without holding anything."""
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

    def _register(self, app: faust.App) -> None:
        files = static.static_files()

        @app.page(static.PREFIX, name="dashboard")
        async def index(web: Any, request: Any) -> Any:
            return static.static_response(files, "")

        @app.page(static.PREFIX + "{name:.+}", name="dashboard-file")
        async def static_file(web: Any, request: Any, name: str) -> Any:
            return static.static_response(files, name)

        for route in REPORTS:
            view = self._export_view(route) if route.media == CSV else self._report_view(route)
            app.page(route.path, name=route.name)(view)

        @app.page("/openapi.json", name="openapi")
        async def openapi(web: Any, request: Any) -> Any:
            return web.json(self._openapi)

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
    return reports.export_csv(ch, query, since, until, header)
