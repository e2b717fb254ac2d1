"""Dovecot submission service: one line per login, one per failed login burst.

    dovecot: submission-login: Login: user=<alice@example.com>, method=PLAIN, rip=192.0.2.7,
        lip=10.0.0.5, mpid=1234, TLS, session=<AbCdEf>
    dovecot: submission-login: Disconnected (auth failed, 3 attempts in 12 secs):
        user=<bob@example.com>, method=LOGIN, rip=203.0.113.9, lip=10.0.0.5, TLS, session=<x>

Dovecot logs a login, not each message it relays, so one login is one `submission` event
(message id: the session id; size and recipients unknown). `TLS` without a version gives
`unknown` (add `%{ssl_protocol}` to login_log_format_elements to get it); no `TLS` means
plaintext. IMAP/POP3 logins are not SMTP and are skipped.
"""

from __future__ import annotations

import re
from datetime import tzinfo

from pipeline.ingest.syslog import SyslogLine
from pipeline.normalize.dialects.base import Invalid, NormalizeConfig, Stateless
from pipeline.normalize.dialects.common import (
    canonical_ip,
    canonical_tls,
    event_id,
    failure_id,
    mechanism_of,
    sender_identity,
)
from schemas.event import AuthEvent

NAME = "dovecot"
_PREFIX = re.compile(r"submission-login: (?:Info: )?(?P<what>Login aborted|Login|Disconnected)"
                     r"(?P<why>.*?): (?P<fields>\w+=.*)$", re.DOTALL)
_FAILED = re.compile(r"auth failed, (?P<n>\d{1,20}) attempts?")  # int() refuses 4,300 digits
_VERSION = re.compile(r"\b(TLSv1(?:\.\d)?|SSLv3)\b")


def _fields(text: str) -> tuple[dict[str, str], set[str]]:
    values: dict[str, str] = {}
    flags: set[str] = set()
    for part in text.split(", "):
        key, sep, value = part.partition("=")
        if sep:
            values[key.strip()] = value.strip().strip("<>")
        else:
            flags.add(part.strip())
    return values, flags


def parse(line: SyslogLine, config: NormalizeConfig) -> list[AuthEvent] | Invalid | None:
    message = line.message
    if not message.startswith("submission-login: "):
        return None
    match = _PREFIX.match(message)
    if match is None:
        return None  # connection notes, "Aborted login (no auth attempts)", ...
    values, flags = _fields(match["fields"])
    if "rip" not in values:
        return Invalid("dovecot_no_rip", "submission-login line without rip=")
    sender, domain = sender_identity(values.get("user"), config.default_domain)
    version = _VERSION.search(match["fields"])
    tls = canonical_tls(version[1]) if version else (
        "unknown" if any(f.startswith("TLS") for f in flags) else "none")
    common = {
        "ts": line.ts, "server": line.host, "source": NAME, "sender": sender,
        "sender_domain": domain, "auth_mechanism": mechanism_of(values.get("method")),
        "client_ip": canonical_ip(values.get("rip")), "tls_version": tls,
    }
    if match["what"] == "Login" and not match["why"]:
        return [AuthEvent(event_id=event_id(NAME, line.host, values.get("session"),
                                            line.ts.isoformat()),
                          kind="submission", message_id=values.get("session"), **common)]
    failed = _FAILED.search(match["why"]) or _FAILED.search(match["fields"])
    if failed is None:
        return None  # disconnected without a failed login
    base = failure_id(NAME, line)
    return [AuthEvent(event_id=event_id(base, n), kind="auth_failure", **common)
            for n in range(min(int(failed["n"]), 1000))]


class Dovecot:
    name = NAME
    markers: tuple[str, ...] = ("submission-login",)

    def claims(self, program: str) -> bool:
        return program == "dovecot" or program.startswith("dovecot/")

    def headerless(self, text: str, host: str | None, zone: tzinfo) -> SyslogLine | None:
        return None

    def sessions(self, server: str, config: NormalizeConfig) -> Stateless:
        return Stateless(parse, config)
