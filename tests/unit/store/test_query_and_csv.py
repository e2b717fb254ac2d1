"""Report parameters and the CSV writer without an engine: calendar edges are a 400 naming
the parameter; a cell that a spreadsheet could run as a formula stays text."""

from __future__ import annotations

import csv
import io

import pytest

from pipeline.store import reports
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
