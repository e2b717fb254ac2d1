"""Report parameters and the CSV writer without an engine: calendar edges are a 400 naming
the parameter; a cell that a spreadsheet could run as a formula stays text."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from pipeline.store import reports
from pipeline.store.reports.query import HOUR, WEEK, rollup, whole_days
from pipeline.web import api


@pytest.mark.parametrize("start,end", [
    ("0001-01-01T00:00:00+01:00", "2026-11-28T00:00:00Z"),
    ("2026-11-28T00:00:00Z", "9999-12-31T23:59:59-01:00"),
    ("1969-12-31T00:00:00Z", "1970-01-02T00:00:00Z"),
])
def test_custom_ranges_at_the_calendar_edges_are_a_400_naming_the_parameter(start, end):
    with pytest.raises(api.BadRequest) as raised:
        api.parse_query({"range": "custom", "start": start, "end": end})
    assert raised.value.errors[0]["loc"][0] in ("start", "end")


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
