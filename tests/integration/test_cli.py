"""`smtp-auth normalize` as a user runs it: lines on stdin, canonical JSON on stdout."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.helpers import ROOT

SESSION = """\
Nov 28 09:59:58 mx1 postfix/submission/smtpd[2201]: connect from laptop.lan[2001:db8::7]
Nov 28 09:59:58 mx1 postfix/submission/smtpd[2201]: Anonymous TLS connection established from laptop.lan[2001:db8::7]: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)
Nov 28 09:59:59 mx1 postfix/submission/smtpd[2201]: 4Q7ZrB1xyz: client=laptop.lan[2001:db8::7], sasl_method=XOAUTH2, sasl_username=Carol@Example.org
Nov 28 09:59:59 mx1 postfix/cleanup[2210]: 4Q7ZrB1xyz: message-id=<1@laptop>
Nov 28 10:00:00 mx1 postfix/qmgr[812]: 4Q7ZrB1xyz: from=<carol@example.org>, size=20480, nrcpt=3 (queue active)
Nov 28 10:00:01 mx1 postfix/submission/smtpd[2201]: disconnect from laptop.lan[2001:db8::7] ehlo=2 starttls=1 auth=1 mail=1 rcpt=3 data=1 quit=1 commands=10
this line is garbage, it mentions from=<x> but has no header
this line is irrelevant noise
"""


def test_normalize_prints_the_canonical_event():
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "normalize", "--year", "2026"],
        input=SESSION.encode(), capture_output=True, cwd=ROOT, check=True, timeout=60)
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(events) == 1
    event = events[0]
    assert {k: event[k] for k in ("sender", "sender_domain", "tls_version", "auth_mechanism",
                                  "client_ip", "client_host", "size", "recipients", "ts")} == {
        "sender": "carol@example.org", "sender_domain": "example.org", "tls_version": "TLS1.3",
        "auth_mechanism": "XOAUTH2", "client_ip": "2001:db8::7", "client_host": "laptop.lan",
        "size": 20480, "recipients": 3, "ts": "2026-11-28T09:59:59.000Z",
    }
    rejections = [json.loads(line) for line in done.stderr.splitlines() if line.startswith(b"{")]
    assert [(r["stage"], r["reason"]) for r in rejections] == [("decode", "no_syslog_header")]
