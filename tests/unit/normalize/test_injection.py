"""Attribution that cannot be moved: text a client controls (SASL user name, HELO, envelope
sender, ident, set_id, msgid) is injected with field-like text into real lines of every
dialect. The event's client IP must stay the one the MTA wrote, its account must stay the
account (or, when the account itself is the injected field, the client's own text read from
its start), and the count and kinds of events must not change; a line may instead become a
dead letter with a reason. Inputs tried, dead letters and mis-attributions per dialect are
written to test-artifacts/injection.json.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pipeline.normalize.dialects.common import sender_identity
from tests.helpers import ARTIFACTS
from tests.unit.normalize.dialect_helpers import run

EXAMPLES = 600
TRIED: Counter[str] = Counter()
DEAD: Counter[str] = Counter()
MOVED: Counter[str] = Counter()
EVIL_IP = "198.51.100.66"
PIECES = [f"relay=[{EVIL_IP}]", f"[{EVIL_IP}]", f"([{EVIL_IP}])", f"rip={EVIL_IP}",
          "sasl_username=ceo@victim.example", "user=ceo@victim.example",
          "user=<ceo@victim.example>", '"', ",", ", ", "[", "]", "(", ")", "<", ">", " ",
          ": 535 ", "(set_id=ceo@victim.example)", "auth failed, 999 attempts",
          "A=plain:ceo@victim.example", " P=esmtpa", " X=TLS1.0:RC4-MD5:128",
          ", orig_client=localhost[127.0.0.1]", f"address={EVIL_IP}", "method=XOAUTH2",
          f"H=evil [{EVIL_IP}]", f"[{EVIL_IP}]:25", "\t", "#011", f", relay=[{EVIL_IP}]",
          ", nrcpts=x", ", proto=ESMTPA", f"{EVIL_IP}:51234", ",*,,User Name: ceo"]
PAYLOAD = st.lists(st.one_of(st.sampled_from(PIECES),
                             st.text(st.characters(codec="ascii", exclude_categories=["Cc"]),
                                     max_size=6)), min_size=1, max_size=5).map("".join)


@dataclass(frozen=True)
class Case:
    dialect: str
    lines: tuple[str, ...]
    line: int  # which line holds the field
    field: str  # regex with one group `v`: the client's text
    account: bool = False  # the field is the account itself
    host: str | None = None
    csv_column: int | None = None  # Exchange: the field is this CSV column, requoted


TLS_SM = ("Nov 28 10:00:00 mx1 sm-mta[4242]: STARTTLS=server, relay=laptop.lan [192.0.2.7], "
          "version=TLSv1.1, verify=NO, cipher=ECDHE-RSA-AES128-SHA, bits=128/128")
AUTH_SM = ("Nov 28 10:00:01 mx1 sm-mta[4242]: AUTH=server, relay=laptop.lan [192.0.2.7], "
           "authid=alice@example.com, mech=LOGIN, bits=0")
FROM_SM = ("Nov 28 10:00:02 mx1 sm-mta[4242]: 4ASA0xyz012345: from=<alice@example.com>, "
           "size=1234, class=0, nrcpts=2, msgid=<x@laptop>, proto=ESMTPSA, daemon=MSA, "
           "relay=laptop.lan [192.0.2.7]")
PF_TLS = ("Nov 28 10:00:00 mx1 postfix/submission/smtpd[77]: Anonymous TLS connection "
          "established from pc[192.0.2.7]: TLSv1.2 with cipher ECDHE-RSA-AES256-GCM-SHA384 "
          "(256/256 bits)")
PF_CLIENT = ("Nov 28 10:00:01 mx1 postfix/submission/smtpd[77]: 4ABC123: client=pc[192.0.2.7], "
             "sasl_method=PLAIN, sasl_username=alice@example.com")
PF_QMGR = ("Nov 28 10:00:02 mx1 postfix/qmgr[11]: 4ABC123: from=<alice@example.com>, size=10, "
           "nrcpt=1 (queue active)")
EX_HEAD = ("#Fields: date-time,connector-id,session-id,sequence-number,local-endpoint,"
           "remote-endpoint,event,data,context")
EX = "2023-01-11T16:00:{s},SERVER-HOSTNAME\\Default Frontend SERVER-HOSTNAME,123453EC62278461"
EX_LINES = (EX_HEAD,
            EX.format(s="02.105Z") + ",8,10.10.10.10:25,95.10.20.33:56026,<,EHLO [95.10.20.33],",
            EX.format(s="03.115Z") + ",12,10.10.10.10:25,95.10.20.33:56026,<,AUTH LOGIN,",
            EX.format(s="10.644Z") + ",15,10.10.10.10:25,95.10.20.33:56026,*,,Inbound AUTH LOGIN "
            "failed because of LogonDenied",
            EX.format(s="10.644Z") + ",15,10.10.10.10:25,95.10.20.33:56026,*,,User Name: "
            "username@domain.com")
EX_OK = (EX_HEAD,
         EX.format(s="03.115Z") + ",12,10.10.10.10:587,95.10.20.33:56026,<,AUTH LOGIN,",
         EX.format(s="04.000Z") + ",13,10.10.10.10:587,95.10.20.33:56026,*,CONTOSO\\scanner,"
         "authenticated",
         EX.format(s="05.000Z") + ",14,10.10.10.10:587,95.10.20.33:56026,<,"
         "MAIL FROM:<scanner@contoso.com> SIZE=10,",
         EX.format(s="06.000Z") + ",15,10.10.10.10:587,95.10.20.33:56026,>,\"250 2.6.0 <m@pc> "
         "[InternalId=77, Hostname=EX01] Queued mail for delivery\",",
         EX.format(s="07.000Z") + ",16,10.10.10.10:587,95.10.20.33:56026,-,,Local")
SID = "1a2b3c4d5e6f7a8b"
OS = f"Nov 28 10:00:0{{n}} mx1 smtpd[771]: {SID} smtp "
OS60 = f"Nov 28 10:00:0{{n}} mx1 smtpd[771]: {SID} smtp event="
OS60_LINES = (OS60.format(n=0) + "connected address=192.0.2.7 host=pc.lan",
              OS60.format(n=1) + "authentication user=dave address=192.0.2.7 host=pc.lan "
              "result=ok",
              OS60.format(n=2) + "message address=192.0.2.7 host=pc.lan msgid=0a1b2c3d "
              "from=<dave@example.com> to=<bob@example.org> size=1 ndest=1 proto=ESMTP")
OS_LINES = (OS.format(n=0) + "connected address=192.0.2.7 host=pc.lan",
            OS.format(n=1) + "authentication user=dave@example.com result=ok",
            OS.format(n=2) + "message msgid=0a1b2c3d size=1234 nrcpt=2 proto=ESMTP",
            OS.format(n=3) + "disconnected reason=quit")

# Real lines (tests/realworld/SOURCES.md) and the dialects' own table lines.
CASES = [
    Case("postfix", ("Nov 28 10:00:00 mx1 postfix/smtpd[9]: warning: unknown[203.0.113.9]: "
                     "SASL LOGIN authentication failed: UGFzc3dvcmQ6, sasl_username=john",),
         0, r"sasl_username=(?P<v>.*)$", account=True),
    Case("postfix", (PF_TLS, PF_CLIENT, PF_QMGR), 1, r"sasl_username=(?P<v>.*)$", account=True),
    Case("postfix", (PF_TLS, PF_CLIENT, PF_QMGR), 2, r"from=<(?P<v>[^>]*)>"),
    Case("exim", ("2013-01-04 17:03:46 login authenticator failed for rrcs-24-106-174-74.se.biz."
                  "rr.com ([192.168.2.33]) [24.106.174.74]: 535 Incorrect authentication data "
                  "(set_id=brian)",), 0, r"\((?P<v>\[192\.168\.2\.33\])\)", host="mx"),
    Case("exim", ("2013-01-04 17:03:46 login authenticator failed for rrcs-24-106-174-74.se.biz."
                  "rr.com ([192.168.2.33]) [24.106.174.74]: 535 Incorrect authentication data "
                  "(set_id=brian)",), 0, r"set_id=(?P<v>.*)\)$", account=True, host="mx"),
    Case("exim", ("1999-03-02 09:44:33 plain authenticator failed for (test.host) [10.0.0.1] "
                  "U=CALLER: 535 Incorrect authentication data (set_id=eserx)",), 0,
         r"U=(?P<v>\S+):", host="mx"),
    *[Case("exim", ("1999-03-02 09:44:33 10HmbC-000000005vi-0000 <= userx@cus.cam.ac.uk "
                    "H=(test.host) [10.0.0.1] U=CALLER P=esmtpa A=login:userx S=sss",), 0,
               field, account=field.startswith("A="), host="mx")
      for field in (r"<= (?P<v>\S+) H=", r"H=\((?P<v>[^)]*)\)", r"U=(?P<v>\S+) P=",
                    r"A=login:(?P<v>\S+)")],
    Case("exim", ("1999-03-02 09:44:33 10HmaZ-0005vi-00 <= CALLER@myhost.test.ex H=localhost "
                  "(myhost.test.ex) [127.0.0.1] P=esmtpsa X=TLS1.x:ke_RSA_AES_256_CBC_SHAnnn:256 "
                  "CV=no A=plain:userx S=sss id=E10HmaX-0005vi-00@myhost.test.ex",), 0,
         r"id=(?P<v>\S+)$", host="mx"),
    Case("sendmail", ("Feb 25 04:02:27 relay1 sendmail[16664]: 06I02CNi016764: AUTH failure "
                      "(LOGIN): authentication failure (-13) SASL(-13): authentication failure: "
                      "checkpass failed, user=user@example.com, relay=example.com [192.0.2.3] "
                      "(may be forged)",), 0, r"user=(?P<v>.*), relay=", account=True),
    Case("sendmail", (TLS_SM, AUTH_SM, FROM_SM), 1, r"authid=(?P<v>.*), mech=", account=True),
    Case("sendmail", (TLS_SM, AUTH_SM, FROM_SM), 2, r"msgid=(?P<v><[^>]*>)"),
    Case("sendmail", (TLS_SM, AUTH_SM, FROM_SM), 2, r"from=<(?P<v>[^>]*)>"),
    Case("dovecot", ("Aug  9 12:11:40 server dovecot: submission-login: Client has quit the "
                     "connection (auth failed, 1 attempts in 3 secs): user=<user2>, method=LOGIN, "
                     "rip=183.136.134.133, lip=0.0.0.0",), 0, r"user=<(?P<v>[^>]*)>",
         account=True),
    Case("dovecot", ("Nov 28 10:00:00 mx1 dovecot: submission-login: Login: user=<alice@example."
                     "com>, method=PLAIN, rip=192.0.2.7, lip=10.0.0.5, mpid=1234, TLS, "
                     "session=<AbCd>",), 0, r"user=<(?P<v>[^>]*)>", account=True),
    Case("exchange", EX_LINES, 4, r"User Name: (?P<v>.*)$", account=True, host="ex",
         csv_column=8),
    Case("exchange", EX_LINES, 1, r"EHLO (?P<v>.*),$", host="ex", csv_column=7),
    Case("exchange", EX_OK, 2, r"\*,(?P<v>[^,]*),authenticated", account=True, host="ex",
         csv_column=7),
    Case("exchange", EX_OK, 3, r"MAIL FROM:<(?P<v>[^>]*)>", host="ex", csv_column=7),
    Case("opensmtpd", OS_LINES, 1, r"user=(?P<v>\S+) result", account=True),
    Case("opensmtpd", OS60_LINES, 2, r"from=<(?P<v>[^>]*)>"),
    Case("opensmtpd", OS60_LINES, 2, r"to=<(?P<v>[^>]*)>"),
    Case("opensmtpd", (OS.format(n=0) + "event=authentication user=eve address=203.0.113.4 "
                       "host=<unknown> result=permfail",), 0, r"user=(?P<v>\S+) address",
         account=True),
]


def _vis(text: str) -> str:
    """OpenSMTPD logs a user name through strnvis(VIS_WHITE | VIS_SAFE)."""
    return "".join(f"\\{ord(c):03o}" if c in " \t\n\\" else c for c in text)


def _exim_address(text: str) -> str:
    """Exim logs a local part that needs it in quotes (RFC 5321)."""
    if not text:
        return "<>"
    if re.fullmatch(r"[A-Za-z0-9.@_+=-]*", text):
        return text
    local, _, domain = text.rpartition("@") if "@" in text else (text, "", "")
    escaped = local.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"@{domain or "attacker.example"}'


def inject(case: Case, value: str) -> str:
    line = case.lines[case.line]
    match = re.search(case.field, line)
    assert match is not None, (case, line)
    if case.dialect == "opensmtpd":
        value = _vis(value)
    if case.dialect == "exim" and case.field.startswith("<="):
        value = _exim_address(value)
    if case.csv_column is None:
        return line[:match.start("v")] + value + line[match.end("v"):]
    row = next(csv.reader([line]))
    cell = row[case.csv_column]
    start = match.start("v") - line.index(cell) if cell else 0
    row[case.csv_column] = cell[:start] + value + cell[start + len(match["v"]):]
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(row)  # Exchange quotes what needs it
    return out.getvalue()


def _summary(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(e["kind"], e["client_ip"]) for e in events]


def check(case: Case, value: str) -> str:
    """'ok', 'dead' (dead-lettered with a reason) or a description of the mis-attribution."""
    base, _ = run(list(case.lines), host=case.host)
    lines = list(case.lines)
    lines[case.line] = inject(case, value)
    events, rejections = run(lines, host=case.host)
    if not events and rejections:
        assert all(r.reason not in ("parser_error", "decoder_error") for r in rejections)
        return "dead"
    if _summary(events) != _summary(base):
        return f"client/kinds moved: {_summary(events)} != {_summary(base)}"
    for got, was in zip(events, base, strict=True):
        if case.account:
            # rsyslog writes a TAB as #011: a literal #011 in a line is read as one
            want = sender_identity(value.replace("#011", "\t"), None)[0] or ""
            if got["sender"] is not None and not want.lower().startswith(got["sender"].lower()):
                return f"account {got['sender']!r} is not the client's own {want!r}"
        elif got["sender"] != was["sender"]:
            return f"account moved: {got['sender']!r} != {was['sender']!r}"
    return "ok"


@pytest.mark.parametrize("dialect", ["postfix", "exim", "sendmail", "dovecot", "exchange",
                                     "opensmtpd"])
def test_injected_text_never_moves_client_or_account(dialect):
    cases = [c for c in CASES if c.dialect == dialect]

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(case=st.sampled_from(cases), payload=PAYLOAD, mode=st.sampled_from(
        ["replace", "append", "prepend"]))
    def probe(case, payload, mode):
        original = re.search(case.field, case.lines[case.line])["v"]
        value = {"replace": payload, "append": original + payload,
                 "prepend": payload + original}[mode]
        # no one authenticates with a blank name (rsyslog's #011 is a TAB)
        assume(not case.account or value.replace("#011", "\t").strip())
        TRIED[dialect] += 1
        verdict = check(case, value)
        if verdict == "dead":
            DEAD[dialect] += 1
        elif verdict != "ok":
            MOVED[dialect] += 1
        assert verdict in ("ok", "dead"), f"{case.field} <- {value!r}: {verdict}"

    probe()
    assert TRIED[dialect] >= EXAMPLES // 2


def teardown_module() -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "injection.json").write_text(json.dumps(
        {d: {"tried": TRIED[d], "dead_lettered": DEAD[d], "misattributed": MOVED[d]}
         for d in sorted(TRIED)}, indent=2, sort_keys=True))
