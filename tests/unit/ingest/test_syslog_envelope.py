"""Syslog headers, year inference and shipper envelopes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from pipeline.ingest.envelope import Undecodable, decode
from pipeline.ingest.syslog import infer_year, parse_syslog
from schemas.event import AuthEvent

JAN = datetime(2027, 1, 2, 8, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(("month", "day", "reference", "year"), [
    (12, 31, JAN, 2026),                                   # December line read in January
    (1, 2, JAN, 2027),
    (1, 3, JAN, 2027),                                     # a day ahead: clock skew, same year
    (6, 1, datetime(2026, 11, 28, tzinfo=UTC), 2026),
    (2, 29, datetime(2029, 3, 1, tzinfo=UTC), 2028),       # leap day read in a common year
])
def test_infer_year(month, day, reference, year):
    assert infer_year(month, day, reference) == year


def test_rfc3164_in_local_zone_is_stored_as_utc():
    line = parse_syslog("Dec 31 23:30:00 mx1 postfix/smtpd[12]: connect from x[192.0.2.1]",
                        JAN, BERLIN)
    assert line is not None
    assert line.ts == datetime(2026, 12, 31, 22, 30, tzinfo=UTC)
    assert (line.host, line.program, line.pid) == ("mx1", "postfix/smtpd", 12)


def test_rfc3339_with_offset_and_nanoseconds():
    line = parse_syslog("<22>1 2026-11-28T10:00:00.123456789+01:00 mx1 postfix/qmgr[9]: Q: removed",
                        JAN, UTC)
    assert line is not None
    assert line.ts == datetime(2026, 11, 28, 9, 0, 0, 123456, tzinfo=UTC)


def test_explicit_year_wins():
    line = parse_syslog("Mar  5 01:02:03 mx1 postfix/smtpd[1]: x", JAN, UTC, year=2020)
    assert line is not None and line.ts.year == 2020


@pytest.mark.parametrize("raw", [
    b"", b"   ", b"hello world", b"{not json", b"[1,2]", b'{"host": "mx1"}',
    b'{"event_id": "x", "kind": "submission"}', b"x" * 20000,
])
def test_undecodable_input_is_a_reason_not_an_exception(raw):
    assert isinstance(decode(raw, JAN, UTC, 16384), Undecodable)


def test_rsyslog_envelope_carrying_a_whole_line():
    raw = json.dumps({"message": "Nov 28 10:00:00 mx9 postfix/smtpd[3]: connect from a[192.0.2.1]",
                      "@timestamp": "2026-11-28T10:00:01Z"}).encode()
    line = decode(raw, JAN, UTC, 16384)
    assert not isinstance(line, Undecodable | AuthEvent)
    assert (line.host, line.ts.year) == ("mx9", 2026)  # year from the envelope, not receive time


@pytest.mark.parametrize("doc", [
    {"message": "m", "hostname": "mx2", "appname": "postfix/smtpd", "procid": "77",
     "timestamp": "2026-11-28T10:00:00.5Z"},                                       # Vector
    {"message": "m", "host": "mx2", "ident": "postfix/smtpd", "pid": "77",
     "time": "2026-11-28T10:00:00.5+00:00"},                                        # Fluent Bit
    {"message": "m", "host": {"name": "mx2"}, "process": {"name": "postfix/smtpd", "pid": 77},
     "@timestamp": "2026-11-28T10:00:00.500Z"},                                     # Filebeat
])
def test_shipper_envelopes(doc):
    line = decode(json.dumps(doc).encode(), JAN, UTC, 16384)
    assert not isinstance(line, Undecodable | AuthEvent)
    assert (line.host, line.program, line.pid, line.message) == ("mx2", "postfix/smtpd", 77, "m")
    assert line.ts == datetime(2026, 11, 28, 10, 0, 0, 500000, tzinfo=UTC)


def test_canonical_event_passes_through_validated():
    doc = {"event_id": "e1", "kind": "submission", "ts": "2026-11-28T10:00:00+01:00",
           "server": "app1", "source": "json", "sender": "crm@example.com",
           "tls_version": "TLS1.2", "client_ip": "2001:DB8::1", "auth_mechanism": "xoauth2"}
    event = decode(json.dumps(doc).encode(), JAN, UTC, 16384)
    assert isinstance(event, AuthEvent)
    assert (event.ts.hour, event.client_ip, event.auth_mechanism) == (9, "2001:db8::1", "XOAUTH2")
