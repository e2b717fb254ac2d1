"""Report queries over ClickHouse: typed parameters in, typed rows out, parameterized SQL.
The dashboard, the JSON API and the CLI all call these functions."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel

from pipeline.clickhouse import ClickHouse

WEEK = timedelta(days=7)


class Widget(BaseModel):
    """Distinct users/service accounts that used SMTP AUTH in the last 7 days."""

    senders: int
    previous_senders: int
    change: float | None  # relative change against the 7 days before; None without a base
    since: datetime
    until: datetime


def widget(ch: ClickHouse, now: datetime) -> Widget:
    since, before = now - WEEK, now - 2 * WEEK
    sql = (
        f"SELECT uniqExactIf(sender, ts >= {{since:DateTime64(3)}}),"
        f" uniqExactIf(sender, ts < {{since:DateTime64(3)}})"
        f" FROM {ch.database}.events"
        f" WHERE kind = 'submission' AND sender IS NOT NULL"
        f" AND ts >= {{before:DateTime64(3)}} AND ts < {{now:DateTime64(3)}}"
    )
    current, previous = ch.query_rows(sql, {"since": since, "before": before, "now": now})[0]
    change = (current - previous) / previous if previous else None
    return Widget(senders=current, previous_senders=previous, change=change,
                  since=since, until=now)


class Summary(BaseModel):
    """Totals over a window: messages per TLS version, distinct senders, auth failures."""

    since: datetime
    until: datetime
    messages: int
    senders: int
    auth_failures: int
    by_tls: dict[str, int]


def summary(ch: ClickHouse, since: datetime, until: datetime) -> Summary:
    # FINAL: counts must not include replayed copies that a merge has not collapsed yet.
    sql = (
        f"SELECT kind, tls_version, count(), uniqExact(sender) FROM {ch.database}.events FINAL"
        f" WHERE ts >= {{since:DateTime64(3)}} AND ts < {{until:DateTime64(3)}}"
        f" GROUP BY kind, tls_version"
    )
    by_tls: dict[str, int] = {}
    failures = 0
    for kind, tls, count, _ in ch.query_rows(sql, {"since": since, "until": until}):
        if kind == "submission":
            by_tls[tls] = count
        else:
            failures += count
    senders_sql = (
        f"SELECT uniqExact(sender) FROM {ch.database}.events WHERE kind = 'submission'"
        f" AND sender IS NOT NULL"
        f" AND ts >= {{since:DateTime64(3)}} AND ts < {{until:DateTime64(3)}}"
    )
    senders = ch.query_rows(senders_sql, {"since": since, "until": until})[0][0]
    return Summary(since=since, until=until, messages=sum(by_tls.values()), senders=senders,
                   auth_failures=failures, by_tls=dict(sorted(by_tls.items())))
