"""Sendmail lines: correlation by pid, with and without queue-id prefixes."""

from __future__ import annotations

from tests.unit.normalize.dialect_helpers import pick, run

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


def test_injected_relay_in_the_user_name_does_not_move_the_client():
    # fail2ban's sendmail-auth test log (tests/realworld/SOURCES.md S16)
    events, _ = run([
        "Feb 25 04:02:28 relay1 sendmail[16665]: 06I02CNi016765: AUTH failure (LOGIN): "
        "authentication failure (-13) SASL(-13): authentication failure: checkpass failed, "
        "user=criminal, relay=[192.0.2.100], relay=[192.0.2.4] (may be forged)",
        "May 24 01:59:07 server sm-mta[65815]: 14NNx65Q065815: AUTH failure (CRAM-MD5): user not "
        "found (-20) SASL(-13): user not found: user: a, user=ceo property: userPassword not "
        "found in sasldb /usr/local/etc/sasldb2, user=a, user=ceo, relay=[192.0.2.6]",
    ])
    assert [pick(e, "sender", "client_ip") for e in events] == [
        ("criminal, relay=[192.0.2.100]", "192.0.2.4"), ("a, user=ceo", "192.0.2.6")]


def test_msgid_cannot_move_the_client_nor_break_the_counts():
    # issue 16 item 6
    msgid = FROM.format(proto="ESMTPSA").replace(
        "msgid=<x@laptop>", "msgid=<x, relay=[198.51.100.66], nrcpts=x, proto=ESMTP@laptop>")
    events, rejections = run([TLS, AUTH.format(qid=""), msgid])
    assert rejections == []
    assert [pick(e, "client_ip", "recipients", "sender") for e in events] == [
        ("192.0.2.7", 2, "alice@example.com")]


def test_msgid_cannot_make_unauthenticated_mail_a_submission():
    line = FROM.format(proto="ESMTP").replace("msgid=<x@laptop>", "msgid=<x, proto=ESMTPA>")
    assert run([line]) == ([], [])


def test_authid_cannot_choose_the_mechanism():
    auth = AUTH.format(qid="").replace("authid=Alice@Example.com",
                                       "authid=Alice@Example.com, mech=XOAUTH2")
    events, _ = run([TLS, auth, FROM.format(proto="ESMTPSA")])
    assert pick(events[0], "sender", "auth_mechanism") == (
        "alice@example.com, mech=xoauth2", "LOGIN")
