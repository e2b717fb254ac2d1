"""Synthetic Dovecot submission-login lines."""

from __future__ import annotations

from pipeline.synthetic.base import Failure, Rendered, Submission, ms, truth


def submission(s: Submission) -> Rendered:
    out = Rendered()
    secured = ", TLS" if s.tls != "none" else ""
    session = f"S{s.qid}{s.pid:X}"
    out.add(s.ts, f"{s.server} dovecot: submission-login: Login: user=<{s.sender}>, "
                  f"method={s.mechanism}, rip={s.ip}, lip=10.0.0.5, mpid={s.pid}{secured}, "
                  f"session=<{session}>")
    out.add(ms(s.ts, 0.5), f"{s.server} dovecot: submission({s.sender})<{s.pid}><{session}>: "
                           f"Disconnected: Client has quit the connection")
    out.truth.append(truth(
        "dovecot", "submission", s.ts, s.server, sender=s.sender, auth_mechanism=s.mechanism,
        client_ip=s.ip, tls_version="unknown" if s.tls != "none" else "none",
        message_id=session))
    return out


def failure(f: Failure) -> Rendered:
    out = Rendered()
    user = f"user=<{f.username}>, " if f.username else ""
    out.add(f.ts, f"{f.server} dovecot: submission-login: Disconnected (auth failed, 1 attempts "
                  f"in 2 secs): {user}method={f.mechanism}, rip={f.ip}, lip=10.0.0.5, TLS, "
                  f"session=<F{f.session}>")
    out.truth.append(truth("dovecot", "auth_failure", f.ts, f.server, sender=f.username,
                           auth_mechanism=f.mechanism, client_ip=f.ip, tls_version="unknown"))
    return out


def noise(s: Submission) -> Rendered:
    out = Rendered()
    out.add(s.ts, f"{s.server} dovecot: imap-login: Login: user=<{s.sender}>, method=PLAIN, "
                  f"rip={s.ip}, lip=10.0.0.5, mpid={s.pid}, TLS, session=<I{s.qid}>")
    out.add(ms(s.ts, 0.1), f"{s.server} dovecot: submission-login: Disconnected (no auth "
                           f"attempts in 0 secs): user=<>, rip={s.ip}, lip=10.0.0.5, TLS")
    return out
