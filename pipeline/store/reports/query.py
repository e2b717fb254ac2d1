"""Report parameters and the shapes every report query shares.

Windows are whole UTC hours (the aggregates' resolution): a preset ends with the current
hour and reaches back its length; a custom range is rounded out to hours. Only the validated
database identifier and whitelisted sort columns are ever formatted into SQL; every value is
bound.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from pipeline.store.clickhouse import ClickHouse
from schemas.event import TlsVersion

HOUR = timedelta(hours=1)
WEEK = timedelta(days=7)
PRESETS = {"24h": timedelta(hours=24), "7d": WEEK, "30d": timedelta(days=30),
           "90d": timedelta(days=90)}
TLS_VERSIONS: tuple[str, ...] = get_args(TlsVersion)
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


# ---- rollups (migration 004) --------------------------------------------------------------

ROLLUPS = ("", "domain_", "senders_")  # per sender; per domain and TLS version; senders


def whole_days(since: datetime, until: datetime) -> tuple[datetime, datetime]:
    """[d0, d1): the whole UTC days inside [since, until), empty (d0 == d1) if none."""
    d0 = since.replace(hour=0) + (timedelta(days=1) if since.hour else timedelta(0))
    d1 = until.replace(hour=0)
    return (d0, d1) if d0 < d1 else (until, until)  # then [since, d0) is the whole window


def rollup(db: str, family: str, columns: str, since: datetime, until: datetime,
           where: str = "", prefix: str = "") -> tuple[str, dict[str, Any]]:
    """A subquery of `day, {columns}` over the hour-aligned window [since, until): the whole
    days from `{family}daily`, the hours at either edge from `{family}hourly`. The rollups
    are exact without FINAL as long as the caller aggregates again (sum, min, max, -Merge).
    `where` is more conditions on both (bound parameters only)."""
    assert family in ROLLUPS
    d0, d1 = whole_days(since, until)
    p = {f"{prefix}{name}": value for name, value in
         (("since", since), ("until", until), ("d0", d0), ("d1", d1))}
    since_, until_, d0_, d1_ = (f"{{{prefix}{n}:DateTime('UTC')}}"
                                for n in ("since", "until", "d0", "d1"))
    more = f" AND {where}" if where else ""
    sql = (f"(SELECT toDate(hour) AS day, {columns} FROM {db}.{family}hourly"
           # Two ranges, not "the window but not its days": the index prunes ranges only.
           f" WHERE ((hour >= {since_} AND hour < {d0_}) OR (hour >= {d1_} AND hour < {until_}))"
           f"{more}"
           f" UNION ALL SELECT day, {columns} FROM {db}.{family}daily"
           f" WHERE day >= toDate({d0_}) AND day < toDate({d1_}){more})")
    return sql, p


def dimensions(q: ReportQuery, search: bool = True) -> tuple[str, dict[str, Any]]:
    """The domain and sender-search conditions of `q`, for a rollup's `where`."""
    clauses, params = [], {}
    if q.domain:
        clauses.append("sender_domain = {domain:String}")
        params["domain"] = q.domain
    if q.search and search:
        clauses.append("positionCaseInsensitiveUTF8(sender, {search:String}) > 0")
        params["search"] = q.search
    return " AND ".join(clauses), params


# Rows with a sender, tested on its hash: reading a million sender strings to drop the
# empty one costs more than the rest of the ranking pass.
NAMED = "sender_id != cityHash64('')"

# Pages deeper than this (offset + page size) are read the one-pass way.
RANKED_DEPTH = 5000
# Ranked keys beyond the page, so that a run of equal counts at its edge is usually known.
TIE_ROOM = 500


def ranked_page(ch: ClickHouse, q: ReportQuery, source: str, params: dict[str, Any],
                key: tuple[str, str], base: str, order: str) -> tuple[Sequence[Any], Page]:
    """A details page sorted by messages (the default), in two passes over the rollup
    `source` (it and `base` hold a `{keys}` condition): (1) per key, a hash of the sender
    and fixed-width columns, only the message count: the total, and the counts and keys of
    the first offset + page_size + 1 rows; (2) the details (`base`, grouped) of the keys the
    page can hold, so strings are grouped for those, not for a million senders. Where the
    page's first or last count is shared with keys outside it, which of them are on the page
    depends on the sender names: pass two takes every key with a count inside the page's
    range and the page is cut from that. Exact but for a 64-bit hash collision
    between two senders (about 3e-8 at a million senders). `key` is (SQL expression over
    `source`, its ClickHouse type). A deep page or another sort: `paged_total`."""
    depth = q.offset + q.page_size
    if q.sort not in (None, "messages") or q.order != "desc" or depth > RANKED_DEPTH:
        return paged_total(ch, q, base.replace("{keys}", "1"), params, order)
    expr, kind = key
    ranked = (f"SELECT {expr} AS k, sum(messages) AS n FROM {source.replace('{keys}', '1')}"
              " GROUP BY k")
    wanted = depth + TIE_ROOM
    # ORDER BY … LIMIT is a partial sort; measured 2-3x faster than groupArraySorted here.
    top = ch.query_rows(f"SELECT k, n, count() OVER () FROM ({ranked})"
                        f" ORDER BY n DESC LIMIT {wanted}", params)
    page = Page(page=q.page, page_size=q.page_size, total=top[0][2] if top else 0)
    if q.offset >= len(top):
        return [], page
    counts = [n for _, n, _ in top]
    hi, lo = counts[q.offset], counts[min(depth, len(top)) - 1]
    # Keys counted above hi come before the page; those counted lo..hi hold it, in the
    # order of their names; the ranking has them all unless the tie runs past its end.
    above = sum(1 for n in counts if n > hi)
    if len(top) < wanted or counts[-1] < lo:
        keys = [k for k, n, _ in top if lo <= n <= hi]
        rows = ch.query_rows(
            f"{base.replace('{keys}', f'{expr} IN {{keys:Array({kind})}}')} ORDER BY {order}",
            {**params, "keys": keys})
    else:
        inside = (f"{expr} IN (SELECT k FROM ({ranked})"
                  " WHERE n BETWEEN {lo:UInt64} AND {hi:UInt64})")
        rows = ch.query_rows(f"{base.replace('{keys}', inside)} ORDER BY {order}",
                             {**params, "lo": lo, "hi": hi})
    return rows[q.offset - above:depth - above], page


def paged_total(ch: ClickHouse, q: ReportQuery, base: str, params: dict[str, Any],
                order: str) -> tuple[Sequence[Any], Page]:
    """Like `paged`, in one pass: the total rides along as a window count."""
    rows = ch.query_rows(
        f"SELECT *, count() OVER () FROM ({base}) ORDER BY {order}"
        " LIMIT {limit:UInt32} OFFSET {offset:UInt64}",
        {**params, "limit": q.page_size, "offset": q.offset})
    if rows:
        return [row[:-1] for row in rows], Page(page=q.page, page_size=q.page_size,
                                                total=rows[0][-1])
    total = ch.query_rows(f"SELECT count() FROM ({base})", params)[0][0] if q.page > 1 else 0
    return rows, Page(page=q.page, page_size=q.page_size, total=total)


def two_weeks(now: datetime) -> tuple[datetime, datetime, datetime]:
    """(before, since, until): the 7 days to the end of the current hour, and the 7 before."""
    until = _floor_hour(now) + HOUR
    return until - 2 * WEEK, until - WEEK, until


def paged(ch: ClickHouse, q: ReportQuery, base: str, params: dict[str, Any],
          order: str) -> tuple[Sequence[Any], Page]:
    """One page of a details table (`base` is its grouped SELECT) and the total it pages."""
    rows = ch.query_rows(
        f"{base} ORDER BY {order} LIMIT {{limit:UInt32}} OFFSET {{offset:UInt64}}",
        {**params, "limit": q.page_size, "offset": q.offset})
    total = ch.query_rows(f"SELECT count() FROM ({base})", params)[0][0]
    return rows, Page(page=q.page, page_size=q.page_size, total=total)
