"""Report parameters and the shapes every report query shares.

Windows are whole UTC hours (the aggregates' resolution): a preset ends with the current
hour and reaches back its length; a custom window, the ISO-8601 interval START/DURATION, is
rounded out to hours. Only the validated database identifier and whitelisted sort columns
are ever formatted into SQL; every value is bound.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from pipeline.store.clickhouse import ClickHouse
from schemas.event import TlsVersion

HOUR = timedelta(hours=1)
WEEK = timedelta(days=7)
PRESETS = {"24h": timedelta(hours=24), "7d": WEEK, "30d": timedelta(days=30),
           "90d": timedelta(days=90)}
TLS_VERSIONS: tuple[str, ...] = get_args(TlsVersion)
MAX_SPAN = timedelta(days=366)
# What ClickHouse's DateTime holds (the hourly aggregates): every window lies inside.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2106, 1, 1, tzinfo=UTC)
RangePreset = Literal["24h", "7d", "30d", "90d"]

# A custom window is one value, START/DURATION, so that one pattern (published in the
# OpenAPI document and matched by the validator itself) says everything the API checks:
# real calendar days in 1971-2099 (with any UTC offset and up to 366 days the window stays
# between EARLIEST and LATEST), and a duration of 1 hour to 366 days (so start < end).
_LEAP_YEAR = "(?:19(?:7[26]|8[048]|9[26])|20(?:[02468][048]|[13579][26]))"
_DATE = ("(?:(?:197[1-9]|19[89][0-9]|20[0-9]{2})-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]"
         "|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))"
         f"|{_LEAP_YEAR}-02-29)")
_TIME = ("(?:T(?:[01][0-9]|2[0-3])(?::[0-5][0-9](?::[0-5][0-9])?)?"
         "(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])?)?")
_WEEKS = "(?:[1-9]|[1-4][0-9]|5[0-2])"  # 1-52
_DAYS = "(?:[1-9][0-9]?|[12][0-9]{2}|3[0-5][0-9]|36[0-6])"  # 1-366
_SOME_DAYS = "(?:[1-9][0-9]?|[12][0-9]{2}|3[0-5][0-9]|36[0-5])"  # 1-365, then hours 1-23
_HOURS = "(?:[1-9]|1[0-9]|2[0-3])"
_ALL_HOURS = "(?:[1-9][0-9]{0,2}|[1-7][0-9]{3}|8[0-6][0-9]{2}|87[0-7][0-9]|878[0-4])"  # 1-8784
_DURATION = f"P(?:{_WEEKS}W|{_DAYS}D|{_SOME_DAYS}DT{_HOURS}H|T{_ALL_HOURS}H)"
START_PATTERN = f"^{_DATE}{_TIME}$"
DURATION_PATTERN = f"^{_DURATION}$"
RANGE_PATTERN = f"^(?:{'|'.join(PRESETS)}|{_DATE}{_TIME}/{_DURATION})$"
_RANGE, _START, _DURATION_PARTS = (re.compile(RANGE_PATTERN), re.compile(START_PATTERN),
                                   re.compile(r"P(?:(\d+)W)?(?:(\d+)D)?(?:T(\d+)H)?"))


def custom_window(value: str) -> tuple[datetime, datetime] | None:
    """START/DURATION as [start, end) in UTC (not rounded); None for a preset."""
    if value in PRESETS:
        return None
    start_text, duration = value.split("/")
    start = datetime.fromisoformat(start_text)
    start = start.replace(tzinfo=UTC) if start.tzinfo is None else start.astimezone(UTC)
    match = _DURATION_PARTS.fullmatch(duration)
    assert match is not None  # the pattern admitted it
    weeks, days, hours = (int(part or 0) for part in match.groups())
    return start, start + timedelta(weeks=weeks, days=days, hours=hours)


def _explain(value: str) -> str:
    start, slash, duration = value.partition("/")
    if not slash:
        return ("not a preset (24h, 7d, 30d, 90d) nor START/DURATION, an ISO-8601 interval "
                "such as 2026-11-01/P30D or 2026-11-01T06:00Z/PT12H")
    if not _START.fullmatch(start):
        plus = " (a + in a URL is a space: write %2B)" if " " in start else ""
        return (f"the start {start[:40]!r} is not a date (YYYY-MM-DD, optionally THH[:MM[:SS]] "
                f"and Z or an offset) in the years 1971 to 2099{plus}")
    return (f"the duration {duration[:40]!r} is not 1 hour to 366 days "
            "(PnW, PnD, PTnH or PnDTnH, whole numbers without leading zeros)")


def _as_utc(value: datetime) -> datetime:
    # The engine hands back naive datetimes for DateTime('UTC') columns.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]


# ---- parameters -------------------------------------------------------------------------

class ReportQuery(BaseModel):
    """What every report takes: a window, an optional domain and sender search, paging."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    range: str = Field(
        "7d", json_schema_extra={"pattern": RANGE_PATTERN},
        description="The window: 24h, 7d, 30d, 90d (ending with the current hour), or an "
                    "ISO-8601 interval START/DURATION such as 2026-11-01/P30D or "
                    "2026-11-01T06:00Z/P1DT12H (no offset: UTC; years 1971-2099; 1 hour to "
                    "366 days), rounded out to whole UTC hours.")
    domain: str | None = Field(None, max_length=255, description="Show data for this domain.")
    search: str | None = Field(None, max_length=320, description="Sender contains this.")
    sort: str | None = Field(None, max_length=32, description="Column to sort by.")
    order: Literal["asc", "desc"] = "desc"
    page: int = Field(1, ge=1, le=1_000_000)
    page_size: int = Field(50, ge=1, le=1000)

    @field_validator("range")
    @classmethod
    def _window(cls, value: str) -> str:
        if not _RANGE.fullmatch(value):
            raise ValueError(_explain(value))
        return value

    @field_validator("domain", "search")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        value = value.strip().lower() if value else None
        return value or None

    def window(self, now: datetime) -> tuple[datetime, datetime]:
        """[since, until) in whole UTC hours."""
        custom = custom_window(self.range)
        if custom is not None:
            start, end = custom
            return _floor_hour(start), _floor_hour(end) + (
                HOUR if end != _floor_hour(end) else timedelta(0))
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

# Per sender; per domain and TLS version; senders; per TLS version (migration 006).
ROLLUPS = ("", "domain_", "senders_", "tls_")


def whole_days(since: datetime, until: datetime) -> tuple[datetime, datetime]:
    """[d0, d1): the whole UTC days inside [since, until), empty (d0 == d1) if none."""
    d0 = since.replace(hour=0) + (timedelta(days=1) if since.hour else timedelta(0))
    d1 = until.replace(hour=0)
    return (d0, d1) if d0 < d1 else (until, until)  # then [since, d0) is the whole window


def rollup(db: str, family: str, columns: str, since: datetime, until: datetime,
           where: str = "", prefix: str = "", days: str = "daily") -> tuple[str, dict[str, Any]]:
    """A subquery of `day, {columns}` over the hour-aligned window [since, until): the whole
    days from `{family}{days}`, the hours at either edge from `{family}hourly` (`tls_`:
    every hour from tls_hourly). The rollups
    are exact without FINAL as long as the caller aggregates again (sum, min, max, -Merge).
    `where` is more conditions on both (bound parameters only). `days` is `daily_by_sender`
    (migration 006, per sender only) where the rows of a few senders are read."""
    assert family in ROLLUPS and days in ("daily", "daily_by_sender")
    d0, d1 = whole_days(since, until)
    p = {f"{prefix}{name}": value for name, value in
         (("since", since), ("until", until), ("d0", d0), ("d1", d1))}
    since_, until_, d0_, d1_ = (f"{{{prefix}{n}:DateTime('UTC')}}"
                                for n in ("since", "until", "d0", "d1"))
    more = f" AND {where}" if where else ""
    if family == "tls_":  # hours only: small enough for any window (migration 006)
        return (f"(SELECT toDate(hour) AS day, {columns} FROM {db}.tls_hourly"
                f" WHERE hour >= {since_} AND hour < {until_}{more})"), p
    sql = (f"(SELECT toDate(hour) AS day, {columns} FROM {db}.{family}hourly"
           # Two ranges, not "the window but not its days": the index prunes ranges only.
           f" WHERE ((hour >= {since_} AND hour < {d0_}) OR (hour >= {d1_} AND hour < {until_}))"
           f"{more}"
           f" UNION ALL SELECT day, {columns} FROM {db}.{family}{days}"
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


# Rows the details tables are made of (a row of failed logins only has no messages).
SENT = "messages > 0"

# Rows with a sender, tested on its hash: reading a million sender strings to drop the
# empty one costs more than the rest of the ranking pass.
NAMED = "sender_id != cityHash64('')"

# The key of a (sender, TLS version) row: invertible to the sender id given the version,
# so the details pass can select a page's senders by the primary key (`_keys_of`), and
# cheaper to group than a hash of both (cityHash64 of a LowCardinality column is computed
# once per distinct version).
TLS_KEY = "bitXor(sender_id, cityHash64(tls_version))"

# The sender ids the TLS keys {keys} can stand for, one per version {versions}: the key
# XORed back with each version's hash (a subquery, for `sender_id IN`).
TLS_IDS = ("(SELECT bitXor(arrayJoin({keys:Array(UInt64)}),"
           " cityHash64(arrayJoin({versions:Array(String)}))))")

# Keys up to which the TLS key's sender ids narrow a read by the primary key: a long run
# (thousands of keys, seven ids each) costs more in the index than it saves in reading.
NARROW_KEYS = 1000

# Pages deeper than this (offset + page size) are read the one-pass way.
RANKED_DEPTH = 5000
# Keys on the page's edge counts, as a multiple of the page, beyond which they are ordered
# by name first (one narrow read) and only the page's keys are read in full.
TIE_NAMES = 4
# Keys counted at least the page's last count fetched at most by the ranking pass; beyond,
# the details pass groups every key of the run (an estate where most counts are equal).
TIE_CAP = 50_000


def ranked_page(ch: ClickHouse, q: ReportQuery, source: str, by_sender: str,
                params: dict[str, Any], key: tuple[str, str], base: str,
                order: str) -> tuple[Sequence[Any], Page]:
    """A details page sorted by messages (the default), in two passes: (1) over the rollup
    `source` (day-sorted), per key only the message count, grouped by count: the total,
    and the keys counted at least the page's last count (a run of equal counts at the
    page's edge comes whole); (2) the details (`base`, grouped, over `{rows}`) of the keys
    the page can hold, read from `by_sender` (the same rows sorted by sender id, migration 006), so
    strings are grouped for those senders and only their rows are read. `source` and
    `by_sender` hold a `{keys}` condition, where the details read only rows with messages
    (`SENT`). Where the page's first or last count is shared
    with keys outside it, which of them are on the page depends on the sender names: pass
    two takes every key with a count inside the page's range and the page is cut from that
    (a long run is ordered by name first, `_by_name`). A key that stands for two senders (a
    64-bit hash collision, about 3e-8 at a million senders) is caught among the keys that
    place the page: those on it by their details rows, those before it and a run ordered by
    name by their names (`_names`); the page is then grouped by name (`paged_total`). The
    total counts keys, so a collision elsewhere in the window would make it one short.
    `key` is (SQL expression over `source`, its ClickHouse type). A deep page or another
    sort: `paged_total`."""
    depth = q.offset + q.page_size
    grouped = base.replace("{rows}", source.replace("{keys}", SENT))  # the by-name path
    if q.sort not in (None, "messages") or q.order != "desc" or depth > RANKED_DEPTH:
        return paged_total(ch, q, grouped, params, order)
    expr, kind = key
    # Rows without messages (failed logins only) are dropped after grouping: a test on
    # every row cost more (measured: 3-6 ms of a 65 ms ranking at a million senders).
    ranked = (f"SELECT {expr} AS k, sum(messages) AS n"
              f" FROM {source.replace('{keys}', '1')} GROUP BY k HAVING n > 0")
    # The keys per count, highest first, with the keys themselves only for the counts the
    # page reaches (89 counts at a million quiet senders): the total and the page's keys
    # from one small second stage, where sorting every key for `LIMIT … WITH TIES` and a
    # window count for the total cost more (measured there: 184 against 224 ms, of which
    # grouping the keys is 117).
    groups = ch.query_rows(
        f"SELECT n, c, if(above < {depth}, ks, []) FROM (SELECT n, c, ks, sum(c) OVER"
        " (ORDER BY n DESC ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS above FROM"
        f" (SELECT n, count() AS c, groupArray({TIE_CAP + 1})(k) AS ks FROM ({ranked})"
        " GROUP BY n)) ORDER BY n DESC", params)
    page = Page(page=q.page, page_size=q.page_size, total=sum(row[1] for row in groups))
    reached = [row for row in groups if row[2]]
    whole = sum(row[1] for row in reached) <= TIE_CAP
    top = [(k, n) for n, _, ks in reached for k in ks] if whole else []
    if not whole:
        # The run at the page's edge is longer than the cap: rank the page alone, and the
        # details pass groups every key of the run (an estate where most counts are equal).
        top = list(ch.query_rows(
            f"SELECT k, n FROM ({ranked}) ORDER BY n DESC LIMIT {depth}", params))
    if q.offset >= len(top):  # past the keys: unless two senders hide behind one of them
        return paged_total(ch, q, grouped, params, order) if top and _collided(
            ch, top, expr) else ([], page)
    hi, lo, above = _edges(top, q.offset, depth)
    # The keys ranked before the page decide where it starts: each must be one sender.
    if above and _collided(ch, [row for row in top if row[1] > hi], expr):
        return paged_total(ch, q, grouped, params, order)
    # Each details row carries its key: two rows of one key are a collision on the page.
    keyed = base.replace(" FROM {rows}", f", any({expr}) AS k_ FROM {{rows}}", 1)
    assert keyed != base
    if not whole:
        inside = (f"{expr} IN (SELECT k FROM ({ranked})"
                  " WHERE n BETWEEN {lo:UInt64} AND {hi:UInt64})")
        rows = ch.query_rows(
            f"{keyed.replace('{rows}', source.replace('{keys}', f'{SENT} AND {inside}'))}"
            f" ORDER BY {order}",
            {**params, "lo": lo, "hi": hi})
        if _repeats(rows):
            return paged_total(ch, q, grouped, params, order)
        return [row[:-1] for row in rows[q.offset - above:depth - above]], page
    start, stop = q.offset - above, depth - above
    inside_keys = [row for row in top if lo <= row[1] <= hi]
    if len(inside_keys) > TIE_NAMES * q.page_size:
        # A long run of equal counts (an estate of alike senders): order the run by name
        # from one narrow read, then read the details of the page's keys only.
        named, collided = _by_name(ch, inside_keys, expr)
        if collided:
            return paged_total(ch, q, grouped, params, order)
        if named is not None:
            inside_keys = named[start:stop]
            start, stop = 0, len(inside_keys)
    keys, more = _keys_of(inside_keys, expr, kind)
    rows = ch.query_rows(
        f"{keyed.replace('{rows}', by_sender.replace('{keys}', f'{SENT} AND {keys}'))}"
        f" ORDER BY {order}",
        {**params, **more})
    if _repeats(rows):
        return paged_total(ch, q, grouped, params, order)
    return [row[:-1] for row in rows[start:stop]], page


def _repeats(rows: Sequence[Any]) -> bool:
    """Whether two details rows (key last) share a key: two senders behind one hash."""
    return len({row[-1] for row in rows}) < len(rows)


def _edges(top: Sequence[Any], offset: int, depth: int) -> tuple[int, int, int]:
    """(hi, lo, above) of ranked rows (key, count, …) sorted by count, descending: the page's
    first and last counts, and how many keys are counted above hi (they come before the
    page; those counted lo..hi hold it, in the order of their names)."""
    counts = [row[1] for row in top]
    hi, lo = counts[offset], counts[min(depth, len(counts)) - 1]
    return hi, lo, sum(1 for n in counts if n > hi)


def _keys_of(ranked: Sequence[Any], expr: str, kind: str) -> tuple[str, dict[str, Any]]:
    """The condition (and its parameters) that selects the rows of these ranked keys. Keyed
    by sender id, it is the sender-sorted table's primary key (a page reads its senders'
    granules); a TLS key (`TLS_KEY`) names up to seven sender ids, tested the same way
    for a page (a long run of keys is tested on every row's two columns instead), as a
    per-key sender id would cost the ranking pass an `any` over every key."""
    keys = [row[0] for row in ranked]
    cond = f"{expr} IN {{keys:Array({kind})}}"
    if expr == TLS_KEY and len(keys) <= NARROW_KEYS:
        # The sender ids a key can stand for, one per TLS version: the sender-sorted
        # table's primary key, so a page reads its senders' granules, not the window's.
        return (f"sender_id IN {TLS_IDS} AND {cond}",
                {"keys": keys, "versions": list(TLS_VERSIONS)})
    return cond, {"keys": keys}


def _names(ch: ClickHouse, ranked: Sequence[Any], expr: str) -> tuple[str, dict[str, Any]]:
    """Per ranked key `k`: a name `s_` (and TLS version `v_`), and `c_`, whether the key
    may stand for more than one (its least and greatest names differ), from `sender_names`
    (every name an id has had, migration 009). A TLS key (`TLS_KEY`) is looked up by the
    seven ids it can stand for, one per version: `sender_names` holds a row per sender,
    the key's day rows one per sender and day (at 10,000 busy senders over 90 days: 10,000
    rows against 910,000, and TLS usage from 9x to 12x its raw baseline). Another sender
    whose id meets a key under another version (six chances in 2^64 per key and sender)
    makes it look collided: that page takes the exact slower path. The names hold more
    than the window: a name from outside it can only flag a key that is not collided there."""
    keys = [row[0] for row in ranked]
    db = ch.database
    if expr == "sender_id":
        return (f"SELECT sender_id AS k, min(first_name) AS s_, '' AS v_,"
                f" s_ != max(last_name) AS c_ FROM {db}.sender_names"
                " WHERE sender_id IN {keys:Array(UInt64)} GROUP BY k", {"keys": keys})
    assert expr == TLS_KEY
    return (f"SELECT k, min(first_name) AS s_, min(v) AS v_,"
            " s_ != max(last_name) OR v_ != max(v) AS c_ FROM"
            " (SELECT bitXor(sender_id, cityHash64(v)) AS k, first_name, last_name, v"
            f" FROM {db}.sender_names ARRAY JOIN {{versions:Array(String)}} AS v"
            f" WHERE sender_id IN {TLS_IDS}) WHERE k IN {{keys:Array(UInt64)}} GROUP BY k",
            {"keys": keys, "versions": list(TLS_VERSIONS)})


def _collided(ch: ClickHouse, ranked: Sequence[Any], expr: str) -> bool:
    """Whether one of these ranked keys (key, count) may stand for two senders: it does, or
    it has no name left to tell (its names expired before its edge hours did)."""
    names, more = _names(ch, ranked, expr)
    named, collided = ch.query_rows(
        f"SELECT count(), countIf(c_) FROM ({names})", more)[0]
    return bool(collided) or named < len(ranked)


def _by_name(ch: ClickHouse, ranked: Sequence[Any], expr: str) -> tuple[
        list[Any] | None, bool]:
    """The ranked rows (key, count) in the page's order: counts descending, then sender and
    TLS version, names from one narrow read (`_names`); and whether a key stands for two
    senders. None if a key has no name there (its names expired before its edge hours did).
    Sorted here, as the counts would otherwise travel back with the keys (measured: 7 ms per
    10,000): code point order is the byte order of UTF-8, which ClickHouse sorts a String
    by, and every name was written from a Python string (valid UTF-8)."""
    names, more = _names(ch, ranked, expr)
    named = {k: (s, v, c) for k, s, v, c in ch.query_rows(names, more)}
    if any(c for _, _, c in named.values()):
        return None, True
    if len(named) != len(ranked):
        return None, False
    return sorted(ranked, key=lambda row: (-row[1], *named[row[0]][:2])), False


def query_columns(ch: ClickHouse, sql: str, params: dict[str, Any], width: int,
                  settings: dict[str, Any] | None = None) -> Sequence[Sequence[Any]]:
    """The answer column by column (`width` columns, empty ones when no row): for long
    answers, without a tuple per row."""
    columns: Sequence[Sequence[Any]] = ch.query(sql, params, settings).result_columns
    return columns if columns else [[] for _ in range(width)]


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
