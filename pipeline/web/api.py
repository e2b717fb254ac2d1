"""The JSON API: one table of routes, each a report function with its parameter and answer
models; the OpenAPI document is generated from the same table, so it cannot drift."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError

from pipeline.store import reports
from pipeline.store.clickhouse import ClickHouse
from pipeline.store.reports import ReportQuery

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\n")


@dataclass(frozen=True)
class Route:
    path: str
    name: str
    summary: str
    answer: Any  # a pydantic model or a typing form for TypeAdapter
    run: Callable[[ClickHouse, ReportQuery, datetime], Any]
    takes_query: bool = True
    sorts: tuple[str, ...] = ()  # the `sort` values this report knows


ROUTES: tuple[Route, ...] = (
    Route("/api/v1/widget", "widget", "Distinct SMTP AUTH senders, last 7 days vs the 7 before",
          reports.Widget, lambda ch, q, now: reports.widget(ch, now), takes_query=False),
    Route("/api/v1/flyout", "flyout", "Last week's TLS usage and daily volumes",
          reports.Flyout, lambda ch, q, now: reports.flyout(ch, now), takes_query=False),
    Route("/api/v1/volume", "volume", "Sending volume: per-day chart and per-sender table",
          reports.VolumeReport, reports.volume, sorts=tuple(reports.VOLUME_SORT)),
    Route("/api/v1/tls", "tls", "TLS usage: totals, per-day chart, per-sender table",
          reports.TlsReport, reports.tls_usage, sorts=tuple(reports.TLS_SORT)),
    Route("/api/v1/remediation", "remediation", "Senders still on TLS 1.0/1.1 or SSL 3",
          reports.Remediation, reports.remediation, sorts=tuple(reports.REMEDIATION_SORT)),
    Route("/api/v1/failures", "failures", "Failed AUTH by account and by client IP",
          reports.Failures, reports.failures),
    Route("/api/v1/new-client-ips", "new-client-ips",
          "Client IPs an account used for the first time in 90 days",
          list[reports.NewClientIp], reports.new_client_ips),
    Route("/api/v1/alerts", "alerts", "Alerts decided in the range, newest first",
          list[reports.AlertRow], reports.alerts),
    Route("/api/v1/week-over-week", "week-over-week", "Messages per domain, this week vs last",
          list[reports.DomainChange], lambda ch, q, now: reports.week_over_week(ch, now),
          takes_query=False),
)
BY_NAME = {route.name: route for route in ROUTES}


class BadRequest(ValueError):
    """A request parameter is invalid; the message is safe to show."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" if e["loc"] else e["msg"]
            for e in errors))
        self.errors = errors


def parse_query(params: Mapping[str, str], takes_query: bool = True,
                sorts: tuple[str, ...] | None = None) -> ReportQuery:
    """Validate query-string parameters; unknown names and bad values are a BadRequest.
    `sorts`: the columns the report sorts by (None: do not check)."""
    if not takes_query and params:
        raise BadRequest([{"loc": [k], "msg": f"unknown parameter {k!r}"} for k in params])
    try:
        query = ReportQuery.model_validate(dict(params))
    except ValidationError as exc:
        raise BadRequest([{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors(
            include_url=False, include_context=False, include_input=False)]) from exc
    if sorts is not None and query.sort is not None and query.sort not in sorts:
        known = ", ".join(sorts) or "none"
        raise BadRequest([{"loc": ["sort"],
                           "msg": f"unknown sort {query.sort!r}; this report sorts by {known}"}])
    return query


def answer_json(route: Route, result: Any) -> Any:
    return TypeAdapter(route.answer).dump_python(result, mode="json")


def csv_safe(value: Any) -> Any:
    """Spreadsheets run cells that start with = + - @ as formulas: mark them as text."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def csv_chunks(rows: Iterable[Iterable[Any]], header: Iterable[str] | None,
               rows_per_chunk: int = 2000) -> Iterator[bytes]:
    """CSV text in chunks, formula-safe, header first (if given)."""
    buffer = io.StringIO()
    # Every cell quoted: in a semicolon locale an unquoted `a;-1+1` is two cells, the
    # second a formula; quoted, it is one cell of text.
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_ALL)
    if header is not None:
        writer.writerow(header)
    for count, row in enumerate(rows, 1):
        writer.writerow([csv_safe(v) for v in row])
        if count % rows_per_chunk == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def openapi() -> dict[str, Any]:
    """OpenAPI 3.1 for every route, from the models themselves."""
    components: dict[str, Any] = {}

    def schema_of(form: Any) -> dict[str, Any]:
        schema = TypeAdapter(form).json_schema(ref_template="#/components/schemas/{model}")
        components.update(schema.pop("$defs", {}))
        return schema

    query_schema = schema_of(ReportQuery)
    query_params = [
        {"name": name, "in": "query", "required": False, "schema": prop,
         **({"description": prop["description"]} if "description" in prop else {})}
        for name, prop in query_schema["properties"].items()]
    error = {"description": "Invalid parameters", "content": {"application/json": {
        "schema": {"type": "object", "properties": {
            "error": {"type": "string"}, "details": {"type": "array"}}}}}}
    paths: dict[str, Any] = {}
    for route in ROUTES:
        paths[route.path] = {"get": {
            "operationId": route.name.replace("-", "_"),
            "summary": route.summary,
            "parameters": query_params if route.takes_query else [],
            "responses": {
                "200": {"description": "OK", "content": {
                    "application/json": {"schema": schema_of(route.answer)}}},
                "400": error,
            },
        }}
    paths["/api/v1/export.csv"] = {"get": {
        "operationId": "export_csv",
        "summary": "Request report: the detailed CSV of the range, streamed "
                   "(cells that a spreadsheet would run as formulas are quoted)",
        "parameters": query_params,
        "responses": {"200": {"description": "CSV", "content": {"text/csv": {
            "schema": {"type": "string"}}}}, "400": error},
    }}
    paths["/api/v1/summary"] = {"get": {
        "operationId": "summary", "summary": "Totals of the last 7 days from the events",
        "responses": {"200": {"description": "OK", "content": {"application/json": {
            "schema": schema_of(reports.Summary)}}}}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "smtp-auth-insights", "version": "1",
                 "description": "The SMTP AUTH clients report, live, for any mail estate."},
        "paths": paths,
        "components": {"schemas": components},
    }

