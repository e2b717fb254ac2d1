"""The one list of reports: the API routes, the OpenAPI document and the CLI all read it.

Adding a report is one entry here plus its query function in `pipeline.store.reports`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pipeline.store import reports
from pipeline.store.clickhouse import ClickHouse
from pipeline.store.reports import ReportQuery

CSV = "text/csv"


@dataclass(frozen=True)
class Report:
    name: str  # the CLI's name and the API path's last part
    summary: str
    answer: Any  # a pydantic model or a typing form for TypeAdapter (None: a CSV stream)
    run: Callable[[ClickHouse, ReportQuery, datetime], Any]
    takes_query: bool = True
    sorts: tuple[str, ...] = ()  # the `sort` values this report knows
    aliases: tuple[str, ...] = ()  # more names on the command line
    media: str = "application/json"

    @property
    def path(self) -> str:
        return f"/api/v1/{self.name}" + (".csv" if self.media == CSV else "")

    @property
    def operation_id(self) -> str:
        return self.name.replace("-", "_") + ("_csv" if self.media == CSV else "")


REPORTS: tuple[Report, ...] = (
    Report("widget", "Distinct SMTP AUTH senders, last 7 days vs the 7 before",
           reports.Widget, lambda ch, q, now: reports.widget(ch, now), takes_query=False),
    Report("flyout", "Last week's TLS usage and daily volumes",
           reports.Flyout, lambda ch, q, now: reports.flyout(ch, now), takes_query=False),
    Report("volume", "Sending volume: per-day chart and per-sender table",
           reports.VolumeReport, reports.volume, sorts=tuple(reports.VOLUME_SORT),
           aliases=("senders",)),
    Report("tls", "TLS usage: totals, per-day chart, per-sender table",
           reports.TlsReport, reports.tls_usage, sorts=tuple(reports.TLS_SORT)),
    Report("remediation", "Senders still on TLS 1.0/1.1 or SSL 3",
           reports.Remediation, reports.remediation, sorts=tuple(reports.REMEDIATION_SORT)),
    Report("failures", "Failed AUTH by account and by client IP",
           reports.Failures, reports.failures),
    Report("new-client-ips", "Client IPs an account used for the first time in 90 days",
           list[reports.NewClientIp], reports.new_client_ips),
    Report("alerts", "Alerts decided in the range, newest first",
           list[reports.AlertRow], reports.alerts),
    Report("week-over-week", "Messages per domain, this week vs last",
           list[reports.DomainChange], lambda ch, q, now: reports.week_over_week(ch, now),
           takes_query=False),
    Report("summary", "Totals of the last 7 days from the events",
           reports.Summary, lambda ch, q, now: reports.summary(ch, now - reports.WEEK, now),
           takes_query=False),
    Report("export", "Request report: the detailed CSV of the range, streamed "
           "(cells that a spreadsheet would run as formulas are quoted)",
           None, reports.export_rows, media=CSV),
)
BY_NAME: dict[str, Report] = {
    name: report for report in REPORTS for name in (report.name, *report.aliases)}
