"""Postfix: one submission is spread over several lines of one server.

    smtpd[pid]  Anonymous TLS connection established from host[ip]: TLSv1.2 with cipher X ...
    smtpd[pid]  QID: client=host[ip], sasl_method=PLAIN, sasl_username=alice@example.com
    qmgr        QID: from=<alice@example.com>, size=1234, nrcpt=2 (queue active)
    smtpd[pid]  disconnect from host[ip] ehlo=1 auth=1 mail=1 rcpt=1 data=1 quit=1 commands=6
    smtpd[pid]  warning: host[ip]: SASL LOGIN authentication failed: UGFzc3dvcmQ6

The TLS line belongs to the smtpd process (pid) and holds for every message of that
connection; the `client=` line ties the pid to a queue id; qmgr's `from=` line completes it.
A session whose qmgr line never comes is emitted with what is known after the timeout.
A server without TLS logging (smtpd_tls_loglevel=0) yields tls_version `unknown`.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pipeline.correlate import Holds
from pipeline.dialects.base import Invalid, NormalizeConfig, Step, Token
from pipeline.dialects.common import (
    canonical_tls,
    envelope_address,
    event_id,
    host_and_ip,
    sender_identity,
)
from pipeline.syslog import SyslogLine
from schemas.event import AuthEvent

NAME = "postfix"

_QID = r"(?P<qid>[0-9A-Za-z]{5,20})"
_TLS = re.compile(
    r"(?:Anonymous|Untrusted|Trusted|Verified) TLS connection established from (?P<client>\S+?):?"
    r" (?P<ver>\S+) with cipher (?P<cipher>\S+)"
)
_CLIENT = re.compile(_QID + r": client=(?P<client>[^,\s]+)(?P<rest>(?:, \w+=[^,]*)*)$")
_QMGR = re.compile(_QID + r": from=<(?P<from>[^>]*)>, size=(?P<size>\d+), nrcpt=(?P<nrcpt>\d+)")
_DISCONNECT = re.compile(r"disconnect from (?P<client>\S+)")
_SASL_FAIL = re.compile(
    r"warning: (?P<client>\S+?): SASL (?P<mech>[\w-]+) authentication failed"
    r"(?::[^,]*)?(?:, sasl_username=(?P<user>\S+))?\s*$"
)


# ---- line grammar (pure) ------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Tls:
    client_host: str | None
    client_ip: str | None
    version: str
    cipher: str


@dataclass(frozen=True, slots=True)
class Client:
    qid: str
    client_host: str | None
    client_ip: str | None
    method: str | None
    username: str | None


@dataclass(frozen=True, slots=True)
class Queued:
    qid: str
    envelope_from: str | None
    size: int
    recipients: int


@dataclass(frozen=True, slots=True)
class Disconnect:
    pass


@dataclass(frozen=True, slots=True)
class AuthFailed:
    client_host: str | None
    client_ip: str | None
    mechanism: str
    username: str | None


Fragment = Tls | Client | Queued | Disconnect | AuthFailed | Invalid


def claims(program: str) -> bool:
    """`postfix/smtpd`, `postfix/submission/smtpd`, `postfix-in/qmgr`, ..."""
    return program.startswith("postfix")


def parse(program: str, message: str) -> Fragment | None:
    """One Postfix message → a fragment, or None when it is not about submission."""
    service = program.rpartition("/")[2]
    if service == "smtpd":
        return _parse_smtpd(message)
    if service == "qmgr" and "from=<" in message:
        match = _QMGR.match(message)
        if match is None:
            return Invalid("postfix_qmgr_unparsed", "qmgr from= line without size/nrcpt")
        return Queued(match["qid"], envelope_address(match["from"]), int(match["size"]),
                      int(match["nrcpt"]))
    return None


def _parse_smtpd(message: str) -> Fragment | None:
    if "TLS connection established" in message:
        match = _TLS.match(message)
        if match is None:
            return Invalid("postfix_tls_unparsed", "TLS line in an unknown format")
        host, ip = host_and_ip(match["client"])
        return Tls(host, ip, canonical_tls(match["ver"]), match["cipher"])
    if ": client=" in message:
        match = _CLIENT.match(message)
        if match is None:
            return Invalid("postfix_client_unparsed", "client= line in an unknown format")
        fields = dict(part.split("=", 1) for part in match["rest"].split(", ")[1:])
        host, ip = host_and_ip(match["client"])
        return Client(match["qid"], host, ip, fields.get("sasl_method"),
                      fields.get("sasl_username"))
    if message.startswith("disconnect from "):
        return Disconnect()
    if "authentication failed" in message:
        match = _SASL_FAIL.match(message)
        if match is None:
            return Invalid("postfix_sasl_unparsed", "SASL failure line in an unknown format")
        host, ip = host_and_ip(match["client"])
        return AuthFailed(host, ip, match["mech"].upper(), match["user"])
    return None


# ---- correlation (per server) --------------------------------------------------------------

@dataclass(slots=True)
class _Connection:
    tls: Tls
    seen: datetime
    tokens: list[Token] = field(default_factory=list)


@dataclass(slots=True)
class _Submission:
    client: Client
    tls: Tls | None
    ts: datetime
    tokens: list[Token] = field(default_factory=list)


class PostfixSessions:
    def __init__(self, server: str, config: NormalizeConfig) -> None:
        self.server = server
        self.config = config
        self._timeout = timedelta(seconds=config.session_timeout_seconds)
        self._connections: OrderedDict[int | None, _Connection] = OrderedDict()
        self._submissions: OrderedDict[str, _Submission] = OrderedDict()
        self._holds = Holds()

    def pending(self) -> int:
        return len(self._connections) + len(self._submissions)

    def feed(self, line: SyslogLine, token: Token) -> Step:
        fragment = parse(line.program, line.message)
        step = Step()
        if fragment is None:
            step.skipped = True
            step.released.append(token)
        elif isinstance(fragment, Invalid):
            step.invalid.append(fragment)
            step.released.append(token)
        elif isinstance(fragment, Tls):
            self._open(line, fragment, token, step)
        elif isinstance(fragment, Client):
            self._submit(line, fragment, token, step)
        elif isinstance(fragment, Queued):
            self._complete(fragment, token, step)
        elif isinstance(fragment, Disconnect):
            connection = self._connections.pop(line.pid, None)
            tokens = [token] + (connection.tokens if connection else [])
            step.released.extend(self._holds.release(tokens))
        else:
            step.events.append(self._failure(line, fragment))
            step.released.append(token)
        step.extend(self.expire(line.ts))
        return step

    def _open(self, line: SyslogLine, tls: Tls, token: Token, step: Step) -> None:
        old = self._connections.pop(line.pid, None)  # pid reused: the old connection is over
        if old is not None:
            step.released.extend(self._holds.release(old.tokens))
        self._holds.hold([token])
        self._connections[line.pid] = _Connection(tls, line.ts, [token])

    def _submit(self, line: SyslogLine, client: Client, token: Token, step: Step) -> None:
        if not client.username:  # not an authenticated submission (relay, local, re-injection)
            step.skipped = True
            step.released.append(token)
            return
        connection = self._connections.get(line.pid)
        tokens = [token] + (connection.tokens if connection else [])
        self._holds.hold(tokens)
        previous = self._submissions.pop(client.qid, None)
        if previous is not None:  # replayed line: the newer copy supersedes
            step.released.extend(self._holds.release(previous.tokens))
        tls = connection.tls if connection else None
        self._submissions[client.qid] = _Submission(client, tls, line.ts, tokens)
        if len(self._submissions) > self.config.max_pending_sessions:
            _, oldest = self._submissions.popitem(last=False)
            self._emit(oldest, None, step)

    def _complete(self, queued: Queued, token: Token, step: Step) -> None:
        submission = self._submissions.pop(queued.qid, None)
        step.released.append(token)
        if submission is None:
            step.skipped = True  # unauthenticated message, or its client= line timed out
            return
        self._emit(submission, queued, step)

    def _emit(self, sub: _Submission, queued: Queued | None, step: Step) -> None:
        sender, domain = sender_identity(sub.client.username, self.config.default_domain)
        tls = sub.tls
        step.events.append(AuthEvent(
            event_id=event_id(NAME, self.server, sub.client.qid, sub.ts.isoformat()),
            kind="submission",
            ts=sub.ts,
            server=self.server,
            source=NAME,
            sender=sender,
            sender_domain=domain,
            envelope_from=queued.envelope_from if queued else None,
            auth_mechanism=sub.client.method,
            client_ip=sub.client.client_ip,
            client_host=sub.client.client_host,
            tls_version=tls.version if tls else "unknown",
            tls_cipher=tls.cipher if tls else None,
            message_id=sub.client.qid,
            recipients=queued.recipients if queued else None,
            size=queued.size if queued else None,
        ))
        step.released.extend(self._holds.release(sub.tokens))

    def _failure(self, line: SyslogLine, failed: AuthFailed) -> AuthEvent:
        sender, domain = sender_identity(failed.username, self.config.default_domain)
        return AuthEvent(
            event_id=event_id(NAME, self.server, line.ts.isoformat(), line.pid, line.message),
            kind="auth_failure",
            ts=line.ts,
            server=self.server,
            source=NAME,
            sender=sender,
            sender_domain=domain,
            auth_mechanism=failed.mechanism,
            client_ip=failed.client_ip,
            client_host=failed.client_host,
            tls_version=self._tls_of(line.pid),
        )

    def _tls_of(self, pid: int | None) -> str:
        connection = self._connections.get(pid)
        return connection.tls.version if connection else "unknown"

    def expire(self, now: datetime) -> Step:
        step = Step()
        horizon = now - self._timeout
        while self._submissions:
            sub = next(iter(self._submissions.values()))
            if sub.ts > horizon:
                break
            self._submissions.popitem(last=False)
            self._emit(sub, None, step)
        while self._connections:
            connection = next(iter(self._connections.values()))
            if connection.seen > horizon:
                break
            self._connections.popitem(last=False)
            step.released.extend(self._holds.release(connection.tokens))
        return step


class Postfix:
    name = NAME

    def claims(self, program: str) -> bool:
        return claims(program)

    def sessions(self, server: str, config: NormalizeConfig) -> PostfixSessions:
        return PostfixSessions(server, config)
