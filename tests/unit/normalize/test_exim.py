"""Exim main log lines: real, quirky and invalid."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from tests.unit.normalize.dialect_helpers import pick, run

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


# Real forms (tests/realworld/SOURCES.md S1, S6, S9): the client address is the `[ip]` Exim
# writes after the HELO, never the HELO; `U=ident`, no set_id, a TAB before the name.
@pytest.mark.parametrize(("line", "expected"), [
    ("2013-01-04 17:03:46 login authenticator failed for rrcs-24-106-174-74.se.biz.rr.com "
     "([192.168.2.33]) [24.106.174.74]: 535 Incorrect authentication data (set_id=brian)",
     ("brian", "LOGIN", "24.106.174.74")),
    ("2013-08-20 23:30:05 plain authenticator failed for ([192.168.2.102]) [91.218.72.71]: "
     "535 Incorrect authentication data: 1 Time(s)", (None, "PLAIN", "91.218.72.71")),
    ("1999-03-02 09:44:33 plain authenticator failed for (test.host) [10.0.0.1] U=CALLER: "
     "535 Incorrect authentication data (set_id=eserx)", ("eserx", "PLAIN", "10.0.0.1")),
    ("1999-03-02 09:44:33 testname authenticator failed for (testing.testing) [10.0.0.5] "
     "U=CALLER: 535 Incorrect authentication data (set_id=rx secret)",
     ("rx secret", None, "10.0.0.5")),
    ("2026-11-28 10:00:05 \tdovecot_login authenticator failed for (pc) [203.0.113.9]:50412: "
     "535 Incorrect authentication data (set_id=bob@example.com)",
     ("bob@example.com", "LOGIN", "203.0.113.9")),
    ("2026-11-28 10:00:05 spa authenticator failed for (pc) [203.0.113.9]:50412: "
     "535 Incorrect authentication data", (None, None, "203.0.113.9")),
    ("2026-11-28 10:00:05 au1 authenticator failed for (pc) [203.0.113.9]:50412: "
     "535 Incorrect authentication data (set_id=a) [198.51.100.1]: 535 x)",
     ("a) [198.51.100.1]: 535 x", None, "203.0.113.9")),
])
def test_real_failure_forms(line, expected):
    events, rejections = run([line], host="mx9")
    assert rejections == []
    assert [pick(e, "sender", "auth_mechanism", "client_ip") for e in events] == [expected]


@pytest.mark.parametrize("line", [
    # server-side temporary failure, client cancel: no credentials rejected
    "1999-03-02 09:44:33 defer authenticator failed for (test.host) [10.0.0.1] U=CALLER: 435 "
    "Unable to authenticate at present (set_id=userx): account suspended",
    "1999-03-02 09:44:33 login authenticator failed for (test.host) [10.0.0.1] U=CALLER: 501 "
    "Authentication cancelled",
    # this MTA as a client of a smarthost; a local -bs caller
    "1999-03-02 09:44:33 10HmaZ-000000005vi-0000 plain authenticator failed H=127.0.0.1 "
    "[127.0.0.1] 535 Sorry, authentication failed",
    "1999-03-02 09:44:33 plain1 authenticator failed for CALLER: 535 Incorrect authentication "
    "data (set_id=userx\\n)",
    "1999-03-02 09:44:33 10HmaX-000000005vi-0000 <= CALLER@myhost.test.ex U=CALLER "
    "P=local-esmtpa A=plain1:userx S=sss",
])
def test_real_lines_that_give_no_event(line):
    assert run([line], host="mx9") == ([], [])


def test_quoted_envelope_sender_cannot_fake_an_authenticated_submission():
    # issue 16 item 6: the fields inside the client's quoted local part are not Exim's
    line = ('2026-11-28 10:00:00 1tQz8X-0001Ab-Cd <= "x P=esmtpa A=dovecot_plain:ceo@example.com'
            ' X=TLS1.0:RC4-MD5:128 "@evil.example H=mx.evil.example [198.51.100.7] P=esmtp '
            'S=100')
    assert run([line], host="mx9") == ([], [])


def test_quoted_dn_cannot_supply_the_account():
    line = ('2026-11-28 10:00:00 1tQz8X-0001Ab-Cd <= a@example.com H=(pc) [192.0.2.7]:1 '
            'P=esmtpsa X=TLS1.2:AES:256 CV=yes DN="CN=x A=plain:ceo@example.com" '
            'A=plain:alice@example.com S=5')
    events, _ = run([line], host="mx9")
    assert [pick(e, "sender", "client_ip") for e in events] == [("alice@example.com",
                                                                  "192.0.2.7")]


def test_client_side_custom_message_failure_is_no_event():
    # Exim test suite 3419 (tests/realworld/SOURCES.md S34)
    assert run(["1999-03-02 09:44:33 10HmaX-000000005vi-0000 custom-message: login authenticator "
                "failed H=127.0.0.1 [127.0.0.1] 599 no way, man"], host="mx9") == ([], [])


def test_ident_that_fakes_fields_is_a_dead_letter_not_a_submission():
    # the ident (U=) is the client's text and comes before P=
    line = ("1999-03-02 09:44:33 10HmbC-000000005vi-0000 <= userx@cus.cam.ac.uk H=(test.host) "
            "[10.0.0.1] U=x A=plain:ceo@victim.example P=esmtpa A=login:userx S=sss")
    events, rejections = run([line], host="mx9")
    assert events == [] and [r.reason for r in rejections] == ["exim_ambiguous_fields"]
    inbound = ("1999-03-02 09:44:33 10HmbC-000000005vi-0000 <= a@b.example H=(test.host) "
               "[10.0.0.1] U=x P=esmtp P=esmtp S=1")
    assert run([inbound], host="mx9") == ([], [])


def test_ident_that_fakes_a_reply_is_a_dead_letter():
    line = ("1999-03-02 09:44:33 plain authenticator failed for (test.host) [10.0.0.1] U=x: 435 "
            "y: 535 Incorrect authentication data (set_id=eserx)")
    events, rejections = run([line], host="mx9")
    assert events == [] and [r.reason for r in rejections] == ["exim_auth_failure_ambiguous"]


def test_unknown_host_part_is_a_dead_letter_only_when_authentication_is_claimed():
    # Exim test suite 5410 masks addresses (tests/realworld/SOURCES.md S43)
    inbound = ("1999-03-02 09:44:33 10HmaX-0005vi-00 <= eximtest@myhost.test.ex "
               "H=the.local.host.name (myhost.test.ex) [ip4.ip4.ip4.ip4] P=esmtps "
               "X=TLSv1:AES256-SHA:256 S=sss")
    assert run([inbound], host="mx9") == ([], [])
    _, rejections = run([inbound.replace("P=esmtps", "P=esmtpsa A=plain:x")], host="mx9")
    assert [r.reason for r in rejections] == ["exim_host_unparsed"]
