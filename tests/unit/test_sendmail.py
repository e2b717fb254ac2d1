"""Sendmail lines: correlation by pid, with and without queue-id prefixes."""

from __future__ import annotations

from tests.unit.dialect_helpers import pick, run

F = ("kind", "sender", "auth_mechanism", "client_ip", "client_host", "tls_version", "size",
     "recipients", "message_id")
TLS = ("Nov 28 10:00:00 mx1 sm-mta[4242]: STARTTLS=server, relay=laptop.lan [192.0.2.7], "
       "version=TLSv1.1, verify=NO, cipher=ECDHE-RSA-AES128-SHA, bits=128/128")
AUTH = ("Nov 28 10:00:01 mx1 sm-mta[4242]: {qid}AUTH=server, relay=laptop.lan [192.0.2.7], "
        "authid=Alice@Example.com, mech=LOGIN, bits=0")
FROM = ("Nov 28 10:00:02 mx1 sm-mta[4242]: 4ASA0xyz012345: from=<alice@example.com>, size=1234, "
        "class=0, nrcpts=2, msgid=<x@laptop>, proto={proto}, daemon=MSA, "
        "relay=laptop.lan [192.0.2.7]")


def test_session_with_tls_and_auth_prefixed_or_not():
    for qid in ("", "4ASA0xyz012345: "):
        events, rejections = run([TLS, AUTH.format(qid=qid), FROM.format(proto="ESMTPSA")])
        assert rejections == []
        assert [pick(e, *F) for e in events] == [(
            "submission", "alice@example.com", "LOGIN", "192.0.2.7", "laptop.lan", "TLS1.1",
            1234, 2, "4ASA0xyz012345")]


def test_plaintext_auth_and_ipv6_relay():
    line = FROM.format(proto="ESMTPA").replace("laptop.lan [192.0.2.7]", "[IPv6:2001:db8::9]")
    events, _ = run([AUTH.format(qid=""), line])
    assert pick(events[0], "tls_version", "client_ip", "client_host") == (
        "none", "2001:db8::9", None)


def test_unauthenticated_mail_is_not_an_event():
    assert run([FROM.format(proto="ESMTP")]) == ([], [])


def test_auth_failure_forms():
    events, _ = run([
        "Nov 28 10:00:03 mx1 sm-mta[5000]: AUTH failure (PLAIN): authentication failure (-13) "
        "SASL(-13): authentication failure: checkpass failed, user=bob, relay=[203.0.113.9]",
        "Nov 28 10:00:04 mx1 sendmail[5001]: 4ASA0xyz012346: AUTH failure (CRAM-MD5): "
        "bad protocol / cancel (-4) SASL(-4): no mechanism available: , "
        "relay=host.example [203.0.113.10] (may be forged)",
    ], default_domain="example.com")
    assert [pick(e, "kind", "sender", "sender_domain", "auth_mechanism", "client_ip")
            for e in events] == [
        ("auth_failure", "bob", "example.com", "PLAIN", "203.0.113.9"),
        ("auth_failure", None, None, "CRAM-MD5", "203.0.113.10"),
    ]


def test_broken_lines_are_dead_letters():
    _, rejections = run([
        "Nov 28 10:00:00 mx1 sm-mta[1]: 4ASA0xyz012345: from=<a@b>, size=lots, nrcpts=1, "
        "proto=ESMTPA, relay=[192.0.2.1]",
        "Nov 28 10:00:00 mx1 sm-mta[1]: weird STARTTLS=server",
    ])
    assert [r.reason for r in rejections] == ["sendmail_from_unparsed", "sendmail_unparsed"]
