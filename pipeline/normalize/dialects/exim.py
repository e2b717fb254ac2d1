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
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo

from pipeline.ingest.syslog import SyslogLine
from pipeline.normalize.dialects.base import Invalid, NormalizeConfig, Stateless
from pipeline.normalize.dialects.common import (
    canonical_tls,
    envelope_address,
    event_id,
    failure_id,
    host_and_ip,
    mechanism_of,
    sender_identity,
)
from schemas.event import AuthEvent

NAME = "exim"

_FILE_LINE = re.compile(
    r"(?P<stamp>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)(?:\.(?P<ms>\d{3}))?(?: (?P<tz>[+-]\d{4}))?"
    r"(?: \[(?P<pid>\d{1,10})\])? (?P<msg>.+)$", re.DOTALL)
_MSGID = r"[0-9A-Za-z]{6}-[0-9A-Za-z]{6,11}-[0-9A-Za-z]{2,4}"
_ARRIVAL = re.compile(rf"(?P<id>{_MSGID}) <= (?P<from>\S+) (?P<rest>.*)$", re.DOTALL)
_PROTO = re.compile(r" P=(?P<p>\S+)")
_AUTH = re.compile(r" A=(?P<auth>[^\s:]+)(?::(?P<user>\S+))?")
_TLS = re.compile(r" X=(?P<ver>[^:\s]+):(?P<cipher>[^:\s]+)")
_SIZE = re.compile(r" S=(?P<size>\d{1,20})(?!\d)")  # int() refuses 4,300 digits
_HOST = re.compile(
    r" H=(?:(?P<host>[^\s(\[]+) )?(?:\((?P<helo>[^)]*)\) )?\[(?P<ip>[0-9A-Fa-f:.]+)\](?::\d+)?")
_FOR = re.compile(r" for (?P<rcpts>[^=]+)$")
_FAILED = re.compile(
    r"(?P<auth>\S+) authenticator failed for (?:H=)?(?P<client>.*?\[[0-9A-Fa-f:.]+\](?::\d+)?)"
    r"(?: I=\S+)?: .*?(?:\(set_id=(?P<user>[^)]*)\))?\s*$", re.DOTALL)


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
    if " <= " in message:
        return _arrival(line, config)
    if "authenticator failed" in message:
        return _failure(line, config)
    return None


def _arrival(line: SyslogLine, config: NormalizeConfig) -> list[AuthEvent] | Invalid | None:
    match = _ARRIVAL.match(line.message)
    if match is None:
        return None  # `<=` in some other context (e.g. a rejected SMTP command)
    rest = " " + match["rest"]
    proto = _PROTO.search(rest)
    if proto is None or not proto["p"].endswith("a"):
        return None  # not authenticated: inbound mail, local submission
    auth = _AUTH.search(rest)
    if auth is None:
        return Invalid("exim_no_authenticator", f"P={proto['p']} without A=")
    tls = _TLS.search(rest)
    size = _SIZE.search(rest)
    host = _HOST.search(rest)
    rcpts = _FOR.search(rest)
    sender, domain = sender_identity(auth["user"], config.default_domain)
    client_host, client_ip = (host["host"], host_and_ip(f"[{host['ip']}]")[1]) if host else (
        None, None)
    return [AuthEvent(
        event_id=event_id(NAME, line.host, match["id"]),
        kind="submission",
        ts=line.ts,
        server=line.host,
        source=NAME,
        sender=sender,
        sender_domain=domain,
        envelope_from=envelope_address(match["from"]) if match["from"] != "<>" else None,
        auth_mechanism=mechanism_of(auth["auth"]),
        client_ip=client_ip,
        client_host=client_host,
        tls_version=canonical_tls(tls["ver"]) if tls else "none",
        tls_cipher=tls["cipher"] if tls else None,
        message_id=match["id"],
        recipients=len(rcpts["rcpts"].split()) if rcpts else None,
        size=int(size["size"]) if size else None,
    )]


def _failure(line: SyslogLine, config: NormalizeConfig) -> list[AuthEvent] | Invalid:
    match = _FAILED.match(line.message)
    if match is None:
        return Invalid("exim_auth_failure_unparsed", "authenticator failed line in unknown form")
    client = match["client"]
    ip_match = re.search(r"\[([0-9A-Fa-f:.]+)\]", client)
    first = client.split(" ", 1)[0]
    host = first if first and not first.startswith(("(", "[")) else None
    sender, domain = sender_identity(match["user"], config.default_domain)
    return [AuthEvent(
        event_id=failure_id(NAME, line),
        kind="auth_failure",
        ts=line.ts,
        server=line.host,
        source=NAME,
        sender=sender,
        sender_domain=domain,
        auth_mechanism=mechanism_of(match["auth"]),
        client_ip=host_and_ip(f"[{ip_match[1]}]")[1] if ip_match else None,
        client_host=host,
        tls_version="unknown",
    )]


class Exim:
    name = NAME
    markers: tuple[str, ...] = (" <= ", "authenticator failed")

    def claims(self, program: str) -> bool:
        return claims(program)

    def headerless(self, text: str, host: str | None, zone: tzinfo) -> SyslogLine | None:
        return headerless(text, host, zone)

    def sessions(self, server: str, config: NormalizeConfig) -> Stateless:
        return Stateless(parse, config)
