"""Exchange Server SMTP receive protocol log: CSV rows correlated by session id."""

from __future__ import annotations

from tests.unit.normalize.dialect_helpers import pick, run

HEAD = ("#Fields: date-time,connector-id,session-id,sequence-number,local-endpoint,"
        "remote-endpoint,event,data,context")


def rows(session: str, *items: tuple[str, str, str], ip: str = "192.0.2.7") -> list[str]:
    return [f"2026-11-28T10:00:0{i}.000Z,EX01\\Client Frontend EX01,{session},{i},"
            f"10.0.0.5:587,{ip}:51234,{event},{data},{context}"
            for i, (event, data, context) in enumerate(items)]


SUBMISSION = rows(
    "08DD1", ("+", "", ""),
    ("*", "", '"TLS protocol SP_PROT_TLS1_0_SERVER negotiation succeeded using bulk encryption '
              'algorithm CALG_AES_128 with strength 128 bits, MAC hash algorithm CALG_SHA1"'),
    ("<", "AUTH LOGIN", ""), ("*", "CONTOSO\\scanner", "authenticated"),
    ("<", "MAIL FROM:<Scanner@Contoso.com> SIZE=4096", ""), ("<", "RCPT TO:<a@x.example>", ""),
    ("<", "RCPT TO:<b@x.example>", ""),
    (">", '"250 2.6.0 <m@pc> [InternalId=77, Hostname=EX01] 4096 bytes in 0.1, 1 KB/sec '
          'Queued mail for delivery"', ""),
    ("-", "", "Local"))


def test_session_becomes_one_submission():
    events, rejections = run([HEAD, *SUBMISSION], host="ex01.corp")
    assert rejections == []
    assert [pick(e, "kind", "server", "sender", "auth_mechanism", "tls_version", "tls_cipher",
                 "envelope_from", "size", "recipients", "message_id", "client_ip")
            for e in events] == [
        ("submission", "EX01", "CONTOSO\\scanner", "LOGIN", "TLS1.0", "CALG_AES_128",
         "scanner@contoso.com", 4096, 2, "77", "192.0.2.7")]


def test_failed_login_with_user_name_and_ipv6():
    events, _ = run([HEAD, *rows(
        "08DD2", ("+", "", ""), ("<", "AUTH PLAIN", ""),
        ("*", "", "Inbound authentication failed. User Name: bob@contoso.com"),
        (">", "535 5.7.3 Authentication unsuccessful", ""), ("-", "", "Remote"),
        ip="[2001:db8::5]")])
    assert [pick(e, "kind", "sender", "auth_mechanism", "client_ip", "tls_version")
            for e in events] == [("auth_failure", "bob@contoso.com", "PLAIN", "2001:db8::5",
                                  "none")]


def test_unauthenticated_delivery_is_not_an_event():
    events, _ = run([HEAD, *rows("08DD3", ("+", "", ""), ("<", "MAIL FROM:<a@b>", ""),
                                 (">", "250 2.6.0 Queued mail for delivery", ""),
                                 ("-", "", "Remote"))])
    assert events == []


def test_fields_header_sets_column_order():
    head = "#Fields: session-id,date-time,connector-id,sequence-number,local-endpoint," \
           "remote-endpoint,event,data,context"
    reordered = [",".join([r.split(",")[2], *r.split(",")[:2], *r.split(",")[3:]])
                 for r in SUBMISSION]
    # Rows now start with the session id: not recognisable as Exchange rows on their own,
    # so they arrive in JSON envelopes that name the program.
    assert run([head]) == ([], [])
    assert reordered[0].startswith("08DD1,")


def test_short_and_broken_rows_are_dead_letters():
    _, rejections = run([HEAD, "2026-11-28T10:00:00.000Z,EX01\\x,08DD4",
                         '2026-11-28T10:00:00.000Z,"unterminated'], host="ex01")
    assert {r.reason for r in rejections} <= {"exchange_short_row", "exchange_bad_csv"}
    assert len(rejections) == 2


def test_logon_denied_takes_the_account_of_the_following_user_name_record():
    # the on-premises receive-log form (tests/realworld/SOURCES.md S23)
    events, rejections = run([HEAD, *rows(
        "08DD9", ("+", "", ""), ("<", "AUTH LOGIN", ""), (">", "334 <authentication response>", ""),
        ("*", "", "Inbound AUTH LOGIN failed because of LogonDenied"),
        ("*", "", "User Name: mallory@contoso.com"),
        (">", "535 5.7.3 Authentication unsuccessful", ""),
        ("<", "AUTH LOGIN", ""),
        ("*", "", "Inbound AUTH LOGIN failed because of LogonDenied"),
        ("-", "", "Remote"))], host="ex01.corp")
    assert rejections == []
    assert [pick(e, "kind", "sender", "auth_mechanism", "client_ip", "ts") for e in events] == [
        ("auth_failure", "mallory@contoso.com", "LOGIN", "192.0.2.7", "2026-11-28T10:00:03.000Z"),
        ("auth_failure", None, "LOGIN", "192.0.2.7", "2026-11-28T10:00:07.000Z")]


def test_user_name_is_the_whole_record_and_only_exchange_s_column():
    events, _ = run([HEAD, *rows(
        "08DDA", ("+", "", ""), ("<", "AUTH LOGIN", ""),
        ("*", "", "Inbound AUTH LOGIN failed because of LogonDenied"),
        ("*", "", '"User Name: Smith, John"'),
        ("-", "", "Remote"))], host="ex01.corp")
    assert [e["sender"] for e in events] == ["Smith, John"]
    events, _ = run([HEAD, *rows(
        "08DDB", ("+", "", ""), ("<", "AUTH LOGIN", ""),
        ("*", '",*,,User Name: ceo"', "authenticated"),
        ("<", "MAIL FROM:<a@contoso.com>", ""),
        (">", '"250 2.6.0 <m@pc> [InternalId=1, Hostname=EX01] Queued mail for delivery"', ""),
        ("-", "", "Local"))], host="ex01.corp")
    assert [e["sender"] for e in events] == [",*,,User Name: ceo"]


def test_other_auth_failure_reasons_are_dead_letters():
    events, rejections = run([HEAD, *rows(
        "08DDC", ("+", "", ""), ("<", "AUTH LOGIN", ""),
        ("*", "", "Inbound AUTH LOGIN failed because of SomethingNew"), ("-", "", "Remote"))],
        host="ex01.corp")
    assert events == [] and [r.reason for r in rejections] == ["exchange_auth_unrecognized"]
