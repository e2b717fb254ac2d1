"""Report queries over ClickHouse: typed parameters in, typed rows out, parameterized SQL.

The dashboard, the JSON API, the CLI and the CSV export all call these functions. Windows
are whole UTC hours (the aggregates' resolution): a preset ends with the current hour and
reaches back its length; a custom range is rounded out to hours. Only the validated database
identifier and whitelisted sort columns are ever formatted into SQL; every value is bound.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from pipeline.store.clickhouse import ClickHouse
from schemas.event import LEGACY_TLS

HOUR = timedelta(hours=1)
WEEK = timedelta(days=7)
PRESETS = {"24h": timedelta(hours=24), "7d": WEEK, "30d": timedelta(days=30),
           "90d": timedelta(days=90)}
TLS_VERSIONS = ("TLS1.0", "TLS1.1", "TLS1.2", "TLS1.3", "SSL3", "none", "unknown")
MAX_SPAN = timedelta(days=366)
# What ClickHouse's DateTime holds (the hourly aggregates): a window outside it is a 400.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2106, 1, 1, tzinfo=UTC)
RangePreset = Literal["24h", "7d", "30d", "90d", "custom"]


def _as_utc(value: datetime) -> datetime:
    # The engine hands back naive datetimes for DateTime('UTC') columns.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]


# ---- parameters -------------------------------------------------------------------------

class ReportQuery(BaseModel):
    """What every report takes: a window, an optional domain and sender search, paging."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    range: RangePreset = "7d"
    start: datetime | None = Field(None, description="Custom range start (ISO-8601).")
    end: datetime | None = Field(None, description="Custom range end (ISO-8601).")
    domain: str | None = Field(None, max_length=255, description="Show data for this domain.")
    search: str | None = Field(None, max_length=320, description="Sender contains this.")
    sort: str | None = Field(None, max_length=32, description="Column to sort by.")
    order: Literal["asc", "desc"] = "desc"
    page: int = Field(1, ge=1, le=1_000_000)
    page_size: int = Field(50, ge=1, le=1000)

    @field_validator("start", "end")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)  # documented: naive times are UTC
        try:
            value = value.astimezone(UTC)
        except OverflowError:  # 0001-01-01T00:00+01:00, 9999-12-31T23:59-01:00
            raise ValueError("outside the years 1970 to 2105") from None
        if not EARLIEST <= value < LATEST:
            raise ValueError("outside the years 1970 to 2105")
        return value

    @field_validator("domain", "search")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        value = value.strip().lower() if value else None
        return value or None

    @model_validator(mode="after")
    def _custom_needs_bounds(self) -> ReportQuery:
        if self.range == "custom":
            if self.start is None or self.end is None:
                raise ValueError("range=custom needs start and end")
            if self.end <= self.start:
                raise ValueError("end must be after start")
            if self.end - self.start > MAX_SPAN:
                raise ValueError("a custom range spans at most 366 days")
        elif self.start is not None or self.end is not None:
            raise ValueError("start/end are only for range=custom")
        return self

    def window(self, now: datetime) -> tuple[datetime, datetime]:
        """[since, until) in whole UTC hours."""
        if self.range == "custom":
            assert self.start is not None and self.end is not None
            since = _floor_hour(self.start)
            until = _floor_hour(self.end) + (HOUR if self.end != _floor_hour(self.end) else
                                             timedelta(0))
            return since, until
        until = _floor_hour(now) + HOUR
        return until - PRESETS[self.range], until

    def sorted_by(self, allowed: dict[str, str], default: str) -> str:
        column = allowed.get(self.sort or default, allowed[default])
        direction = "ASC" if self.order == "asc" else "DESC"
        # A stable tiebreak keeps pages deterministic.
        return f"{column} {direction}, sender ASC" if "sender" in allowed else (
            f"{column} {direction}")

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size


def _floor_hour(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _filters(q: ReportQuery, since: datetime, until: datetime, time_col: str = "hour",
             sender_col: str = "sender", domain_col: str = "sender_domain") -> tuple[
        str, dict[str, Any]]:
    clauses = [f"{time_col} >= {{since:DateTime('UTC')}}",
               f"{time_col} < {{until:DateTime('UTC')}}"]
    params: dict[str, Any] = {"since": since, "until": until}
    if q.domain:
        clauses.append(f"{domain_col} = {{domain:String}}")
        params["domain"] = q.domain
    if q.search:
        clauses.append(f"positionCaseInsensitiveUTF8({sender_col}, {{search:String}}) > 0")
        params["search"] = q.search
    return " AND ".join(clauses), params


class Page(BaseModel):
    page: int
    page_size: int
    total: int


# ---- 1. widget --------------------------------------------------------------------------

class Widget(BaseModel):
    """Distinct users/service accounts that used SMTP AUTH in the last 7 days."""

    senders: int
    previous_senders: int
    change: float | None = Field(description="Relative change against the 7 days before.")
    since: UtcDatetime
    until: UtcDatetime


def widget(ch: ClickHouse, now: datetime) -> Widget:
    until = _floor_hour(now) + HOUR
    since, before = until - WEEK, until - 2 * WEEK
    sql = (
        "SELECT uniqExactIf(sender, hour >= {since:DateTime('UTC')}),"
        " uniqExactIf(sender, hour < {since:DateTime('UTC')})"
        f" FROM {ch.database}.hourly FINAL"
        " WHERE sender != '' AND messages > 0"
        " AND hour >= {before:DateTime('UTC')} AND hour < {until:DateTime('UTC')}"
    )
    current, previous = ch.query_rows(sql, {"since": since, "before": before, "until": until})[0]
    change = (current - previous) / previous if previous else None
    return Widget(senders=current, previous_senders=previous, change=change, since=since,
                  until=until)


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


def flyout(ch: ClickHouse, now: datetime) -> Flyout:
    q = ReportQuery(range="7d")
    since, until = q.window(now)
    where, params = _filters(q, since, until)
    tls = ch.query_rows(
        f"SELECT tls_version, sum(messages) FROM {ch.database}.hourly FINAL WHERE {where}"
        " GROUP BY tls_version HAVING sum(messages) > 0", params)
    daily = dict(ch.query_rows(
        f"SELECT toString(toDate(hour)), sum(messages) FROM {ch.database}.hourly FINAL"
        f" WHERE {where} GROUP BY 1", params))
    return Flyout(since=since, until=until, tls=_tls_shares(list(tls)),
                  daily=[DailyVolume(day=d, messages=daily.get(d, 0))
                         for d in _days(since, until)])


# ---- 3. sending volume ------------------------------------------------------------------

class DomainDay(BaseModel):
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


def volume(ch: ClickHouse, q: ReportQuery, now: datetime) -> VolumeReport:
    since, until = q.window(now)
    where, params = _filters(q, since, until)
    db = ch.database
    chart = ch.query_rows(
        f"SELECT toString(toDate(hour)) AS day, sender_domain, sum(messages) AS n"
        f" FROM {db}.hourly FINAL WHERE {where} AND messages > 0"
        " GROUP BY day, sender_domain ORDER BY day, sender_domain", params)
    base = (
        "SELECT sender, any(sender_domain) AS dom, sum(messages) AS n,"
        " sumIf(messages, tls_version = 'TLS1.0') / n AS tls10,"
        " sumIf(messages, tls_version = 'TLS1.1') / n AS tls11,"
        " sumIf(messages, tls_version = 'TLS1.2') / n AS tls12,"
        " sumIf(messages, tls_version = 'TLS1.3') / n AS tls13,"
        " groupUniqArray(if(auth_mechanism IN ('XOAUTH2', 'OAUTHBEARER'), 'OAuth', 'Basic'))"
        f" AS protocols FROM {db}.hourly FINAL WHERE {where} AND messages > 0"
        " AND sender != '' GROUP BY sender")
    rows = ch.query_rows(
        f"{base} ORDER BY {q.sorted_by(VOLUME_SORT, 'messages')}"
        " LIMIT {limit:UInt32} OFFSET {offset:UInt64}",
        {**params, "limit": q.page_size, "offset": q.offset})
    total = ch.query_rows(f"SELECT count() FROM ({base})", params)[0][0]
    return VolumeReport(
        since=since, until=until,
        chart=[DomainDay(day=d, domain=dom, messages=n) for d, dom, n in chart],
        rows=[SenderVolume(sender=s, domain=d, messages=n, tls10=round(a, 6),
                           tls11=round(b, 6), tls12=round(c, 6), tls13=round(e, 6),
                           protocol="+".join(sorted(p)))
              for s, d, n, a, b, c, e, p in rows],
        page=Page(page=q.page, page_size=q.page_size, total=total))


# ---- 4. TLS usage -----------------------------------------------------------------------

class TlsDay(BaseModel):
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
    where, params = _filters(q, since, until)
    db = ch.database
    totals = ch.query_rows(
        f"SELECT tls_version, sum(messages) FROM {db}.hourly FINAL WHERE {where}"
        " GROUP BY tls_version HAVING sum(messages) > 0", params)
    chart = ch.query_rows(
        f"SELECT toString(toDate(hour)) AS day, tls_version, sum(messages) AS n"
        f" FROM {db}.hourly FINAL WHERE {where} AND messages > 0"
        " GROUP BY day, tls_version ORDER BY day, tls_version", params)
    base = (
        "SELECT sender, any(sender_domain) AS dom, tls_version,"
        f" sum(messages) AS n FROM {db}.hourly FINAL WHERE {where} AND messages > 0"
        " AND sender != '' GROUP BY sender, tls_version")
    rows = ch.query_rows(
        f"{base} ORDER BY {q.sorted_by(TLS_SORT, 'messages')}, tls_version ASC"
        " LIMIT {limit:UInt32} OFFSET {offset:UInt64}",
        {**params, "limit": q.page_size, "offset": q.offset})
    total = ch.query_rows(f"SELECT count() FROM ({base})", params)[0][0]
    return TlsReport(
        since=since, until=until, totals=_tls_shares(list(totals)),
        chart=[TlsDay(day=d, tls_version=v, messages=n) for d, v, n in chart],
        rows=[SenderTls(sender=s, domain=d, tls_version=v, messages=n) for s, d, v, n in rows],
        page=Page(page=q.page, page_size=q.page_size, total=total))


# ---- 5. request report (CSV export) -----------------------------------------------------

EXPORT_COLUMNS = ("date", "sender", "domain", "auth_mechanism", "auth_protocol", "client_ip",
                  "tls_version", "tls_cipher", "messages", "recipients", "bytes",
                  "first_seen", "last_seen")


def export_slices(q: ReportQuery, now: datetime) -> list[tuple[datetime, datetime]]:
    """The window cut at UTC midnights: every export row is one day's, so a slice holds
    whole rows, and each slice is one short query (the events table is partitioned by day)."""
    since, until = q.window(now)
    slices = []
    while since < until:
        midnight = since.replace(hour=0) + timedelta(days=1)
        slices.append((since, min(midnight, until)))
        since = slices[-1][1]
    return slices


def export_slice(ch: ClickHouse, q: ReportQuery, since: datetime,
                 until: datetime) -> Sequence[tuple[Any, ...]]:
    """Every (day, sender, mechanism, client IP, TLS, cipher) row of one slice."""
    where, params = _filters(q, since, until, time_col="ts")
    sql = (
        "SELECT toString(toDate(ts)) AS day, ifNull(sender, '') AS s,"
        " ifNull(sender_domain, '') AS d, ifNull(auth_mechanism, '') AS m,"
        " if(m IN ('XOAUTH2', 'OAUTHBEARER'), 'OAuth', if(m = '', '', 'Basic')),"
        " ifNull(client_ip, '') AS ip, tls_version, ifNull(tls_cipher, '') AS c,"
        " count(), sum(ifNull(recipients, 0)), sum(ifNull(size, 0)),"
        " formatDateTime(min(ts), '%Y-%m-%dT%H:%i:%SZ'),"
        " formatDateTime(max(ts), '%Y-%m-%dT%H:%i:%SZ')"
        f" FROM {ch.database}.events FINAL WHERE kind = 'submission' AND {where}"
        " GROUP BY day, s, d, m, ip, tls_version, c ORDER BY day, s, m, ip, tls_version, c")
    return ch.query_rows(sql, params)


def export_rows(ch: ClickHouse, q: ReportQuery, now: datetime) -> Iterator[tuple[Any, ...]]:
    """Every row of the window, a day at a time (any size; one day is held in memory)."""
    for since, until in export_slices(q, now):
        yield from export_slice(ch, q, since, until)


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
    where, params = _filters(q, since, until, time_col="ts")
    params["legacy"] = sorted(LEGACY_TLS)
    base = (
        "SELECT sender, any(sender_domain) AS dom, count() AS n,"
        " arraySort(groupUniqArray(tls_version)), arraySort(groupUniqArray(50)(client_ip)),"
        f" max(ts) AS seen FROM {ch.database}.events FINAL"
        " WHERE kind = 'submission' AND sender IS NOT NULL"
        f" AND tls_version IN {{legacy:Array(String)}} AND {where} GROUP BY sender")
    rows = ch.query_rows(
        f"{base} ORDER BY {q.sorted_by(REMEDIATION_SORT, 'messages')}"
        " LIMIT {limit:UInt32} OFFSET {offset:UInt64}",
        {**params, "limit": q.page_size, "offset": q.offset})
    total = ch.query_rows(f"SELECT count() FROM ({base})", params)[0][0]
    return Remediation(
        since=since, until=until,
        rows=[LegacySender(sender=s, domain=d or "", messages=n, tls_versions=list(v),
                           client_ips=[ip for ip in ips if ip], last_seen=seen)
              for s, d, n, v, ips, seen in rows],
        page=Page(page=q.page, page_size=q.page_size, total=total))


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
    until = _floor_hour(now) + HOUR
    since, before = until - WEEK, until - 2 * WEEK
    rows = ch.query_rows(
        "SELECT sender_domain, sumIf(messages, hour >= {since:DateTime('UTC')}) AS a,"
        " sumIf(messages, hour < {since:DateTime('UTC')}) AS b"
        f" FROM {ch.database}.hourly FINAL WHERE hour >= {{before:DateTime('UTC')}}"
        " AND hour < {until:DateTime('UTC')} GROUP BY sender_domain"
        " HAVING a + b > 0 ORDER BY a DESC, sender_domain",
        {"since": since, "before": before, "until": until})
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
