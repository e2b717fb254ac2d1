"""The small findings of the hostile probe (issue 16.11, 16.12), each as it was seen."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest
from pydantic import SecretStr

from pipeline.live import count
from pipeline.settings import Settings, SettingsError
from pipeline.store import reports
from pipeline.web import api
from pipeline.web.access import Access, allowed_hosts, host_name
from schemas.event import AuthEvent

NOW = datetime(2026, 11, 28, 10, 30, tzinfo=UTC)


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


def test_a_submission_without_an_account_is_no_sender_in_the_live_summary():
    entry = count.new_entry()
    event = AuthEvent(event_id="e1", kind="submission", ts=NOW, server="mx", source="json",
                      tls_version="TLS1.2")
    assert count.apply(entry, event, 1, count.hour_of(NOW), 1).counted
    summary = count.summary(count.rebuild([("", entry)]), NOW)
    assert (summary["messages"], summary["senders"]) == (1, 0)


def test_undecodable_credentials_are_refused_not_an_error():
    access = Access(Settings(_env_file=None, web_token=SecretStr("t0ken")))
    assert not access.allows("Bearer \udcff\udcfe")  # what aiohttp makes of raw 0xff bytes
    assert not access.allows("Basic \udcff")
    assert access.allows("Bearer t0ken")


def test_host_names_without_ports_and_brackets():
    hosts = allowed_hosts(Settings(_env_file=None, web_allowed_hosts="mail-report.example"))
    assert {host_name(h) for h in ("127.0.0.1:6066", "[::1]:6066", "LOCALHOST",
                                   "mail-report.example:443")} <= hosts
    assert host_name("attacker.example:6066") not in hosts


def test_a_settings_error_never_shows_the_secret(monkeypatch):
    monkeypatch.setenv("SMTP_AUTH_WEB_PASSWORD", "hunter2-secret")
    with pytest.raises(SettingsError) as raised:
        Settings.load()
    assert "web_user and web_password go together" in str(raised.value)
    assert "hunter2" not in str(raised.value) and "hunter2" not in repr(raised.value)
