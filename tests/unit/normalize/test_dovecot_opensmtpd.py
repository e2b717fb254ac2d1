"""Dovecot submission-login and OpenSMTPD lines."""

from __future__ import annotations

from tests.unit.normalize.dialect_helpers import pick, run

DOVECOT_LOGIN = ("Nov 28 10:00:00 mx1 dovecot: submission-login: Login: user=<Alice@Example.com>, "
                 "method=PLAIN, rip=192.0.2.7, lip=10.0.0.5, mpid=1234, TLS, session=<AbCd>")


def test_dovecot_login_and_failures():
    events, rejections = run([
        DOVECOT_LOGIN,
        "Nov 28 10:00:01 mx1 dovecot: submission-login: Disconnected (auth failed, 3 attempts "
        "in 12 secs): user=<bob@example.com>, method=LOGIN, rip=203.0.113.9, lip=10.0.0.5, "
        "session=<x>",
        "Nov 28 10:00:02 mx1 dovecot: submission-login: Info: Login aborted: Connection closed "
        "(auth failed, 1 attempts in 2 secs) (auth_failed): user=<carol>, method=PLAIN, "
        "rip=203.0.113.10, lip=10.0.0.5, TLS, session=<y>",
        "Nov 28 10:00:03 mx1 dovecot: imap-login: Login: user=<alice@example.com>, method=PLAIN, "
        "rip=192.0.2.7, lip=10.0.0.5, TLS",
        "Nov 28 10:00:04 mx1 dovecot: submission-login: Disconnected (no auth attempts in 0 "
        "secs): user=<>, rip=192.0.2.7, lip=10.0.0.5",
    ])
    assert rejections == []
    assert [pick(e, "kind", "sender", "auth_mechanism", "client_ip", "tls_version")
            for e in events] == [
        ("submission", "alice@example.com", "PLAIN", "192.0.2.7", "unknown"),
        *[("auth_failure", "bob@example.com", "LOGIN", "203.0.113.9", "none")] * 3,
        ("auth_failure", "carol", "PLAIN", "203.0.113.10", "unknown"),
    ]
    assert len({e["event_id"] for e in events}) == 5


def test_dovecot_logged_protocol_version():
    events, _ = run([DOVECOT_LOGIN.replace(", TLS,", ", TLS, TLSv1.1,")])
    assert events[0]["tls_version"] == "TLS1.1"


def test_opensmtpd_66_session():
    sid = "1a2b3c4d5e6f7a8b"
    events, rejections = run([
        f"Nov 28 10:00:00 mx1 smtpd[771]: {sid} smtp connected address=192.0.2.7 host=pc.lan",
        f"Nov 28 10:00:00 mx1 smtpd[771]: {sid} smtp tls ciphers=TLSv1.2:ECDHE-RSA-AES256-GCM-SHA384:256",
        f"Nov 28 10:00:01 mx1 smtpd[771]: {sid} smtp authentication user=Dave@Example.com result=ok",
        f"Nov 28 10:00:02 mx1 smtpd[771]: {sid} smtp message msgid=0a1b2c3d size=1234 nrcpt=2 proto=ESMTP",
        f"Nov 28 10:00:03 mx1 smtpd[771]: {sid} smtp disconnected reason=quit",
    ])
    assert rejections == []
    assert [pick(e, "kind", "sender", "client_ip", "client_host", "tls_version", "size",
                 "recipients", "message_id") for e in events] == [
        ("submission", "dave@example.com", "192.0.2.7", "pc.lan", "TLS1.2", 1234, 2, "0a1b2c3d")]


def test_opensmtpd_older_event_form_and_failure():
    sid = "ffffeeeeddddcccc"
    events, _ = run([
        f"Nov 28 10:00:00 mx1 smtpd[771]: {sid} smtp event=authentication user=eve "
        f"address=203.0.113.4 host=<unknown> result=permfail",
    ])
    assert [pick(e, "kind", "sender", "client_ip", "tls_version") for e in events] == [
        ("auth_failure", "eve", "203.0.113.4", "none")]


def test_opensmtpd_unauthenticated_message_is_not_an_event():
    sid = "0000000000000001"
    events, _ = run([
        f"Nov 28 10:00:00 mx1 smtpd[771]: {sid} smtp connected address=192.0.2.9 host=mx.remote",
        f"Nov 28 10:00:01 mx1 smtpd[771]: {sid} smtp message msgid=00000001 size=1 nrcpt=1 proto=ESMTP",
    ])
    assert events == []


def _dovecot(wording: str, fields: str = "user=<bob>, method=PLAIN, rip=203.0.113.9, "
             "lip=10.0.0.5, TLS, session=<s>") -> str:
    return f"Aug  9 03:17:18 mx1 dovecot: submission-login: {wording}: {fields}"


def test_dovecot_23_failure_wordings():
    # Dovecot 2.3 (fail2ban PR 2795, tests/realworld/SOURCES.md S19, and Dovecot's own words)
    wordings = [
        "Disconnected (auth failed, 2 attempts in 4 secs)",
        "Client has quit the connection (auth failed, 1 attempts in 2 secs)",
        "Remote closed connection (auth failed, 1 attempts in 2 secs)",
        "Disconnected: Aborted login by logging out (auth failed, 1 attempts in 3 secs)",
        "Disconnected: Inactivity (auth failed, 1 attempts in 180 secs)",
        "Disconnected: Connection closed (auth failed, 1 attempts in 3 secs)",
        "Aborted login (auth failed, 1 attempts)",
        "Disconnected (auth failed)",
    ]
    events, rejections = run([_dovecot(w) for w in wordings])
    assert rejections == []
    assert len(events) == 9
    assert {pick(e, "kind", "sender", "client_ip", "tls_version") for e in events} == {
        ("auth_failure", "bob", "203.0.113.9", "unknown")}


def test_dovecot_truncated_user_keeps_the_event():
    events, _ = run([_dovecot("Client has quit the connection (auth failed, 1 attempts in 2 "
                              "secs)", "user=<user1, method=LOGIN, rip=183.136.134.133, "
                              "lip=0.0.0.0")])
    assert [pick(e, "sender", "auth_mechanism", "client_ip", "tls_version") for e in events] == [
        ("user1", "LOGIN", "183.136.134.133", "none")]


def test_dovecot_user_name_cannot_count_nor_move():
    # issue 16 item 6: a user name that reads like Dovecot's words or fields
    events, _ = run([
        _dovecot("Disconnected (auth failed, 1 attempts in 2 secs)",
                 "user=<auth failed, 999 attempts>, method=PLAIN, rip=203.0.113.9, "
                 "lip=10.0.0.5"),
        _dovecot("Disconnected (auth failed, 1 attempts in 2 secs)",
                 "user=<x>, method=XOAUTH2, rip=198.51.100.1, TLS>, method=PLAIN, "
                 "rip=203.0.113.9, lip=10.0.0.5"),
        _dovecot("Disconnected (no auth attempts in 0 secs)",
                 "user=<(auth failed, 5 attempts)>, rip=203.0.113.9, lip=10.0.0.5"),
    ])
    assert [pick(e, "sender", "auth_mechanism", "client_ip", "tls_version") for e in events] == [
        ("auth failed, 999 attempts", "PLAIN", "203.0.113.9", "none"),
        ("x>, method=XOAUTH2, rip=198.51.100.1, TLS", "PLAIN", "203.0.113.9", "none"),
    ]


def test_opensmtpd_user_name_is_unvis_ed_and_kept_as_written():
    sid = "ffffeeeeddddcccd"
    events, _ = run([
        f"Nov 28 10:00:00 mx1 smtpd[771]: {sid} smtp event=authentication "
        f"user=John\\040Smith\\040address=198.51.100.66 address=203.0.113.4 host=<unknown> "
        f"result=permfail",
        f'Nov 28 10:00:01 mx1 smtpd[771]: {sid} smtp event=authentication user="ceo" '
        f"address=203.0.113.4 host=<unknown> result=permfail",
    ])
    assert [pick(e, "sender", "client_ip") for e in events] == [
        ("John Smith address=198.51.100.66", "203.0.113.4"), ('"ceo"', "203.0.113.4")]


def test_relevant_but_unknown_is_a_dead_letter_and_tempfail_no_event():
    events, rejections = run([
        _dovecot("Disconnected (auth weirdness, 3 tries)"),
        _dovecot("Disconnected (no auth attempts in 0 secs)"),
        _dovecot("Disconnected (client didn't finish SASL auth, waited 0 secs)"),
        "Nov 28 10:00:00 mx1 smtpd[771]: ffffeeeeddddccce smtp event=authentication user=eve "
        "address=203.0.113.4 host=<unknown> result=tempfail",
    ])
    assert events == []
    assert [r.reason for r in rejections] == ["dovecot_auth_unrecognized"]


def test_opensmtpd_60_to_64_session():
    # the log_info formats of OpenSMTPD 6.0-6.4 smtp_session.c (event=...)
    sid = "0123456789abcdef"
    head = f"Nov 28 10:00:0{{n}} mx1 smtpd[771]: {sid} smtp event="
    message = (head + "message address=192.0.2.7 host=pc.lan msgid=0a1b2c3d "
               "from=<x address=198.51.100.66> to=<{to}> size=1234 ndest=2 proto=ESMTP")
    events, rejections = run([
        head.format(n=0) + "connected address=192.0.2.7 host=pc.lan",
        head.format(n=1) + 'starttls address=192.0.2.7 host=pc.lan ciphers="version=TLSv1, '
                           'cipher=ECDHE-RSA-AES256-SHA, bits=256"',
        head.format(n=2) + "authentication user=dave address=192.0.2.7 host=pc.lan result=ok",
        message.format(n=3, to="a@example.org"),
        message.format(n=3, to="b@example.org"),
        head.format(n=4) + "closed reason=quit",
    ])
    assert rejections == []
    assert [pick(e, "kind", "sender", "client_ip", "tls_version", "tls_cipher", "recipients")
            for e in events] == [
        ("submission", "dave", "192.0.2.7", "TLS1.0", "ECDHE-RSA-AES256-SHA", 2)]
