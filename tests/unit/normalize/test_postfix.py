"""Postfix dialect: the line grammar on real, quirky and invalid lines, and the correlation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pipeline.normalize.dialects.base import Invalid, NormalizeConfig
from pipeline.normalize.dialects.postfix import AuthFailed, Client, Disconnect, Queued, Tls, parse
from pipeline.normalize.normalizer import Normalizer, normalize_lines
from pipeline.synthetic import LogGenerator
from tests.unit.normalize.dialect_helpers import run as run_lines

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)

GRAMMAR = [
    # (program, message, expected fragment)
    ("postfix/submission/smtpd",
     "Anonymous TLS connection established from unknown[192.0.2.1]: TLSv1.2 with cipher "
     "ECDHE-RSA-AES256-GCM-SHA384 (256/256 bits)",
     Tls("TLS1.2", "ECDHE-RSA-AES256-GCM-SHA384")),
    ("postfix/smtpd",
     "Trusted TLS connection established from mail.example.com[2001:db8::0001]: TLSv1.3 with "
     "cipher TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519 server-signature "
     "RSA-PSS (2048 bits) server-digest SHA256",
     Tls("TLS1.3", "TLS_AES_256_GCM_SHA384")),
    ("postfix-in/smtpd",
     "Untrusted TLS connection established from printer.lan[10.1.2.3]: TLSv1 with cipher "
     "AES128-SHA (128/128 bits)",
     Tls("TLS1.0", "AES128-SHA")),
    ("postfix/submission/smtpd",
     "4F9D21C2A: client=unknown[192.0.2.1], sasl_method=PLAIN, sasl_username=Alice@Example.com",
     Client("4F9D21C2A", None, "192.0.2.1", "PLAIN", "Alice@Example.com")),
    ("postfix/smtpd",  # long queue ids, client port logging, sasl_sender
     "4XfP3x2Zb3z9tq: client=host.example[198.51.100.7]:52144, sasl_method=LOGIN, "
     "sasl_username=scanner, sasl_sender=other@example.com",
     Client("4XfP3x2Zb3z9tq", "host.example", "198.51.100.7", "LOGIN", "scanner")),
    ("postfix/smtpd", "3A1B2C3D: client=mx.remote.example[203.0.113.9]",
     Client("3A1B2C3D", "mx.remote.example", "203.0.113.9", None, None)),
    ("postfix/qmgr", "4F9D21C2A: from=<alice@example.com>, size=1234, nrcpt=2 (queue active)",
     Queued("4F9D21C2A", "alice@example.com", 1234, 2)),
    ("postfix/qmgr", "4F9D21C2A: from=<>, size=999, nrcpt=1 (queue active)",
     Queued("4F9D21C2A", None, 999, 1)),
    ("postfix/submission/smtpd",
     "disconnect from unknown[192.0.2.1] ehlo=2 starttls=1 auth=1 mail=1 rcpt=1 data=1 quit=1",
     Disconnect("unknown[192.0.2.1]", 0)),
    ("postfix/submission/smtpd",
     "warning: unknown[203.0.113.50]: SASL LOGIN authentication failed: UGFzc3dvcmQ6",
     AuthFailed(None, "203.0.113.50", "LOGIN", None)),
    ("postfix/smtpd",
     "warning: host.example[203.0.113.50]: SASL plain authentication failed: , "
     "sasl_username=bob@example.com",
     AuthFailed("host.example", "203.0.113.50", "PLAIN", "bob@example.com")),
    # not about submission: skipped cheaply
    ("postfix/smtpd", "connect from unknown[192.0.2.1]", None),
    ("postfix/qmgr", "4F9D21C2A: removed", None),
    ("postfix/cleanup", "4F9D21C2A: message-id=<x@y>", None),
    ("postfix/smtp", "Untrusted TLS connection established to mx.google.com[142.250.1.1]:25: "
                     "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384", None),
    ("postfix/anvil", "statistics: max connection rate 1/60s for (smtp:192.0.2.1)", None),
    # relevant but broken: dead letters with a reason
    ("postfix/smtpd", "Anonymous TLS connection established from garbage",
     Invalid("postfix_tls_unparsed", "TLS line in an unknown format")),
    ("postfix/smtpd", "4F9D21C2A: client=", Invalid("postfix_client_unparsed",
                                                    "client= line in an unknown format")),
    ("postfix/qmgr", "4F9D21C2A: from=<a@b>, size=big",
     Invalid("postfix_qmgr_unparsed", "qmgr from= line without size/nrcpt")),
]


@pytest.mark.parametrize(("program", "message", "expected"), GRAMMAR)
def test_grammar(program, message, expected):
    assert parse(program, message) == expected


def _lines(*rows: tuple[float, str]) -> list[bytes]:
    return [f"{(T0 + timedelta(seconds=s)).isoformat()} mx1 {text}".encode() for s, text in rows]


def _run(lines: list[bytes], **config):
    normalizer = Normalizer(NormalizeConfig(**config))
    events, rejections, released = [], [], []
    for out in normalize_lines(((None, line) for line in lines), normalizer, T0):
        events += out.events
        rejections += out.rejections
        released += out.released
    return events, rejections, released


SESSION = (
    (0.0, "postfix/submission/smtpd[100]: Anonymous TLS connection established from "
          "unknown[192.0.2.1]: TLSv1.1 with cipher ECDHE-RSA-AES128-SHA (128/128 bits)"),
    (0.2, "postfix/submission/smtpd[100]: AB12C: client=unknown[192.0.2.1], sasl_method=login, "
          "sasl_username=printer7"),
    (0.3, "postfix/qmgr[9]: AB12C: from=<Printer7@Example.com>, size=4321, nrcpt=3 (queue active)"),
    (0.4, "postfix/submission/smtpd[100]: disconnect from unknown[192.0.2.1] ehlo=1 auth=1"),
)


def test_session_is_correlated_by_pid_and_queue_id():
    events, rejections, released = _run(_lines(*SESSION), default_domain="example.com")
    assert rejections == []
    assert len(events) == 1
    event = events[0]
    assert (event.sender, event.sender_domain, event.auth_mechanism) == (
        "printer7", "example.com", "LOGIN")
    assert (event.tls_version, event.client_ip, event.size, event.recipients) == (
        "TLS1.1", "192.0.2.1", 4321, 3)
    assert event.envelope_from == "printer7@example.com"
    assert event.ts == T0 + timedelta(seconds=0.2)
    assert sorted(released) == [0, 1, 2, 3]


def test_lines_are_released_only_when_their_session_is_emitted():
    normalizer = Normalizer(NormalizeConfig())
    lines = _lines(*SESSION)
    assert normalizer.feed(lines[0], "tls", T0).released == []
    assert normalizer.feed(lines[1], "client", T0).released == []
    done = normalizer.feed(lines[2], "qmgr", T0)
    # The TLS line is still held by the open connection; the session's own lines are free.
    assert len(done.events) == 1
    assert sorted(done.released) == ["client", "qmgr"]
    assert sorted(normalizer.feed(lines[3], "disc", T0).released) == ["disc", "tls"]
    assert normalizer.pending() == 0


def test_same_input_gives_same_event_id():
    first, _, _ = _run(_lines(*SESSION))
    again, _, _ = _run(_lines(*SESSION))
    assert [e.event_id for e in first] == [e.event_id for e in again]


def test_session_without_qmgr_line_is_emitted_after_timeout():
    lines = _lines(SESSION[0], SESSION[1],
                   (400.0, "postfix/submission/smtpd[200]: disconnect from unknown[192.0.2.2]"))
    normalizer = Normalizer(NormalizeConfig(session_timeout_seconds=300))
    outs = [normalizer.feed(line, i, T0) for i, line in enumerate(lines)]
    assert [len(o.events) for o in outs] == [0, 0, 1]
    event = outs[2].events[0]
    assert (event.sender, event.tls_version, event.size) == ("printer7", "TLS1.1", None)
    assert normalizer.pending() == 0


def test_unauthenticated_messages_are_not_events():
    events, _, released = _run(_lines(
        (0, "postfix/smtpd[5]: 9F1: client=mx.remote.example[203.0.113.9]"),
        (1, "postfix/qmgr[9]: 9F1: from=<news@remote.example>, size=10, nrcpt=1 (queue active)")))
    assert events == []
    assert sorted(released) == [0, 1]


def test_pending_sessions_are_bounded():
    rows = [(i * 0.01, f"postfix/smtpd[{i}]: Q{i:05d}: client=h[192.0.2.1], sasl_method=PLAIN, "
                       f"sasl_username=u{i}@example.com") for i in range(30)]
    normalizer = Normalizer(NormalizeConfig(max_pending_sessions=10))
    emitted = sum(len(normalizer.feed(line, i, T0).events)
                  for i, line in enumerate(_lines(*rows)))
    assert emitted == 20
    assert normalizer.pending() == 10


def test_auth_failure_is_an_event():
    events, _, _ = _run(_lines(
        (0, "postfix/submission/smtpd[7]: warning: unknown[203.0.113.50]: SASL LOGIN "
            "authentication failed: UGFzc3dvcmQ6")))
    assert [(e.kind, e.client_ip, e.auth_mechanism) for e in events] == [
        ("auth_failure", "203.0.113.50", "LOGIN")]


def test_broken_relevant_line_goes_to_dead_letters():
    _, rejections, released = _run(_lines((0, "postfix/qmgr[9]: Q1: from=<a@b>, size=big")))
    assert [(r.stage, r.reason, r.dialect) for r in rejections] == [
        ("parse", "postfix_qmgr_unparsed", "postfix")]
    assert released == [0]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_generated_log_equals_ground_truth(seed):
    lines, truth = LogGenerator("postfix", seed).log(400, T0)
    events, rejections, released = _run([line.encode() for _, line in lines])
    assert rejections == []
    got = [e.model_dump(mode="json", exclude={"event_id"}) for e in events]
    key = lambda e: (e["ts"], e["server"], e["kind"], e["client_ip"] or "")  # noqa: E731
    assert sorted(got, key=key) == sorted(truth, key=key)
    assert sorted(released) == list(range(len(lines)))


def test_user_names_with_spaces_commas_and_field_names_keep_their_account():
    # issue 16 item 6
    events, rejections = run_lines([
        "Nov 28 10:00:00 mx1 postfix/smtpd[9]: warning: unknown[203.0.113.9]: SASL LOGIN "
        "authentication failed: UGFzc3dvcmQ6, sasl_username=John Smith",
        "Nov 28 10:00:01 mx1 postfix/smtpd[9]: warning: unknown[203.0.113.9]: SASL PLAIN "
        "authentication failed: authentication failure, sasl_username=a, sasl_username=b",
        "Nov 28 10:00:02 mx1 postfix/submission/smtpd[10]: 4ABC123: client=pc[192.0.2.7], "
        "sasl_method=PLAIN, sasl_username=a, sasl_username=b",
        "Nov 28 10:00:02 mx1 postfix/qmgr[11]: 4ABC123: from=<a@example.com>, size=1, "
        "nrcpt=1 (queue active)",
        "Nov 28 10:00:03 mx1 postfix/submission/smtpd[10]: 4ABC124: client=pc[192.0.2.7], "
        "sasl_method=PLAIN, sasl_username=x, orig_client=localhost[127.0.0.1]",
        "Nov 28 10:00:03 mx1 postfix/qmgr[11]: 4ABC124: from=<x@example.com>, size=1, "
        "nrcpt=1 (queue active)",
    ])
    assert rejections == []
    assert [(e["kind"], e["sender"], e["client_ip"]) for e in events] == [
        ("auth_failure", "John Smith", "203.0.113.9"),
        ("auth_failure", "a, sasl_username=b", "203.0.113.9"),
        ("submission", "a, sasl_username=b", "192.0.2.7"),
        ("submission", "x, orig_client=localhost[127.0.0.1]", "192.0.2.7"),
    ]


def test_temporary_backend_failure_is_not_a_failed_login():
    # fail2ban's postfix-sasl test log (tests/realworld/SOURCES.md S11)
    assert run_lines(["Feb  3 08:29:28 mail postfix/smtpd[21022]: warning: unknown[1.1.1.1]: SASL "
                 "LOGIN authentication failed: Connection lost to authentication server"]) == (
        [], [])


def test_summary_only_failure_keeps_its_tls_version_on_rfc3339_stamps():
    events, _ = run_lines([
        "2025-11-27T16:26:19.175732+03:00 mail postfix/submission/smtpd[147650]: connect from "
        "unknown[185.21.46.169]",
        "2025-11-27T16:26:19.272295+03:00 mail postfix/submission/smtpd[147650]: Anonymous TLS "
        "connection established from unknown[185.21.46.169]: TLSv1.3 with cipher "
        "TLS_AES_128_GCM_SHA256 (128/128 bits)",
        "2025-11-27T16:26:21.000001+03:00 mail postfix/submission/smtpd[147650]: disconnect from "
        "unknown[185.21.46.169] ehlo=2 starttls=1 auth=0/1 quit=1 commands=4/5",
    ])
    assert [(e["kind"], e["client_ip"], e["tls_version"], e["ts"]) for e in events] == [
        ("auth_failure", "185.21.46.169", "TLS1.3", "2025-11-27T13:26:21.000Z")]


def test_before_queue_filter_submissions_do_not_replace_each_other():
    # mailcow's before-queue filter log (tests/realworld/SOURCES.md S44)
    line = ("Mar 19 13:37:29 e postfix/smtpd[{pid}]: NOQUEUE: client=pc[192.0.2.{n}], "
            "sasl_method=PLAIN, sasl_username=u{n}@example.com")
    events, _ = run_lines([line.format(pid=1, n=1), line.format(pid=2, n=2)])
    assert sorted((e["sender"], e["client_ip"], e["message_id"]) for e in events) == [
        ("u1@example.com", "192.0.2.1", None), ("u2@example.com", "192.0.2.2", None)]
    assert len({e["event_id"] for e in events}) == 2
