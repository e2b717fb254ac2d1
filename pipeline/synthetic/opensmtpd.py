"""Synthetic OpenSMTPD (6.6+ and the older event= form) sessions."""

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
    sid = f"{s.pid:08x}{int(s.qid, 16) & 0xFFFFFFFF:08x}"
    tag = f"{s.server} smtpd[771]: {sid} smtp"
    host = s.host or "<unknown>"
    out.add(ms(s.ts, -0.3), f"{tag} connected address={s.ip} host={host}")
    if s.tls != "none":
        out.add(ms(s.ts, -0.25), f"{tag} tls ciphers={OPENSSL_LABEL[s.tls]}:"
                                 f"{OPENSSL_CIPHER[s.tls]}:256")
    if s.pid % 2:
        out.add(ms(s.ts, -0.2), f"{tag} authentication user={s.sender} result=ok")
    else:
        out.add(ms(s.ts, -0.2), f"{tag} event=authentication user={s.sender} address={s.ip} "
                                f"host={host} result=ok")
    msgid = f"{int(s.qid, 16) & 0xFFFFFFFF:08x}"
    out.add(ms(s.ts, -0.1), f"{tag} envelope evpid={msgid}00000001 from=<{s.sender}> "
                            f"to=<r@remote.example>")
    out.add(s.ts, f"{tag} message msgid={msgid} size={s.size} nrcpt={s.recipients} proto=ESMTP")
    out.add(ms(s.ts, 0.1), f"{tag} disconnected reason=quit")
    out.truth.append(truth(
        "opensmtpd", "submission", s.ts, s.server, sender=s.sender, client_ip=s.ip,
        client_host=s.host, tls_version=s.tls, tls_cipher=OPENSSL_CIPHER.get(s.tls),
        message_id=msgid, recipients=s.recipients, size=s.size))
    return out


def failure(f: Failure) -> Rendered:
    out = Rendered()
    sid = f"{f.pid:08x}ffff{f.pid % 65536:04x}"
    tag = f"{f.server} smtpd[771]: {sid} smtp"
    out.add(ms(f.ts, -0.1), f"{tag} connected address={f.ip} host=<unknown>")
    out.add(f.ts, f"{tag} authentication user={f.username or 'admin'} result=permfail")
    out.add(ms(f.ts, 0.1), f"{tag} disconnected reason=quit")
    out.truth.append(truth("opensmtpd", "auth_failure", f.ts, f.server,
                           sender=f.username or "admin", client_ip=f.ip, tls_version="none"))
    return out


def noise(s: Submission) -> Rendered:
    out = Rendered()
    sid = f"{s.pid:08x}eeee{s.pid % 65536:04x}"
    tag = f"{s.server} smtpd[771]: {sid} smtp"
    out.add(s.ts, f"{tag} connected address=192.0.2.9 host=mx.remote.example")
    out.add(ms(s.ts, 0.1), f"{tag} message msgid=0000abcd size=5120 nrcpt=1 proto=ESMTP")
    out.add(ms(s.ts, 0.2), f"{tag} disconnected reason=quit")
    out.add(ms(s.ts, 0.3), f"{s.server} smtpd[772]: {sid} mta delivery evpid=0000abcd00000001 "
                           f"from=<news@remote.example> to=<{s.sender}> result=Ok")
    return out
