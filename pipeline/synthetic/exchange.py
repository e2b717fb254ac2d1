"""Synthetic Exchange Server SMTP receive protocol log rows (CSV, UTC)."""

from __future__ import annotations

from datetime import datetime

from pipeline.synthetic.base import Failure, Rendered, Submission, iso, ms, truth

SP_PROT = {"TLS1.3": "TLS1_3", "TLS1.2": "TLS1_2", "TLS1.1": "TLS1_1", "TLS1.0": "TLS1_0"}
FIELDS = ("#Fields: date-time,connector-id,session-id,sequence-number,local-endpoint,"
          "remote-endpoint,event,data,context")


def _prefix(server: str, session: str, ip: str) -> str:
    remote = f"[{ip}]:51234" if ":" in ip else f"{ip}:51234"
    return f"{server}\\Client Frontend {server},{session},{{seq}},10.0.0.5:587,{remote}"


def _session(r: Rendered, prefix: str, items: list[tuple[float, str, str, str]],
             t0: datetime) -> None:
    for seq, (delay, event, data, context) in enumerate(items):
        ts = ms(t0, delay)
        quoted = [f'"{v}"' if "," in v else v for v in (data, context)]
        r.add(ts, f"{iso(ts)},{prefix.format(seq=seq)},{event},{quoted[0]},{quoted[1]}", False)


def submission(s: Submission) -> Rendered:
    out = Rendered()
    session = f"08DD{s.pid:08X}{s.qid[-4:]:0>4}"
    prefix = _prefix(s.server, session, s.ip)
    user = s.sender if s.pid % 2 else f"CONTOSO\\{s.sender.partition('@')[0]}"
    items: list[tuple[float, str, str, str]] = [(-0.4, "+", "", ""), (-0.39, "<", "EHLO pc", "")]
    if s.tls != "none":
        items += [(-0.38, "<", "STARTTLS", ""), (-0.37, "*", "", "Sending certificate"),
                  (-0.3, "*", "", f"TLS protocol SP_PROT_{SP_PROT[s.tls]}_SERVER negotiation "
                                  f"succeeded using bulk encryption algorithm CALG_AES_256 with "
                                  f"strength 256 bits, MAC hash algorithm CALG_SHA_384 with "
                                  f"strength 0 bits and key exchange algorithm CALG_ECDHE with "
                                  f"strength 384 bits")]
    rcpts = [(-0.1 + i * 0.001, "<", f"RCPT TO:<r{i}@remote.example>", "")
             for i in range(s.recipients)]
    items += [(-0.25, "<", f"AUTH {s.mechanism}", ""),
              (-0.2, "*", user, "authenticated"),
              (-0.19, ">", "235 2.7.0 Authentication successful", ""),
              (-0.15, "<", f"MAIL FROM:<{s.sender}> SIZE={s.size}", ""), *rcpts,
              (-0.05, "<", "DATA", ""),
              (0, ">", f"250 2.6.0 <{s.qid}@pc> [InternalId={s.pid},"
                       f" Hostname={s.server}] {s.size} bytes in 0.1, 12.3 KB/sec Queued mail for"
                       f" delivery", ""),
              (0.01, "<", "QUIT", ""), (0.02, "-", "", "Local")]
    _session(out, prefix, items, s.ts)
    sender = s.sender if "@" in user else user
    out.truth.append(truth(
        "exchange", "submission", s.ts, s.server, sender=sender,
        sender_domain=s.sender.rpartition("@")[2] if "@" in user else None,
        envelope_from=s.sender, auth_mechanism=s.mechanism, client_ip=s.ip,
        tls_version=s.tls, tls_cipher=None if s.tls == "none" else "CALG_AES_256",
        message_id=str(s.pid), recipients=s.recipients, size=s.size))
    return out


def failure(f: Failure) -> Rendered:
    out = Rendered()
    prefix = _prefix(f.server, f"08DE{f.pid:08X}0000", f.ip)
    note = f"Inbound authentication failed. User Name: {f.username}" if f.username else (
        "Inbound authentication failed with error UnknownUserName")
    _session(out, prefix, [(-0.2, "+", "", ""), (-0.1, "<", f"AUTH {f.mechanism}", ""),
                           (-0.01, "*", "", note),
                           (0, ">", "535 5.7.3 Authentication unsuccessful", ""),
                           (0.01, "-", "", "Remote")], f.ts)
    out.truth.append(truth("exchange", "auth_failure", f.ts, f.server, sender=f.username,
                           auth_mechanism=f.mechanism, client_ip=f.ip, tls_version="none"))
    return out


def noise(s: Submission) -> Rendered:
    out = Rendered()
    out.add(s.ts, FIELDS, False)
    prefix = _prefix(s.server, f"08DF{s.pid:08X}0000", "192.0.2.9")
    _session(out, prefix, [(0, "+", "", ""), (0.01, "<", "EHLO mx.remote.example", ""),
                           (0.02, "<", "MAIL FROM:<news@remote.example>", ""),
                           (0.03, ">", "250 2.6.0 <n@remote> Queued mail for delivery", ""),
                           (0.04, "-", "", "Remote")], s.ts)
    return out
