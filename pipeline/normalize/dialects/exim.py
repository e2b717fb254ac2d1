"""Exim main log: every event stands on one line.

    2026-11-28 10:00:00 1tQz8X-0001Ab-Cd <= alice@example.com H=(laptop) [192.0.2.7]:54321
        P=esmtpsa X=TLS1.3:TLS_AES_256_GCM_SHA384:256 CV=no A=dovecot_plain:alice@example.com
        S=2345 id=abc@laptop
    2026-11-28 10:00:05 dovecot_login authenticator failed for (pc) [203.0.113.9]:50412:
        535 Incorrect authentication data (set_id=bob@example.com)

Read from the log file (own timestamp, local time unless `+tz` is logged; the server comes
from the Kafka key or the envelope) or through syslog (`exim[pid]:` without the timestamp).
`P=esmtpa`/`esmtpsa` (also `utf8…`) marks an authenticated submission; `A=authenticator:id`
names the account; a bare `A=authenticator` (no server_set_id) leaves the sender unknown.
`X=` is OpenSSL (`TLS1.3:TLS_AES…`), GnuTLS (`TLS1.2:ECDHE_RSA_AES_256_GCM_SHA384`) or the
old `TLSv1:AES256-SHA`; an authenticated message without `X=` came in plaintext.

The client writes the envelope sender, the HELO, the ident (`U=`), the set_id and the
recipients: the client address is only the `[ip]` Exim writes after the host part, a mechanism
only a SASL name inside the authenticator's instance name (`dovecot_login`; never `au1`,
`spa`), and a line whose fields are ambiguous is a dead letter. Failures answered 435 (the
server could not check) or 501 (cancelled), client-side failures of deliveries and local
`-bs` sessions give no event (tests/realworld/RULES.md).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo

from pipeline.ingest.syslog import SyslogLine
from pipeline.normalize.dialects.base import Invalid, NormalizeConfig, StatelessDialect
from pipeline.normalize.dialects.common import (
    canonical_ip,
    canonical_tls,
    envelope_address,
    event_id,
    failure_id,
    mechanism_of_instance,
    sender_identity,
)
from schemas.event import AuthEvent

NAME = "exim"

_FILE_LINE = re.compile(
    r"(?P<stamp>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)(?:\.(?P<ms>\d{3}))?(?: (?P<tz>[+-]\d{4}))?"
    r"(?: \[(?P<pid>\d{1,10})\])? (?P<msg>.+)$", re.DOTALL)
_MSGID = r"[0-9A-Za-z]{6}-[0-9A-Za-z]{6,11}-[0-9A-Za-z]{2,4}"
# The envelope sender is the client's text: a quoted local part may hold spaces and fake
# fields (` P=esmtpa A=…`), so it is consumed whole before any field is looked for.
_ARRIVAL = re.compile(
    rf"(?P<id>{_MSGID}) <= (?P<from>\"(?:[^\"\\]|\\.)*\"(?:@\S*)?|\S+)(?P<rest>.*)$", re.DOTALL)
# The host part Exim writes: `H=name (helo) [ip]:port`. The HELO is the client's text: it
# ends at the first `)` (a HELO holding parentheses does not match: a dead letter).
_HOST = re.compile(
    r" H=(?:(?P<host>[^\s(\[]+) )?(?:\((?P<helo>[^()]*)\) )?\[(?P<ip>[0-9A-Fa-f:.]+)\]"
    r"(?::\d+)?\*?")
# After the host part, fields are `KEY=value` with quoted values (DN="…", T="…") kept whole.
_FIELD = re.compile(r" (?P<key>[A-Za-z0-9]+)=(?P<value>\"(?:[^\"\\]|\\.)*\"|\S*)")
_FOR = re.compile(r" for (?P<rcpts>[^=]+)$")
_ONCE = frozenset({"P", "X", "A"})
_AUTH_PROTO = re.compile(r" P=\S*a(?:\s|$)")
_FAILED = re.compile(
    r"\s*(?:#011)?(?P<auth>\S+) authenticator failed for (?:H=)?"
    r"(?:(?P<host>[^\s(\[]+) )?(?:\((?P<helo>[^()\s]*)\) )?\[(?P<ip>[0-9A-Fa-f:.]+)\]"
    r"(?::\d+)?(?: I=\[[0-9A-Fa-f:.]+\](?::\d+)?)?(?: U=\S*)?: (?P<reply>.*)$", re.DOTALL)
_LOCAL_FAILED = re.compile(r"\s*\S+ authenticator failed for [^\s\[(]+: ")
# Delivery-time lines start with the message id: this MTA authenticating to a smarthost
# (also through an event_action custom message).
_CLIENT_SIDE = re.compile(rf"{_MSGID} .*?authenticator (?:failed|cancelled authentication) H=")
_SET_ID = re.compile(r"\(set_id=(?P<user>.*)\)\s*$", re.DOTALL)


def claims(program: str) -> bool:
    return program.startswith("exim")


def headerless(text: str, host: str | None, zone: tzinfo) -> SyslogLine | None:
    """A line of Exim's own mainlog; local time unless the line carries its offset."""
    match = _FILE_LINE.match(text)
    if match is None:
        return None
    try:
        ts = datetime.strptime(match["stamp"], "%Y-%m-%d %H:%M:%S")  # noqa: DTZ007 - zone below
    except ValueError:
        return None
    if match["ms"]:
        ts = ts.replace(microsecond=int(match["ms"]) * 1000)
    try:
        if match["tz"]:
            sign = -1 if match["tz"][0] == "-" else 1
            offset = timedelta(hours=int(match["tz"][1:3]), minutes=int(match["tz"][3:5]))
            aware = ts.replace(tzinfo=timezone(sign * offset))
        else:
            aware = ts.replace(tzinfo=zone)
        utc = aware.astimezone(UTC)
    except (ValueError, OverflowError):  # an offset of a day or more; beyond 1-9999 in UTC
        return None
    pid = int(match["pid"]) if match["pid"] else None
    return SyslogLine(utc, host or "unknown", NAME, pid, match["msg"])


def parse(line: SyslogLine, config: NormalizeConfig) -> list[AuthEvent] | Invalid | None:
    message = line.message
    if message[:2].isdigit() and (own := _FILE_LINE.match(message)) is not None:
        # Through syslog with Exim's own stamp kept in the message: the syslog one stands.
        message = own["msg"]
        line = line._replace(message=message)
    if " <= " in message:
        return _arrival(line, config)
    if "authenticator failed" in message:
        return _failure(line, config)
    return None


def _fields(text: str) -> dict[str, str] | None:
    """The first value of each key, quoted values whole (their contents are not fields);
    None when P=, X= or A= is there twice: the client wrote one (an ident, a recipient)."""
    out: dict[str, str] = {}
    for match in _FIELD.finditer(text):
        key = match["key"]
        if key in out and key in _ONCE:
            return None
        out.setdefault(key, match["value"])
    return out


def _arrival(line: SyslogLine, config: NormalizeConfig) -> list[AuthEvent] | Invalid | None:
    match = _ARRIVAL.match(line.message)
    if match is None:
        return None  # `<=` in some other context (e.g. a rejected SMTP command)
    rest = match["rest"]
    host = _HOST.search(rest)
    claims_auth = _AUTH_PROTO.search(rest) is not None
    if host is None and " H=" in rest:
        return Invalid("exim_host_unparsed", "H= host part in an unknown form") if (
            claims_auth) else None
    # Fields come after the host part (the HELO inside it is the client's text).
    fields = _fields(rest[host.end():] if host else rest)
    if fields is None:  # a copy is the client's: dead only if one claims authentication
        return Invalid("exim_ambiguous_fields", "P=, X= or A= logged twice") if (
            claims_auth) else None
    proto = fields.get("P", "")
    if not proto.endswith("a") or proto.startswith("local"):
        return None  # not authenticated; or a local process (`-bs`), not the network
    auth = fields.get("A")
    if not auth:
        return Invalid("exim_no_authenticator", f"P={proto} without A=")
    authenticator, _, user = auth.partition(":")
    tls = fields.get("X", "").split(":")
    size = fields.get("S", "")
    rcpts = _FOR.search(rest)
    sender, domain = sender_identity(user or None, config.default_domain)
    return [AuthEvent(
        event_id=event_id(NAME, line.host, match["id"]),
        kind="submission",
        ts=line.ts,
        server=line.host,
        source=NAME,
        sender=sender,
        sender_domain=domain,
        envelope_from=envelope_address(match["from"]) if match["from"] != "<>" else None,
        auth_mechanism=mechanism_of_instance(authenticator),
        client_ip=canonical_ip(host["ip"]) if host else None,
        client_host=host["host"] if host else None,
        tls_version=canonical_tls(tls[0]) if len(tls) > 1 else "none",
        tls_cipher=tls[1] if len(tls) > 1 else None,
        message_id=match["id"],
        recipients=len(rcpts["rcpts"].split()) if rcpts else None,
        size=int(size) if size.isdigit() and len(size) <= 20 else None,
    )]


def _failure(line: SyslogLine, config: NormalizeConfig) -> list[AuthEvent] | Invalid | None:
    message = line.message
    match = _FAILED.match(message)
    if match is None:
        if _CLIENT_SIDE.match(message) or _LOCAL_FAILED.match(message):
            return None  # this MTA as a client of a smarthost; a local `-bs` caller
        return Invalid("exim_auth_failure_unparsed", "authenticator failed line in unknown form")
    reply = match["reply"]
    if not reply[:3].isdigit() or (not reply.startswith("535") and ": 535 " in reply):
        # The ident before the reply is the client's text: where the reply starts is unclear.
        return Invalid("exim_auth_failure_ambiguous", "reply position unclear after U=")
    if not reply.startswith("535"):
        return None  # 435: the server could not check; 501: cancelled or malformed
    set_id = _SET_ID.search(reply)
    sender, domain = sender_identity(set_id["user"] if set_id else None, config.default_domain)
    return [AuthEvent(
        event_id=failure_id(NAME, line),
        kind="auth_failure",
        ts=line.ts,
        server=line.host,
        source=NAME,
        sender=sender,
        sender_domain=domain,
        auth_mechanism=mechanism_of_instance(match["auth"]),
        client_ip=canonical_ip(match["ip"]),
        client_host=match["host"],
        tls_version="unknown",
    )]


class Exim(StatelessDialect):
    name = NAME
    markers = (" <= ", "authenticator failed")
    prefixes = ("exim",)
    parse = staticmethod(parse)
    headerless = staticmethod(headerless)  # Exim's mainlog has no syslog header
