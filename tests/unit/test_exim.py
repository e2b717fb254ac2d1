"""Exim main log lines: real, quirky and invalid."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from tests.unit.dialect_helpers import pick, run

F = ("sender", "auth_mechanism", "client_ip", "client_host", "tls_version", "tls_cipher",
     "size", "message_id", "envelope_from", "recipients")

CASES = [
    ("2026-11-28 10:00:00 1tQz8X-0001Ab-Cd <= alice@example.com H=(laptop) [192.0.2.7]:54321 "
     "P=esmtpsa X=TLS1.3:TLS_AES_256_GCM_SHA384:256 CV=no A=dovecot_plain:Alice@Example.com "
     "S=2345 id=abc@laptop",
     ("alice@example.com", "PLAIN", "192.0.2.7", None, "TLS1.3", "TLS_AES_256_GCM_SHA384", 2345,
      "1tQz8X-0001Ab-Cd", "alice@example.com", None)),
    # GnuTLS cipher names, IPv6 with port, 4.97+ message ids, recipients logged
    ("2026-11-28 10:00:00 1tQz8X-00000001Ab-0Cd1 <= crm@contoso.org H=app.lan (app) "
     "[2001:db8::0:7]:587 P=esmtpsa X=TLS1.2:ECDHE_RSA_AES_256_GCM_SHA384:256 CV=no "
     "A=login:crm@contoso.org S=10 id=x@y for a@b.example c@d.example",
     ("crm@contoso.org", "LOGIN", "2001:db8::7", "app.lan", "TLS1.2",
      "ECDHE_RSA_AES_256_GCM_SHA384", 10, "1tQz8X-00000001Ab-0Cd1", "crm@contoso.org", 2)),
    # old OpenSSL label, bare authenticator (no server_set_id), cram_md5
    ("2026-11-28 10:00:00 1tQz8X-0001Ab-Cd <= scanner@example.com H=[10.1.1.9] P=esmtpsa "
     "X=TLSv1:AES256-SHA:256 A=cram_md5 S=99",
     (None, "CRAM-MD5", "10.1.1.9", None, "TLS1.0", "AES256-SHA", 99, "1tQz8X-0001Ab-Cd",
      "scanner@example.com", None)),
    # plaintext authenticated submission
    ("2026-11-28 10:00:00 1tQz8X-0001Ab-Cd <= <> H=(pc) [192.0.2.8] P=esmtpa A=plain:printer S=5",
     ("printer", "PLAIN", "192.0.2.8", None, "none", None, 5, "1tQz8X-0001Ab-Cd", None, None)),
]


@pytest.mark.parametrize(("line", "expected"), CASES)
def test_arrivals(line, expected):
    events, rejections = run([line], host="mx9")
    assert rejections == []
    assert [pick(e, *F) for e in events] == [expected]
    assert events[0]["server"] == "mx9"


@pytest.mark.parametrize("line", [
    "2026-11-28 10:00:00 1tQz8X-0001Ab-Cd <= news@remote.example H=mx.remote [192.0.2.9] "
    "P=esmtps X=TLS1.3:TLS_AES_256_GCM_SHA384:256 S=100",                       # inbound
    "2026-11-28 10:00:00 1tQz8X-0001Ab-Cd => bob@example.com R=local T=local_delivery",
    "2026-11-28 10:00:00 1tQz8X-0001Ab-Cd Completed",
    "2026-11-28 10:00:00 Start queue run: pid=12345",
    "2026-11-28 10:00:00 1tQz8X-0001Ab-Cd <= root U=root P=local S=300",      # local
])
def test_lines_that_are_not_submissions(line):
    assert run([line], host="mx9") == ([], [])


def test_authenticated_arrival_without_authenticator_is_a_dead_letter():
    _, rejections = run(["2026-11-28 10:00:00 1tQz8X-0001Ab-Cd <= a@b H=[192.0.2.1] "
                         "P=esmtpa S=1"], host="mx9")
    assert [r.reason for r in rejections] == ["exim_no_authenticator"]


def test_failure_with_set_id_and_helo_forms():
    events, _ = run([
        "2026-11-28 10:00:05 dovecot_login authenticator failed for (pc) [203.0.113.9]:50412: "
        "535 Incorrect authentication data (set_id=bob@example.com)",
        "2026-11-28 10:00:06 plain_server authenticator failed for H=host.example (pc) "
        "[203.0.113.10]:1234 I=[10.0.0.1]:587: 535 Incorrect authentication data",
    ], host="mx9")
    assert [pick(e, "kind", "sender", "auth_mechanism", "client_ip", "client_host")
            for e in events] == [
        ("auth_failure", "bob@example.com", "LOGIN", "203.0.113.9", None),
        ("auth_failure", None, "PLAIN", "203.0.113.10", "host.example"),
    ]


def test_local_time_zone_and_logged_offset():
    line = ("1tQz8X-0001Ab-Cd <= a@example.com H=[192.0.2.1] P=esmtpa A=plain:a@example.com "
            "S=1")
    berlin = ZoneInfo("Europe/Berlin")
    local, _ = run([f"2026-11-28 10:00:00 {line}"], host="mx9", zone=berlin)
    offset, _ = run([f"2026-11-28 10:00:00.250 -0500 [4321] {line}"], host="mx9", zone=berlin)
    assert local[0]["ts"] == "2026-11-28T09:00:00.000Z"
    assert offset[0]["ts"] == "2026-11-28T15:00:00.250Z"


def test_through_syslog_without_own_timestamp():
    events, _ = run(["Nov 28 10:00:00 mx3 exim[77]: 1tQz8X-0001Ab-Cd <= a@example.com "
                     "H=[192.0.2.1] P=esmtpsa X=TLS1.2:AES:256 A=plain:a@example.com S=1"])
    assert pick(events[0], "server", "tls_version") == ("mx3", "TLS1.2")
