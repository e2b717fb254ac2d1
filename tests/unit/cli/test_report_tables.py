"""`smtp-auth report NAME` in the terminal: every registered report's answer shape prints."""

from __future__ import annotations

import io

from rich.console import Console

from pipeline.cli import report


def test_a_single_object_answer_prints_as_one_row():
    answer = {"since": "2026-11-21T00:00:00Z", "until": "2026-11-28T00:00:00Z",
              "messages": 3, "senders": 2, "auth_failures": 1,
              "by_tls": {"TLS1.0": 1, "TLS1.2": 2}}
    [(title, rows)] = report.tables("summary", answer)
    assert title == "summary"
    assert rows == [{**answer, "by_tls": '{"TLS1.0": 1, "TLS1.2": 2}'}]
    out = io.StringIO()
    report.print_tables("summary", answer, Console(file=out, width=200))
    assert "TLS1.0" in out.getvalue() and "auth_failures" in out.getvalue()
