"""Sendmail (and sm-mta): one connection's lines are tied by the process id.

    sm-mta[4242]: STARTTLS=server, relay=laptop.lan [192.0.2.7], version=TLSv1.2, verify=NO,
        cipher=ECDHE-RSA-AES256-GCM-SHA384, bits=256/256
    sm-mta[4242]: 4ASA0xyz012345: AUTH=server, relay=laptop.lan [192.0.2.7],
        authid=alice@example.com, mech=PLAIN, bits=0
    sm-mta[4242]: 4ASA0xyz012345: from=<alice@example.com>, size=1234, class=0, nrcpts=2,
        msgid=<x@laptop>, proto=ESMTPSA, daemon=MSA, relay=laptop.lan [192.0.2.7]
    sm-mta[4243]: AUTH failure (LOGIN): authentication failure (-13) SASL(-13): authentication
        failure: checkpass failed, user=bob@example.com, relay=[203.0.113.9]

STARTTLS and AUTH lines come with or without a queue-id prefix (they may precede the
envelope). The `from=` line completes a message; Sendmail logs no disconnect, so a
connection's state ends with the session timeout. `proto=ESMTPA` means plaintext.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from pipeline.ingest.syslog import SyslogLine
from pipeline.normalize.correlate import Holds, Pending
from pipeline.normalize.dialects.base import Dialect, Invalid, NormalizeConfig, Step, Token
from pipeline.normalize.dialects.common import (
    canonical_ip,
    canonical_tls,
    envelope_address,
    event_id,
    failure_id,
    mechanism_of,
    sender_identity,
)
from schemas.event import AuthEvent

NAME = "sendmail"

_QID = r"(?:(?P<qid>[0-9A-Za-z]{8,20}): )?"
_RELAY = re.compile(r"relay=(?:(?P<host>[^\s,\[]+) )?\[(?:IPv6:)?(?P<ip>[0-9A-Fa-f:.]+)\]")
_STARTTLS = re.compile(_QID + r"STARTTLS=server, (?P<rest>.*)$")
_AUTH = re.compile(_QID + r"AUTH=server, (?P<rest>.*)$")
_FROM = re.compile(r"(?P<qid>[0-9A-Za-z]{8,20}): from=(?P<from><[^>]*>|\S+?), (?P<rest>.*)$")
_FAIL = re.compile(_QID + r"AUTH failure \((?P<mech>[\w-]+)\): (?P<rest>.*)$")


def _fields(text: str) -> dict[str, str]:
    """`key=value, …` → the *first* value of each key: the fields Sendmail writes before
    any client text (size, class, nrcpts before msgid=) cannot be overridden by it."""
    out: dict[str, str] = {}
    for part in text.split(", "):
        key, sep, value = part.partition("=")
        if sep:
            out.setdefault(key.strip(), value.strip())
    return out


def _last(text: str, key: str) -> tuple[int, str | None]:
    """Where the *last* `, key=` starts and its value (to the next `, ` if any): the fields
    Sendmail writes after client text (proto, daemon, relay after msgid=; relay after
    user=) are the last of their name."""
    at = text.rfind(f", {key}=")
    if at < 0:
        return -1, None
    return at, text[at + len(key) + 3:].split(", ", 1)[0]


def _failure_user(rest: str, relay_at: int) -> str | None:
    """`…, user=NAME, relay=…`: NAME runs to the final relay= and may hold `, user=` itself;
    when the SASL reason quotes the name (`user: NAME property`), that copy tells where it
    starts."""
    end = relay_at if relay_at >= 0 else len(rest)
    starts = [m.end() for m in re.finditer(r", user=", rest[:end])]
    if not starts:
        return None
    for start in starts:
        if f"user: {rest[start:end]} property" in rest[:start]:
            return rest[start:end]
    return rest[starts[0]:end]


@dataclass(frozen=True, slots=True)
class Relay:
    host: str | None
    ip: str | None


def _relay(text: str) -> Relay:
    """The relay= Sendmail writes last on the line (an earlier one is the client's text)."""
    at = text.rfind("relay=")
    match = _RELAY.match(text, at) if at >= 0 else None
    if match is None:
        return Relay(None, None)
    return Relay(match["host"], canonical_ip(match["ip"]))


@dataclass(slots=True)
class _Connection:
    tls_version: str | None = None
    tls_cipher: str | None = None
    authid: str | None = None
    mechanism: str | None = None


class SendmailSessions:
    def __init__(self, server: str, config: NormalizeConfig) -> None:
        self.server = server
        self.config = config
        self._timeout = timedelta(seconds=config.session_timeout_seconds)
        self._connections: Pending[int | None, _Connection] = Pending(Holds())

    def pending(self) -> int:
        return len(self._connections.entries)

    def oldest(self) -> datetime | None:
        return self._connections.oldest()

    def feed(self, line: SyslogLine, token: Token) -> Step:
        message = line.message
        step = Step()
        if "STARTTLS=server" in message or "AUTH=server" in message:
            self._remember(line, token, step)
        elif ": from=" in message:
            self._arrival(line, token, step)
        elif "AUTH failure" in message:
            self._failure(line, token, step)
        else:
            step.skipped = True
            step.released.append(token)
        return step

    def _connection(self, line: SyslogLine, token: Token) -> _Connection:
        if not self._connections.attach(line.pid, token):
            self._connections.open(line.pid, _Connection(), line.ts, [token])
        entry = self._connections.get(line.pid)
        assert entry is not None
        return entry.value

    def _remember(self, line: SyslogLine, token: Token, step: Step) -> None:
        tls = _STARTTLS.match(line.message)
        auth = _AUTH.match(line.message) if tls is None else None
        if tls is None and auth is None:
            step.invalid.append(Invalid("sendmail_unparsed", "STARTTLS/AUTH line in unknown form"))
            step.released.append(token)
            return
        connection = self._connection(line, token)
        if tls is not None:
            fields = _fields(tls["rest"])
            connection.tls_version = canonical_tls(fields.get("version"))
            connection.tls_cipher = fields.get("cipher")
        elif auth is not None:
            rest = auth["rest"]
            mech_at, mech = _last(rest, "mech")
            start = rest.find(", authid=")
            connection.authid = rest[start + 9:mech_at] if 0 <= start < mech_at else (
                _fields(rest).get("authid"))
            connection.mechanism = mechanism_of(mech)

    def _arrival(self, line: SyslogLine, token: Token, step: Step) -> None:
        match = _FROM.match(line.message)
        step.released.append(token)
        if match is None:
            step.invalid.append(Invalid("sendmail_from_unparsed", "from= line in unknown form"))
            return
        fields = _fields(match["rest"])
        proto = (_last(match["rest"], "proto")[1] or "").upper()
        entry = self._connections.get(line.pid)
        connection = entry.value if entry else None
        if not proto.endswith("A") and (connection is None or connection.authid is None):
            step.skipped = True  # not an authenticated submission
            return
        relay = _relay(match["rest"])
        sender, domain = sender_identity(connection.authid if connection else None,
                                         self.config.default_domain)
        if connection and connection.tls_version:
            tls = connection.tls_version
        else:
            tls = "none" if proto in ("ESMTPA", "SMTPA") else "unknown"
        try:
            size = int(fields["size"]) if "size" in fields else None
            recipients = int(fields["nrcpts"]) if "nrcpts" in fields else None
        except ValueError:
            step.invalid.append(Invalid("sendmail_from_unparsed", "non-numeric size/nrcpts"))
            return
        step.events.append(AuthEvent(
            event_id=event_id(NAME, self.server, match["qid"], line.ts.isoformat()),
            kind="submission",
            ts=line.ts,
            server=self.server,
            source=NAME,
            sender=sender,
            sender_domain=domain,
            envelope_from=envelope_address(match["from"]),
            auth_mechanism=connection.mechanism if connection else None,
            client_ip=relay.ip,
            client_host=relay.host,
            tls_version=tls,
            tls_cipher=connection.tls_cipher if connection else None,
            message_id=match["qid"],
            recipients=recipients,
            size=size,
        ))

    def _failure(self, line: SyslogLine, token: Token, step: Step) -> None:
        step.released.append(token)
        match = _FAIL.match(line.message)
        if match is None:
            step.invalid.append(Invalid("sendmail_auth_failure_unparsed",
                                        "AUTH failure line in unknown form"))
            return
        rest = match["rest"]
        relay_at = rest.rfind(", relay=")
        relay = _relay(rest)
        sender, domain = sender_identity(_failure_user(rest, relay_at),
                                         self.config.default_domain)
        entry = self._connections.get(line.pid)
        step.events.append(AuthEvent(
            event_id=failure_id(NAME, line),
            kind="auth_failure",
            ts=line.ts,
            server=self.server,
            source=NAME,
            sender=sender,
            sender_domain=domain,
            auth_mechanism=mechanism_of(match["mech"]),
            client_ip=relay.ip,
            client_host=relay.host,
            tls_version=(entry.value.tls_version if entry else None) or "unknown",
        ))

    def expire(self, now: datetime) -> Step:
        return Step(released=self._connections.drop_expired(now - self._timeout,
                                                        self.config.max_pending_sessions))


class Sendmail(Dialect):
    name = NAME
    markers = ("STARTTLS=server", "AUTH=server", ": from=", "AUTH failure")
    programs = ("sendmail",)
    prefixes = ("sm-",)  # sm-mta, sm-msp-queue, …

    def sessions(self, server: str, config: NormalizeConfig) -> SendmailSessions:
        return SendmailSessions(server, config)
