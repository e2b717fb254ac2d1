"""`smtp-auth report …`: the reports in the terminal (rich tables), or as JSON or CSV.

With the embedded engine the worker owns the data directory, so the command asks the
worker's API; with a ClickHouse server it queries ClickHouse directly, same functions.
"""

from __future__ import annotations

import contextlib
import csv
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from pipeline.settings import Settings
from pipeline.store import reports
from pipeline.store.registry import BY_NAME
from pipeline.web import api
from pipeline.web.access import Access


class ReportError(RuntimeError):
    pass


def fetch(settings: Settings, name: str, params: dict[str, str], url: str | None) -> Any:
    """The report's JSON answer, from the worker's API or straight from ClickHouse."""
    route = BY_NAME[name]
    query = api.parse_query(params, route.takes_query, route.sorts)  # clear errors before any I/O
    if url or settings.embedded_clickhouse:
        return _http_json(settings, f"{_base(settings, url)}{route.path}", params)
    from pipeline.store.clickhouse import connect

    ch = connect(settings)
    try:
        return api.answer_json(route, route.run(ch, query, datetime.now(UTC)))
    finally:
        ch.close()


def export(settings: Settings, params: dict[str, str], url: str | None) -> Iterator[bytes]:
    query = api.parse_query(params, sorts=BY_NAME["export"].sorts)
    if url or settings.embedded_clickhouse:
        target = f"{_base(settings, url)}/api/v1/export.csv?{urllib.parse.urlencode(params)}"
        with _open(settings, target) as response:
            while chunk := response.read(65536):
                yield chunk
        return
    from pipeline.store.clickhouse import connect

    ch = connect(settings)
    try:
        header: tuple[str, ...] | None = reports.EXPORT_COLUMNS
        for since, until in reports.export_slices(query, datetime.now(UTC)):
            yield reports.export_csv(ch, query, since, until, header)
            header = None
    finally:
        ch.close()


def _base(settings: Settings, url: str | None) -> str:
    return (url or f"http://{settings.web_host}:{settings.web_port}").rstrip("/")


def _open(settings: Settings, target: str) -> Any:
    # The worker's own credentials, when access control is on (never printed).
    request = urllib.request.Request(  # noqa: S310 - the configured API URL
        target, headers=Access(settings).header())
    try:
        return urllib.request.urlopen(request, timeout=120)  # noqa: S310 - configured API URL
    except urllib.error.HTTPError as exc:
        body = exc.read().decode(errors="replace")
        with contextlib.suppress(ValueError, AttributeError):
            body = json.loads(body).get("error", body)
        raise ReportError(f"the API answered {exc.code}: {body}") from exc
    except urllib.error.URLError as exc:
        raise ReportError(f"cannot reach the worker API at {target.split('/api')[0]} "
                          f"({exc.reason}); is `smtp-auth worker` (or `make run`) "
                          "running?") from exc


def _http_json(settings: Settings, target: str, params: dict[str, str]) -> Any:
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    with _open(settings, target + query) as response:
        return json.loads(response.read())


def tables(name: str, answer: Any) -> list[tuple[str, list[dict[str, Any]]]]:
    """The answer as titled lists of flat rows (what table and CSV output show)."""
    kind = BY_NAME[name].name
    if kind == "widget":
        return [("SMTP AUTH senders, last 7 days", [answer])]
    if kind == "flyout":
        return [("TLS usage, last 7 days", answer["tls"]), ("Daily volume", answer["daily"])]
    if kind == "failures":
        return [("Failures by account", answer["by_account"]),
                ("Failures by client IP", answer["by_ip"])]
    if kind in ("volume", "tls", "remediation"):
        rows = [{k: ", ".join(v) if isinstance(v, list) else v for k, v in r.items()}
                for r in answer["rows"]]
        page = answer["page"]
        return [(f"{name} (page {page['page']}, {page['total']} rows in all)", rows)]
    if isinstance(answer, dict):  # one object (the summary): one row, nested parts as text
        return [(name, [{k: json.dumps(v, sort_keys=True) if isinstance(v, dict | list) else v
                         for k, v in answer.items()}])]
    return [(name, answer)]


def print_tables(name: str, answer: Any, console: Console | None = None) -> None:
    console = console or Console()
    for title, rows in tables(name, answer):
        table = Table(title=title, title_justify="left")
        columns = list(rows[0]) if rows else ["(no data in this range)"]
        for column in columns:
            numeric = bool(rows) and isinstance(rows[0].get(column), int | float)
            table.add_column(column, justify="right" if numeric else "left")
        for row in rows:
            table.add_row(*[_cell(row.get(c)) for c in columns])
        console.print(table)


def write_csv(name: str, answer: Any) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    for _, rows in tables(name, answer):
        if rows:
            writer.writerow(list(rows[0]))
            writer.writerows([[reports.csv_safe(v) for v in r.values()] for r in rows])


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.1%}" if 0 <= value <= 1 else f"{value:.2f}"
    return "" if value is None else str(value)
