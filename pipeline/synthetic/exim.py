"""Synthetic Exim main log lines (the log file's own format, local time = UTC here)."""

from __future__ import annotations

from pipeline.synthetic.base import OPENSSL_CIPHER, Failure, Rendered, Submission, ms, truth

GNUTLS_CIPHER = {"TLS1.3": "TLS_AES_256_GCM_SHA384", "TLS1.2": "ECDHE_RSA_AES_256_GCM_SHA384",
                 "TLS1.1": "ECDHE_RSA_AES_128_CBC_SHA1", "TLS1.0": "RSA_AES_128_CBC_SHA1"}


def _stamp(s: Submission | Failure, delay: float = 0.0) -> str:
    return ms(s.ts, delay).strftime("%Y-%m-%d %H:%M:%S")


def _msgid(s: Submission) -> str:
    # Both formats: 4.97+ (6-11-4) and the classic 6-6-2.
    base = f"{s.pid:06d}"[-6:]
    return f"1t{base[:4]}-{s.qid:0>11}-{s.pid % 10000:04d}" if s.pid % 2 else (
        f"1t{base[:4]}-{s.qid[-6:]:0>6}-{s.pid % 100:02d}")


def submission(s: Submission) -> Rendered:
    out = Rendered()
    ts = s.ts.replace(microsecond=0)
    msgid = _msgid(s)
    gnutls = s.pid % 3 == 0
    tls = ""
    cipher = None
    if s.tls != "none":
        cipher = GNUTLS_CIPHER[s.tls] if gnutls else OPENSSL_CIPHER[s.tls]
        label = s.tls if s.pid % 5 else {"TLS1.0": "TLSv1"}.get(s.tls, s.tls.replace("TLS", "TLSv"))
        tls = f" X={label}:{cipher}:256 CV=no"
    proto = "esmtpsa" if s.tls != "none" else "esmtpa"
    host = f"{s.host} " if s.host else ""
    helo = f"({s.host or 'laptop'}) "
    auth = f"{s.mechanism.lower()}_server:{s.sender}"
    out.add(ts, f"{_stamp(s)} {msgid} <= {s.sender} H={host}{helo}[{s.ip}]:{40000 + s.pid % 9999}"
                f" P={proto}{tls} A={auth} S={s.size} id={s.qid}@client"
                f" for {' '.join(f'r{i}@remote.example' for i in range(s.recipients))}", False)
    out.add(ms(ts, 1), f"{_stamp(s, 1)} {msgid} => r0@remote.example R=dnslookup T=remote_smtp "
                       f"H=mx.remote.example [203.0.113.5]", False)
    out.add(ms(ts, 1), f"{_stamp(s, 1)} {msgid} Completed", False)
    out.truth.append(truth(
        "exim", "submission", ts, s.server, sender=s.sender, envelope_from=s.sender,
        auth_mechanism=s.mechanism, client_ip=s.ip, client_host=s.host, tls_version=s.tls,
        tls_cipher=cipher, message_id=msgid, recipients=s.recipients, size=s.size))
    return out


def failure(f: Failure) -> Rendered:
    out = Rendered()
    ts = f.ts.replace(microsecond=0)
    set_id = f" (set_id={f.username})" if f.username else ""
    out.add(ts, f"{_stamp(f)} {f.mechanism.lower()}_server authenticator failed for (pc) "
                f"[{f.ip}]:{50000 + f.pid % 9999}: 535 Incorrect authentication data{set_id}",
            False)
    out.truth.append(truth("exim", "auth_failure", ts, f.server, sender=f.username,
                           auth_mechanism=f.mechanism, client_ip=f.ip))
    return out


def noise(s: Submission) -> Rendered:
    out = Rendered()
    ts = s.ts.replace(microsecond=0)
    msgid = _msgid(s)
    out.add(ts, f"{_stamp(s)} {msgid} <= news@remote.example H=mx.remote.example "
                f"[192.0.2.9]:25 P=esmtps X=TLS1.3:TLS_AES_256_GCM_SHA384:256 S=5120 "
                f"id=n@remote", False)
    out.add(ts, f"{_stamp(s)} {msgid} => {s.sender} R=local_user T=local_delivery", False)
    out.add(ts, f"{_stamp(s)} Start queue run: pid={s.pid}", False)
    return out
