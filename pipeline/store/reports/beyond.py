"""Beyond the seed: remediation, failures, new client IPs, week over week, totals,
alerts."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, Field

from pipeline.store.clickhouse import ClickHouse
from pipeline.store.reports.query import (
    NAMED,
    Page,
    ReportQuery,
    UtcDatetime,
    _filters,
    dimensions,
    ranked_page,
    rollup,
    two_weeks,
)
from schemas.event import LEGACY_TLS

# ---- 6. beyond the seed -----------------------------------------------------------------

class LegacySender(BaseModel):
    sender: str
    domain: str
    messages: int
    tls_versions: list[str]
    client_ips: list[str]
    last_seen: UtcDatetime


class Remediation(BaseModel):
    since: UtcDatetime
    until: UtcDatetime
    rows: list[LegacySender]
    page: Page


REMEDIATION_SORT = {"sender": "sender", "messages": "n", "last_seen": "seen",
                     "domain": "dom"}


def remediation(ch: ClickHouse, q: ReportQuery, now: datetime) -> Remediation:
    """Who still submits over legacy TLS (1.0, 1.1, SSL 3), from where, and how much."""
    since, until = q.window(now)
    where, params = dimensions(q)
    where = " AND ".join(c for c in (NAMED,
                                     "tls_version IN {legacy:Array(String)}", where,
                                     "{keys}") if c)
    columns = "sender, sender_domain, tls_version, messages, last_submission, sender_id"
    source, p = rollup(ch.database, "", columns, since, until, where)
    by_sender, _ = rollup(ch.database, "", columns, since, until, where,
                          days="daily_by_sender")
    params.update(p, legacy=sorted(LEGACY_TLS))
    base = (
        "SELECT sender, any(sender_domain) AS dom, sum(messages) AS n,"
        " arraySort(groupUniqArray(tls_version)),"
        " max(last_submission) AS seen FROM {rows} GROUP BY sender")
    rows, page = ranked_page(ch, q, source, by_sender, params, ("sender_id", "UInt64"), base,
                             q.sorted_by(REMEDIATION_SORT, "messages"))
    ips = _legacy_ips(ch, [row[0] for row in rows], since, until)
    return Remediation(
        since=since, until=until,
        rows=[LegacySender(sender=s, domain=d or "", messages=n, tls_versions=list(v),
                           client_ips=ips.get(s, []), last_seen=seen)
              for s, d, n, v, seen in rows],
        page=page)


def _legacy_ips(ch: ClickHouse, senders: list[str], since: datetime,
                until: datetime) -> dict[str, list[str]]:
    """Up to 50 client IPs per sender that submitted over legacy TLS in the window (the
    table is sorted by sender: a page of senders reads a few granules)."""
    if not senders:
        return {}
    rows = ch.query_rows(
        "SELECT sender, arraySort(groupUniqArray(50)(client_ip))"
        f" FROM {ch.database}.legacy_ips WHERE sender IN {{senders:Array(String)}}"
        " AND hour >= {since:DateTime('UTC')} AND hour < {until:DateTime('UTC')}"
        " GROUP BY sender", {"senders": senders, "since": since, "until": until})
    return {s: list(ips) for s, ips in rows}


class FailureRow(BaseModel):
    key: str = Field(description="The account, or the client IP.")
    failures: int
    distinct: int = Field(description="Distinct client IPs (by account) or accounts (by IP).")
    last_seen: UtcDatetime


class Failures(BaseModel):
    since: UtcDatetime
    until: UtcDatetime
    by_account: list[FailureRow]
    by_ip: list[FailureRow]


def failures(ch: ClickHouse, q: ReportQuery, now: datetime) -> Failures:
    """Failed AUTH by account and by client IP: password spraying and brute force."""
    since, until = q.window(now)
    where, params = _filters(q, since, until, time_col="ts")
    params["limit"] = q.page_size
    db = ch.database
    by_account = ch.query_rows(
        "SELECT ifNull(sender, '(unknown)') AS k, count() AS n, uniqExact(client_ip),"
        f" max(ts) FROM {db}.events FINAL WHERE kind = 'auth_failure' AND {where}"
        " GROUP BY k ORDER BY n DESC, k LIMIT {limit:UInt32}", params)
    by_ip = ch.query_rows(
        "SELECT ifNull(client_ip, '(unknown)') AS k, count() AS n, uniqExact(sender),"
        f" max(ts) FROM {db}.events FINAL WHERE kind = 'auth_failure' AND {where}"
        " GROUP BY k ORDER BY n DESC, k LIMIT {limit:UInt32}", params)
    return Failures(
        since=since, until=until,
        by_account=[FailureRow(key=k, failures=n, distinct=d, last_seen=t)
                    for k, n, d, t in by_account],
        by_ip=[FailureRow(key=k, failures=n, distinct=d, last_seen=t) for k, n, d, t in by_ip])


class NewClientIp(BaseModel):
    sender: str
    client_ip: str
    first_seen: UtcDatetime
    messages: int


def new_client_ips(ch: ClickHouse, q: ReportQuery, now: datetime,
                   lookback: timedelta = timedelta(days=90)) -> list[NewClientIp]:
    """Client IPs an account submitted from in the window but not in the `lookback` before."""
    since, until = q.window(now)
    _, params = _filters(q, since, until, time_col="ts")
    params.update(before=since - lookback, limit=q.page_size)
    rows = ch.query_rows(
        "SELECT sender, client_ip, min(ts) AS first, countIf(ts >= {since:DateTime('UTC')})"
        f" FROM {ch.database}.events FINAL WHERE kind = 'submission' AND sender IS NOT NULL"
        " AND client_ip IS NOT NULL AND ts >= {before:DateTime('UTC')}"
        " AND ts < {until:DateTime('UTC')}"
        + (" AND sender_domain = {domain:String}" if q.domain else "")
        + (" AND positionCaseInsensitiveUTF8(sender, {search:String}) > 0" if q.search else "")
        + " GROUP BY sender, client_ip HAVING first >= {since:DateTime('UTC')}"
        " ORDER BY first DESC, sender, client_ip LIMIT {limit:UInt32}", params)
    return [NewClientIp(sender=s, client_ip=ip, first_seen=t, messages=n)
            for s, ip, t, n in rows]


class DomainChange(BaseModel):
    domain: str
    this_week: int
    last_week: int
    change: float | None


def week_over_week(ch: ClickHouse, now: datetime) -> list[DomainChange]:
    before, since, until = two_weeks(now)
    db = ch.database
    cur, p1 = rollup(db, "domain_", "sender_domain, messages", since, until, prefix="c")
    prev, p2 = rollup(db, "domain_", "sender_domain, messages", before, since, prefix="p")
    rows = ch.query_rows(
        "SELECT d, sum(a) AS a, sum(b) AS b FROM ("
        f"SELECT sender_domain AS d, messages AS a, toUInt64(0) AS b FROM {cur}"
        f" UNION ALL SELECT sender_domain, toUInt64(0), messages FROM {prev})"
        " GROUP BY d HAVING a + b > 0 ORDER BY a DESC, d", {**p1, **p2})
    return [DomainChange(domain=d, this_week=a, last_week=b,
                         change=(a - b) / b if b else None) for d, a, b in rows]


# ---- summary (used by the live panel and tests) -----------------------------------------

class Summary(BaseModel):
    """Totals over a window: messages per TLS version, distinct senders, auth failures."""

    since: UtcDatetime
    until: UtcDatetime
    messages: int
    senders: int
    auth_failures: int
    by_tls: dict[str, int]


def summary(ch: ClickHouse, since: datetime, until: datetime) -> Summary:
    # FINAL: counts must not include replayed copies that a merge has not collapsed yet.
    sql = (
        f"SELECT kind, tls_version, count() FROM {ch.database}.events FINAL"
        " WHERE ts >= {since:DateTime64(3)} AND ts < {until:DateTime64(3)}"
        " GROUP BY kind, tls_version"
    )
    by_tls: dict[str, int] = {}
    failed = 0
    for kind, tls, count in ch.query_rows(sql, {"since": since, "until": until}):
        if kind == "submission":
            by_tls[tls] = count
        else:
            failed += count
    senders = ch.query_rows(
        f"SELECT uniqExact(sender) FROM {ch.database}.events WHERE kind = 'submission'"
        " AND sender IS NOT NULL"
        " AND ts >= {since:DateTime64(3)} AND ts < {until:DateTime64(3)}",
        {"since": since, "until": until})[0][0]
    return Summary(since=since, until=until, messages=sum(by_tls.values()), senders=senders,
                   auth_failures=failed, by_tls=dict(sorted(by_tls.items())))


# ---- alerts -----------------------------------------------------------------------------

class AlertRow(BaseModel):
    alert_id: str
    rule: str
    severity: str
    key: str
    ts: UtcDatetime
    window_start: UtcDatetime
    window_end: UtcDatetime
    value: float
    threshold: float
    message: str


def alerts(ch: ClickHouse, q: ReportQuery, now: datetime) -> list[AlertRow]:
    """The alerts decided in the window, newest first."""
    since, until = q.window(now)
    rows = ch.query_rows(
        "SELECT alert_id, rule, severity, key, ts, window_start, window_end, value, threshold,"
        f" message FROM {ch.database}.alerts FINAL"
        " WHERE ts >= {since:DateTime('UTC')} AND ts < {until:DateTime('UTC')}"
        " ORDER BY ts DESC, alert_id LIMIT {limit:UInt32} OFFSET {offset:UInt64}",
        {"since": since, "until": until, "limit": q.page_size, "offset": q.offset})
    names = ("alert_id", "rule", "severity", "key", "ts", "window_start", "window_end",
             "value", "threshold", "message")
    return [AlertRow(**dict(zip(names, row, strict=True))) for row in rows]
