"""Report parameters and the CSV writer without an engine: a window outside the published
pattern (calendar edges, impossible days, spans over 366 days) is a 400 naming `range`, and
every window inside it is valid; a cell that a spreadsheet could run as a formula stays
text."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.store import reports
from pipeline.store.reports.query import HOUR, RANGE_PATTERN, WEEK, rollup, whole_days
from pipeline.web import api


@pytest.mark.parametrize("window", [
    "0001-01-01T00:00:00+01:00/P1D",  # the calendar's edges: once 500/503
    "9999-12-31T23:59:59-01:00/PT1H",
    "1969-12-31T00:00:00Z/P2D",
    "1970-06-01/P1D",  # 1970 and 2100 on: an offset could take the window outside DateTime
    "2100-01-01/P1D",
    "2026-02-29/P1D",  # not a day
    "2026-11-31/P1D",
    "2026-11-01/P367D",  # longer than 366 days
    "2026-11-01/P53W",
    "2026-11-01/PT8785H",
    "2026-11-01/P0D",  # empty: start must come before end
    "2026-11-01/P01D",
    "2026-11-01/P1DT24H",
    "2026-11-01T24:00/P1D",
    "2026-11-01T10:00+24:00/P1D",
    "2026-11-01",  # a start alone
    "2026-11-01/2026-11-30",  # start/end: not this API's form
    "custom",
    "7d\n",
    "",
])
def test_windows_outside_the_pattern_are_a_400_naming_range(window):
    with pytest.raises(api.BadRequest) as raised:
        api.parse_query({"range": window})
    assert raised.value.errors[0]["loc"] == ["range"]


@pytest.mark.parametrize("name", ["start", "end"])
def test_the_old_start_end_parameters_are_a_400_that_names_the_new_shape(name):
    with pytest.raises(api.BadRequest) as raised:
        api.parse_query({"range": "custom", name: "2026-11-01T00:00:00Z"})
    assert raised.value.errors[0]["loc"] == [name]
    assert "range=START/DURATION" in str(raised.value)


@pytest.mark.parametrize(("window", "since", "until"), [
    ("2026-11-01/P30D", "2026-11-01T00:00", "2026-12-01T00:00"),
    ("2026-11-01T06:30+01:00/P1DT12H", "2026-11-01T05:00", "2026-11-02T18:00"),
    ("2026-11-01T06Z/PT1H", "2026-11-01T06:00", "2026-11-01T07:00"),
    ("2026-11-01T06:00:01/P2W", "2026-11-01T06:00", "2026-11-15T07:00"),
    ("2028-01-01/P366D", "2028-01-01T00:00", "2029-01-01T00:00"),
    ("2026-01-01/PT8784H", "2026-01-01T00:00", "2027-01-02T00:00"),
])
def test_a_custom_window_is_rounded_out_to_whole_utc_hours(window, since, until):
    query = api.parse_query({"range": window})
    assert query.window(datetime.now(UTC)) == (
        datetime.fromisoformat(since).replace(tzinfo=UTC),
        datetime.fromisoformat(until).replace(tzinfo=UTC))


@settings(max_examples=300, deadline=None)
@given(st.from_regex(RANGE_PATTERN.replace("$", r"\Z"), fullmatch=True))
def test_every_window_the_published_pattern_admits_is_accepted_and_inside_datetime(window):
    """The OpenAPI pattern is the validator: what it admits is a window of 1 hour to 366 days
    (plus the rounding to hours) inside what ClickHouse's DateTime holds."""
    since, until = api.parse_query({"range": window}).window(datetime.now(UTC))
    assert reports.EARLIEST <= since < until <= reports.LATEST
    assert until - since <= reports.MAX_SPAN + 2 * reports.HOUR


def test_a_cell_with_a_separator_and_a_formula_stays_one_text_cell():
    body = b"".join(reports.csv_chunks([["a;-1+1", "=1+1", 7]], ["x", "y", "n"])).decode()
    assert body.splitlines()[1] == '"a;-1+1","\'=1+1","7"'
    # A semicolon-locale reader no longer finds a cell that starts a formula.
    cells = next(csv.reader(io.StringIO(body.splitlines()[1]), delimiter=";"))
    assert not any(cell.startswith(reports.FORMULA_PREFIXES) for cell in cells), cells


T = datetime(2026, 11, 28, 13, tzinfo=UTC)


@pytest.mark.parametrize("since,until,days", [
    # 90 days ending with the current hour: the two partial days are hours, the rest days.
    (T - timedelta(days=90) + HOUR, T + HOUR, (datetime(2026, 8, 31, tzinfo=UTC),
                                               datetime(2026, 11, 28, tzinfo=UTC))),
    # Midnight to midnight: all days, no hours.
    (datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 8, tzinfo=UTC),
     (datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 8, tzinfo=UTC))),
    # Inside one day, or across one midnight: no whole day, all hours.
    (T - 5 * HOUR, T, (T, T)),
    (T - 20 * HOUR, T, (T, T)),
])
def test_a_window_is_whole_days_plus_the_hours_at_its_edges(since, until, days):
    d0, d1 = whole_days(since, until)
    assert (d0, d1) == days
    hours = {since + i * HOUR for i in range(int((until - since) / HOUR))}
    by_day = {h for h in hours if d0 <= h < d1}
    # The days are whole and inside the window; the edge hours are the rest of it.
    assert d0 == d1 or (d0.hour == d1.hour == 0 and since <= d0 < d1 <= until)
    assert len(by_day) == int((d1 - d0) / HOUR)
    assert all(h.date() not in {d.date() for d in by_day} for h in hours - by_day)


def test_a_rollup_binds_its_bounds_and_names_only_known_tables():
    sql, params = rollup("db", "domain_", "sender_domain, messages", T - WEEK, T,
                         "sender_domain = {domain:String}", prefix="c")
    assert set(params) == {"csince", "cuntil", "cd0", "cd1"}
    assert "db.domain_hourly" in sql and "db.domain_daily" in sql
    assert sql.count("sender_domain = {domain:String}") == 2
    with pytest.raises(AssertionError):
        rollup("db", "events; DROP TABLE x; --", "x", T - WEEK, T)
