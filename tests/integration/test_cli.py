"""`smtp-auth normalize` and `smtp-auth replay` as a user runs them."""

from __future__ import annotations

import json
import os
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


def test_replay_produces_every_line_keyed_by_server_in_order(kafka, names, tmp_path):
    """`smtp-auth replay`: every line of the file on the raw topic, keyed by the syslog
    host (each server's lines in one partition, in file order); a keyed file's servers."""
    from collections import defaultdict
    from datetime import UTC, datetime

    from pipeline.synthetic import LogGenerator
    from tests.helpers import consume, create_topics

    topic = names.env["SMTP_AUTH_TOPIC_RAW"]
    create_topics(kafka, [topic], partitions=3)
    lines, _ = LogGenerator("postfix", 12, accounts=20, rfc3164=True).log(
        150, datetime(2026, 11, 27, 9, tzinfo=UTC), 0.5)
    exim, _ = LogGenerator("exim", 13, accounts=20).log(20, datetime(2026, 11, 27, 9,
                                                                      tzinfo=UTC), 0.5)
    (tmp_path / "mail.log").write_text("".join(f"{text}\n" for _, text in lines))
    (tmp_path / "keyed.log").write_text("".join(f"{server}\t{text}\n" for server, text in exim))
    env = dict(os.environ, **names.env, SMTP_AUTH_KAFKA_BOOTSTRAP_SERVERS=kafka)
    for name, extra in (("mail.log", []), ("keyed.log", ["--keyed"])):
        done = subprocess.run([sys.executable, "-m", "pipeline.cli", "replay", "--quiet",
                               *extra, str(tmp_path / name)], env=env, cwd=ROOT,
                              capture_output=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
    assert f"{len(exim)} lines produced to {topic}".encode() in done.stderr
    records = consume(kafka, topic, len(lines) + len(exim), 60)
    assert len(records) == len(lines) + len(exim)
    by_key: dict[bytes, list[bytes]] = defaultdict(list)
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        by_key[record.key].append(record.value)
    want: dict[bytes, list[bytes]] = defaultdict(list)
    for server, text in [*lines, *exim]:
        want[server.encode()].append(text.encode())
    assert by_key == want  # every line once, under its server, in file order
