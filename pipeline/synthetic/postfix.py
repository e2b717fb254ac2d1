"""Synthetic Postfix sessions."""

from __future__ import annotations

from pipeline.synthetic.base import (
    OPENSSL_CIPHER,
    OPENSSL_LABEL,
    Failure,
    Rendered,
    Submission,
    ms,
    truth,
)


def submission(s: Submission) -> Rendered:
    out = Rendered()
    smtpd = f"{s.server} postfix/submission/smtpd[{s.pid}]:"
    client = f"{s.host or 'unknown'}[{s.ip}]"
    out.add(ms(s.ts, -0.25), f"{smtpd} connect from {client}")
    if s.tls != "none":
        out.add(ms(s.ts, -0.2), f"{smtpd} Anonymous TLS connection established from {client}: "
                                f"{OPENSSL_LABEL[s.tls]} with cipher {OPENSSL_CIPHER[s.tls]} "
                                f"(256/256 bits)")
    out.add(s.ts, f"{smtpd} {s.qid}: client={client}, sasl_method={s.mechanism}, "
                  f"sasl_username={s.sender}")
    out.add(ms(s.ts, 0.01), f"{s.server} postfix/cleanup[{s.pid + 1}]: {s.qid}: "
                            f"message-id=<{s.qid}.{s.pid}@{s.server}>")
    out.add(ms(s.ts, 0.03), f"{s.server} postfix/qmgr[812]: {s.qid}: from=<{s.sender}>, "
                            f"size={s.size}, nrcpt={s.recipients} (queue active)")
    out.add(ms(s.ts, 0.3), f"{s.server} postfix/smtp[{s.pid + 2}]: {s.qid}: "
                           f"to=<r{s.recipients}@remote.example>, relay=remote.example"
                           f"[203.0.113.5]:25, delay=0.4, status=sent (250 ok)")
    out.add(ms(s.ts, 0.35), f"{smtpd} disconnect from {client} ehlo=2 starttls=1 auth=1 mail=1 "
                            f"rcpt={s.recipients} data=1 quit=1 commands={6 + s.recipients}")
    out.add(ms(s.ts, 0.36), f"{s.server} postfix/qmgr[812]: {s.qid}: removed")
    out.truth.append(truth(
        "postfix", "submission", s.ts, s.server, sender=s.sender, envelope_from=s.sender,
        auth_mechanism=s.mechanism, client_ip=s.ip, client_host=s.host,
        tls_version="unknown" if s.tls == "none" else s.tls, tls_cipher=OPENSSL_CIPHER.get(s.tls),
        message_id=s.qid, recipients=s.recipients, size=s.size))
    return out


def failure(f: Failure) -> Rendered:
    out = Rendered()
    smtpd = f"{f.server} postfix/submission/smtpd[{f.pid}]:"
    out.add(ms(f.ts, -0.3), f"{smtpd} connect from unknown[{f.ip}]")
    user = f", sasl_username={f.username}" if f.username else ""
    out.add(f.ts, f"{smtpd} warning: unknown[{f.ip}]: SASL {f.mechanism} authentication failed: "
                  f"UGFzc3dvcmQ6{user}")
    # The 3.x summary reports the same attempt: it must not be counted twice.
    out.add(ms(f.ts, 0.01), f"{smtpd} disconnect from unknown[{f.ip}] ehlo=1 auth=0/1 "
                            f"commands=1/2")
    out.truth.append(truth("postfix", "auth_failure", f.ts, f.server, sender=f.username,
                           auth_mechanism=f.mechanism, client_ip=f.ip))
    return out


def noise(s: Submission) -> Rendered:
    out = Rendered()
    smtpd = f"{s.server} postfix/smtpd[{s.pid}]:"
    remote = f"mail{s.pid}.remote.example[192.0.2.{s.pid % 250 + 1}]"
    out.add(s.ts, f"{smtpd} connect from {remote}")
    out.add(ms(s.ts, 0.05), f"{smtpd} {s.qid}: client={remote}")
    out.add(ms(s.ts, 0.1), f"{s.server} postfix/qmgr[812]: {s.qid}: from=<news@remote.example>, "
                           f"size=5120, nrcpt=1 (queue active)")
    out.add(ms(s.ts, 0.15), f"{s.server} postfix/local[{s.pid + 1}]: {s.qid}: "
                            f"to=<{s.sender}>, status=sent")
    out.add(ms(s.ts, 0.2), f"{smtpd} disconnect from {remote} ehlo=1 mail=1 rcpt=1 data=1")
    # A content filter re-injecting a submitted message: never a second event.
    out.add(ms(s.ts, 0.25), f"{s.server} postfix/smtpd[{s.pid + 3}]: {s.qid}X: "
                            f"client=localhost[127.0.0.1], orig_queue_id={s.qid}, "
                            f"orig_client=unknown[{s.ip}], sasl_method=PLAIN, "
                            f"sasl_username={s.sender}")
    out.add(ms(s.ts, 0.26), f"{s.server} postfix/qmgr[812]: {s.qid}X: from=<{s.sender}>, "
                            f"size={s.size + 300}, nrcpt=1 (queue active)")
    out.add(ms(s.ts, 0.3), f"{s.server} postfix/anvil[99]: statistics: max connection rate "
                           f"1/60s for (submission:{s.ip}) at Nov 28 10:00:00")
    return out
