"""Dovecot submission service: one line per login, one per failed login burst.

    dovecot: submission-login: Login: user=<alice@example.com>, method=PLAIN, rip=192.0.2.7,
        lip=10.0.0.5, mpid=1234, TLS, session=<AbCdEf>
    dovecot: submission-login: Disconnected (auth failed, 3 attempts in 12 secs):
        user=<bob@example.com>, method=LOGIN, rip=203.0.113.9, lip=10.0.0.5, TLS, session=<x>

Dovecot logs a login, not each message it relays, so one login is one `submission` event
(message id: the session id; size and recipients unknown). `TLS` without a version gives
`unknown` (add `%{ssl_protocol}` to login_log_format_elements to get it); no `TLS` means
plaintext. IMAP/POP3 logins are not SMTP and are skipped.

A failed login is read from Dovecot's own words before the fields, whatever the wording
(`Disconnected`, `Client has quit the connection`, `Remote closed connection`, `Aborted
login by logging out`, ... `(auth failed, N attempts ...)`); a wording that mentions auth but
no known outcome is a dead letter. The user name is the client's text: rip= and method= are
the last ones on the line, and a `user=<name` Dovecot cut short keeps its event.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from pipeline.ingest.syslog import SyslogLine
from pipeline.normalize.dialects.base import Invalid, NormalizeConfig, StatelessDialect
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
# Dovecot's own words end at the first `: user=` (or `: method=`/`: rip=` without a user);
# what follows holds the client's user name, so nothing after it is read as wording.
_FIELDS_START = re.compile(r": (?=(?:user|method|rip)=)")
_FAILED = re.compile(r"\(auth failed(?:, (?P<n>\d{1,20}) attempts?)?")  # int(): ≤ 20 digits
_VERSION = re.compile(r"\b(TLSv1(?:\.\d)?|SSLv3)\b")
# Dovecot's words for a session that ended without a rejected password (no event).
_NO_ATTEMPT = re.compile(
    r"no auth attempts|(?:disallowed|disabled) \S+ auth|didn't finish \S+ auth|"
    r"before auth was ready|internal failure|proxy dest auth|auth aborted|auth unavailable")
_RIP = re.compile(r"(?:^|, )rip=(?P<ip>[^,\s]*)")


class _Fields(NamedTuple):
    user: str | None
    method: str | None
    rip: str | None
    session: str | None
    tail: str  # what Dovecot writes after rip= (lip, mpid, TLS, session)


def _fields(text: str) -> _Fields | None:
    """The user name is the client's text and may hold `, rip=…`, `>, method=…`: the rip=
    Dovecot writes is the last one, method= the last before it, the user all before that (a
    `<name` Dovecot truncated without `>` is kept as far as it goes)."""
    rips = list(_RIP.finditer(text))
    if not rips:
        return None
    rip = rips[-1]
    head, tail = text[:rip.start()], text[rip.end():]
    method = None
    at = head.rfind(", method=")
    if at >= 0 or head.startswith("method="):
        method = head[at + 9:] if at >= 0 else head[7:]
        head = head[:at] if at >= 0 else ""
    user = None
    if head.startswith("user="):
        user = head[5:]
        if user.startswith("<"):
            user = user[1:-1] if user.endswith(">") else user[1:]
    session = re.search(r"session=<([^>]*)>", tail)
    return _Fields(user or None, method, rip["ip"], session[1] if session else None, tail)


def parse(line: SyslogLine, config: NormalizeConfig) -> list[AuthEvent] | Invalid | None:
    message = line.message
    if not message.startswith("submission-login: "):
        return None
    body = message[18:]
    if body.startswith("Info: "):
        body = body[6:]
    start = _FIELDS_START.search(body)
    if start is None:
        return None  # connection notes without fields
    why, fields = body[:start.start()], _fields(body[start.end():])
    login = why == "Login"
    failed = _FAILED.search(why)
    if not login and failed is None:
        if "auth" in why and not _NO_ATTEMPT.search(why):
            return Invalid("dovecot_auth_unrecognized", "submission-login auth wording unknown")
        return None  # no auth attempts, disallowed plaintext auth, proxy notes, ...
    if fields is None:
        return Invalid("dovecot_no_rip", "submission-login line without rip=")
    sender, domain = sender_identity(fields.user, config.default_domain)
    version = _VERSION.search(fields.tail)
    tls = canonical_tls(version[1]) if version else (
        "unknown" if re.search(r"(?:^|, )TLS\b", fields.tail) else "none")
    common = {
        "ts": line.ts, "server": line.host, "source": NAME, "sender": sender,
        "sender_domain": domain, "auth_mechanism": mechanism_of(fields.method),
        "client_ip": canonical_ip(fields.rip), "tls_version": tls,
    }
    if login:
        return [AuthEvent(event_id=event_id(NAME, line.host, fields.session,
                                            line.ts.isoformat()),
                          kind="submission", message_id=fields.session, **common)]
    assert failed is not None
    base = failure_id(NAME, line)
    count = int(failed["n"]) if failed["n"] else 1
    return [AuthEvent(event_id=event_id(base, n), kind="auth_failure", **common)
            for n in range(min(count, 1000))]


class Dovecot(StatelessDialect):
    name = NAME
    markers = ("submission-login",)
    programs = ("dovecot",)
    prefixes = ("dovecot/",)
    parse = staticmethod(parse)
