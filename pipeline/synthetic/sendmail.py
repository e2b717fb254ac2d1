"""Synthetic Sendmail (sm-mta) sessions."""

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


def _relay(s: Submission | Failure) -> str:
    ip = f"IPv6:{s.ip}" if ":" in s.ip else s.ip
    host = getattr(s, "host", None)
    return f"{host} [{ip}]" if host else f"[{ip}]"


def submission(s: Submission) -> Rendered:
    out = Rendered()
    tag = f"{s.server} sm-mta[{s.pid}]:"
    qid = f"4AS{s.qid:0>11}"
    if s.tls != "none":
        out.add(ms(s.ts, -0.2), f"{tag} STARTTLS=server, relay={_relay(s)}, "
                                f"version={OPENSSL_LABEL[s.tls]}, verify=NO, "
                                f"cipher={OPENSSL_CIPHER[s.tls]}, bits=256/256")
    prefix = f"{qid}: " if s.pid % 2 else ""  # with and without the queue id
    out.add(ms(s.ts, -0.1), f"{tag} {prefix}AUTH=server, relay={_relay(s)}, authid={s.sender}, "
                            f"mech={s.mechanism}, bits=0")
    proto = "ESMTPSA" if s.tls != "none" else "ESMTPA"
    out.add(s.ts, f"{tag} {qid}: from=<{s.sender}>, size={s.size}, class=0, "
                  f"nrcpts={s.recipients}, msgid=<{qid}@client>, bodytype=8BITMIME, "
                  f"proto={proto}, daemon=MSA, relay={_relay(s)}")
    out.add(ms(s.ts, 0.5), f"{tag} {qid}: to=<r@remote.example>, delay=00:00:01, mailer=esmtp, "
                           f"pri=120000, relay=mx.remote.example. [203.0.113.5], stat=Sent")
    out.truth.append(truth(
        "sendmail", "submission", s.ts, s.server, sender=s.sender, envelope_from=s.sender,
        auth_mechanism=s.mechanism, client_ip=s.ip, client_host=s.host,
        tls_version=s.tls, tls_cipher=OPENSSL_CIPHER.get(s.tls), message_id=qid,
        recipients=s.recipients, size=s.size))
    return out


def failure(f: Failure) -> Rendered:
    out = Rendered()
    user = f"user={f.username}, " if f.username else ""
    out.add(f.ts, f"{f.server} sm-mta[{f.pid}]: AUTH failure ({f.mechanism}): authentication "
                  f"failure (-13) SASL(-13): authentication failure: checkpass failed, "
                  f"{user}relay={_relay(f)}")
    out.truth.append(truth("sendmail", "auth_failure", f.ts, f.server, sender=f.username,
                           auth_mechanism=f.mechanism, client_ip=f.ip))
    return out


def noise(s: Submission) -> Rendered:
    out = Rendered()
    tag = f"{s.server} sm-mta[{s.pid}]:"
    qid = f"4AT{s.qid:0>11}"
    out.add(s.ts, f"{tag} {qid}: from=<news@remote.example>, size=5120, class=0, nrcpts=1, "
                  f"msgid=<n@remote>, proto=ESMTP, daemon=MTA, relay=mx.remote.example "
                  f"[192.0.2.9]")
    out.add(ms(s.ts, 0.1), f"{tag} {qid}: to=<{s.sender}>, delay=00:00:00, mailer=local, "
                           f"stat=Sent")
    return out
