"""The seed's report: the widget, the flyout, and the two pivots with their tables."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from pipeline.store.clickhouse import ClickHouse
from pipeline.store.reports.query import (
    HOUR,
    NAMED,
    TLS_KEY,
    TLS_VERSIONS,
    Page,
    ReportQuery,
    UtcDatetime,
    dimensions,
    query_columns,
    ranked_page,
    rollup,
    two_weeks,
)
from schemas.event import OAUTH_MECHANISMS

# Settings of the chart queries: their input is at most days x domains x versions rollup
# rows, where a second thread costs more in the final merge and sort than it saves
# (measured: 50 against 85 ms for a 90-day chart of 500 domains, on 2 cores).
CHART = {"max_threads": 1}

# ---- 1. widget --------------------------------------------------------------------------

class Widget(BaseModel):
    """Distinct users/service accounts that used SMTP AUTH in the last 7 days."""

    senders: int
    previous_senders: int
    change: float | None = Field(description="Relative change against the 7 days before.")
    since: UtcDatetime
    until: UtcDatetime


def widget(ch: ClickHouse, now: datetime) -> Widget:
    before, since, until = two_weeks(now)
    # Both windows in one read of 007's weeks: a 7-day window is a week's tail and the next
    # week's head (or one whole week), so first and last hours decide it exactly.
    current, previous = ch.query_rows(
        "SELECT uniqExactIf(sender_id, first_hour < {until:DateTime('UTC')}"
        " AND last_hour >= {since:DateTime('UTC')}),"
        " uniqExactIf(sender_id, first_hour < {since:DateTime('UTC')}"
        " AND last_hour >= {before:DateTime('UTC')})"
        f" FROM {ch.database}.sender_weeks WHERE week >= {{first:Date}} AND week <= {{last:Date}}",
        {"before": before, "since": since, "until": until, "first": monday(before),
         "last": monday(until - HOUR)})[0]
    change = (current - previous) / previous if previous else None
    return Widget(senders=current, previous_senders=previous, change=change, since=since,
                  until=until)


def monday(ts: datetime) -> date:
    """The first day of `ts`'s UTC week, as 007's `sender_weeks.week` (ClickHouse's
    toMonday)."""
    return (ts - timedelta(days=ts.weekday())).date()


# ---- 2. flyout --------------------------------------------------------------------------

class TlsShare(BaseModel):
    tls_version: str
    messages: int
    share: float


class DailyVolume(BaseModel):
    day: str
    messages: int


class Flyout(BaseModel):
    since: UtcDatetime
    until: UtcDatetime
    tls: list[TlsShare]
    daily: list[DailyVolume]


def _tls_shares(rows: list[tuple[str, int]]) -> list[TlsShare]:
    total = sum(n for _, n in rows) or 1
    order = {v: i for i, v in enumerate(TLS_VERSIONS)}
    return [TlsShare(tls_version=v, messages=n, share=round(n / total, 6))
            for v, n in sorted(rows, key=lambda r: order.get(r[0], 99))]


def _days(since: datetime, until: datetime) -> list[str]:
    day, last, out = since.date(), (until - HOUR).date(), []
    while day <= last:
        out.append(day.isoformat())
        day += timedelta(days=1)
    return out


def _domain_rollup(ch: ClickHouse, q: ReportQuery, since: datetime, until: datetime,
                   per_domain: bool = True) -> tuple[str, dict[str, Any]]:
    """Per day, domain and TLS version (`per_domain`), or per day and TLS version: the
    smallest rollup that answers, the per-sender one where a sender search needs it."""
    where, params = dimensions(q)
    family = "" if q.search else "domain_" if per_domain or q.domain else "tls_"
    columns = "tls_version, messages" if family == "tls_" else (
        "sender_domain, tls_version, messages")
    sql, p = rollup(ch.database, family, columns, since, until, where)
    return sql, {**params, **p}


def flyout(ch: ClickHouse, now: datetime) -> Flyout:
    since, until = ReportQuery(range="7d").window(now)
    # A week of tls_hourly is at most 168 x 7 rows: read as they are and summed here, one
    # plain read costs less than a grouped query, whose fixed cost is most of a flyout
    # (measured: 4.9 against 8.1 ms for 668 rows).
    dates, versions, counts = query_columns(
        ch, f"SELECT toDate(hour), tls_version, messages FROM {ch.database}.tls_hourly"
        " WHERE hour >= {since:DateTime('UTC')} AND hour < {until:DateTime('UTC')}",
        {"since": since, "until": until}, 3, CHART)
    daily: dict[str, int] = {}
    by_version: dict[str, int] = {}
    for day, version, n in zip(day_names(dates), versions, counts, strict=True):
        daily[day] = daily.get(day, 0) + n
        by_version[version] = by_version.get(version, 0) + n
    return Flyout(since=since, until=until,
                  tls=_tls_shares([(v, n) for v, n in by_version.items() if n]),
                  daily=[DailyVolume(day=d, messages=daily.get(d, 0))
                         for d in _days(since, until)])


def _per_day_and_version(ch: ClickHouse, q: ReportQuery, since: datetime,
                         until: datetime) -> Sequence[Sequence[Any]]:
    """Messages per day and TLS version (columns: day, version, count; counts > 0), in that
    order: the flyout's and the TLS chart's one query, totals summed from it."""
    source, params = _domain_rollup(ch, q, since, until, per_domain=False)
    days, versions, counts = query_columns(
        ch, f"SELECT day, tls_version, sum(messages) AS n FROM {source}"
        " GROUP BY day, tls_version HAVING n > 0 ORDER BY day, tls_version", params, 3, CHART)
    return day_names(days), versions, counts


def day_names(days: Sequence[date]) -> list[str]:
    """ISO names of a chart's days, each formatted once. Charts group by the Date itself:
    a name per input row before grouping cost a third of a chart query."""
    names = {day: day.isoformat() for day in set(days)}
    return [names[day] for day in days]


def _totals(versions: Sequence[str], counts: Sequence[int]) -> list[tuple[str, int]]:
    totals: dict[str, int] = {}
    for version, n in zip(versions, counts, strict=True):
        totals[version] = totals.get(version, 0) + n
    return list(totals.items())


# ---- 3. sending volume ------------------------------------------------------------------

# The charts' rows are typed dicts, not models: a 90-day chart has a row per day and domain
# (45,000 at 500 domains), and a model per row cost more than the query that reads them
# (about 3 us each, ~150 ms a chart). The JSON and its schema are the same.
class DomainDay(TypedDict):
    day: str
    domain: str
    messages: int


class SenderVolume(BaseModel):
    sender: str
    domain: str
    messages: int
    tls10: float
    tls11: float
    tls12: float
    tls13: float
    protocol: str = Field(description="Basic, OAuth, or Basic+OAuth.")


class VolumeReport(BaseModel):
    since: UtcDatetime
    until: UtcDatetime
    chart: list[DomainDay]
    rows: list[SenderVolume]
    page: Page


VOLUME_SORT = {"sender": "sender", "domain": "dom", "messages": "n",
                "tls10": "tls10", "tls11": "tls11", "tls12": "tls12", "tls13": "tls13"}


def _sender_rollup(ch: ClickHouse, q: ReportQuery, since: datetime, until: datetime,
                   columns: str, extra: str = "") -> tuple[str, str, dict[str, Any]]:
    """The per-sender rollup, day-sorted and sender-sorted (`ranked_page`'s two passes),
    each with the `{keys}` condition `ranked_page` fills in."""
    where, params = dimensions(q)
    where = " AND ".join(c for c in (NAMED, where, extra, "{keys}")
                         if c)
    sql, p = rollup(ch.database, "", columns, since, until, where)
    by_sender, _ = rollup(ch.database, "", columns, since, until, where,
                          days="daily_by_sender")
    return sql, by_sender, {**params, **p}


def volume(ch: ClickHouse, q: ReportQuery, now: datetime) -> VolumeReport:
    since, until = q.window(now)
    source, params = _domain_rollup(ch, q, since, until)
    chart = ch.beside(
        query_columns, f"SELECT day, sender_domain, sum(messages) AS n FROM {source}"
        " GROUP BY day, sender_domain HAVING n > 0 ORDER BY day, sender_domain", params, 3,
        CHART)
    senders, by_sender, params = _sender_rollup(
        ch, q, since, until, "sender, sender_domain, tls_version, auth_mechanism, messages,"
        " sender_id")
    base = (
        "SELECT sender, any(sender_domain) AS dom, sum(messages) AS n,"
        " sumIf(messages, tls_version = 'TLS1.0') / n AS tls10,"
        " sumIf(messages, tls_version = 'TLS1.1') / n AS tls11,"
        " sumIf(messages, tls_version = 'TLS1.2') / n AS tls12,"
        " sumIf(messages, tls_version = 'TLS1.3') / n AS tls13,"
        " groupUniqArray(if(auth_mechanism IN {oauth:Array(String)}, 'OAuth', 'Basic'))"
        " AS protocols FROM {rows} GROUP BY sender")
    rows, page = ranked_page(ch, q, senders, by_sender,
                             {**params, "oauth": sorted(OAUTH_MECHANISMS)},
                             ("sender_id", "UInt64"), base,
                             q.sorted_by(VOLUME_SORT, "messages"))
    dates, domains, counts = chart()
    days = day_names(dates)
    # Constructed, not validated: the chart's rows are typed by the query, and validating
    # 45,000 dicts again costs as much as building them.
    return VolumeReport.model_construct(
        since=since, until=until,
        chart=[{"day": d, "domain": dom, "messages": n}
               for d, dom, n in zip(days, domains, counts, strict=True)],
        rows=[SenderVolume(sender=s, domain=d, messages=n, tls10=round(a, 6),
                           tls11=round(b, 6), tls12=round(c, 6), tls13=round(e, 6),
                           protocol="+".join(sorted(p)))
              for s, d, n, a, b, c, e, p in rows],
        page=page)


# ---- 4. TLS usage -----------------------------------------------------------------------

class TlsDay(TypedDict):
    day: str
    tls_version: str
    messages: int


class SenderTls(BaseModel):
    sender: str
    domain: str
    tls_version: str
    messages: int


class TlsReport(BaseModel):
    since: UtcDatetime
    until: UtcDatetime
    totals: list[TlsShare]
    chart: list[TlsDay]
    rows: list[SenderTls]
    page: Page


TLS_SORT = {"sender": "sender", "tls_version": "tls_version", "messages": "n",
             "domain": "dom"}


def tls_usage(ch: ClickHouse, q: ReportQuery, now: datetime) -> TlsReport:
    since, until = q.window(now)
    chart = ch.beside(_per_day_and_version, q, since, until)
    senders, by_sender, params = _sender_rollup(
        ch, q, since, until, "sender, sender_domain, tls_version, messages, sender_id")
    base = ("SELECT sender, any(sender_domain) AS dom, tls_version, sum(messages) AS n"
            " FROM {rows} GROUP BY sender, tls_version")
    rows, page = ranked_page(ch, q, senders, by_sender, params,
                             (TLS_KEY, "UInt64"), base,
                             f"{q.sorted_by(TLS_SORT, 'messages')}, tls_version ASC")
    days, versions, counts = chart()
    return TlsReport(
        since=since, until=until, totals=_tls_shares(_totals(versions, counts)),
        chart=[{"day": d, "tls_version": v, "messages": n}
               for d, v, n in zip(days, versions, counts, strict=True)],
        rows=[SenderTls(sender=s, domain=d, tls_version=v, messages=n) for s, d, v, n in rows],
        page=page)
