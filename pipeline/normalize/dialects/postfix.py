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
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from pipeline.ingest.syslog import SyslogLine
from pipeline.normalize.correlate import Holds, Pending
from pipeline.normalize.dialects.base import Dialect, Invalid, NormalizeConfig, Step, Token
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

NAME = "postfix"
MAX_SUMMARY_FAILURES = 1000  # a summary claiming more is not believable (and not a loop bound)
# A line without any of these is never about submission (checked before any parsing). A
# `client=` line without `sasl_username=` is relayed or local mail: skipped here already.
MARKERS = ("TLS connection established", "sasl_username=", "from=<", "disconnect from",
           "authentication failed")

_QID = r"(?P<qid>[0-9A-Za-z]{5,20})"
# The client (`host[ip]:`) is matched greedily: a lazy `\S+?:?` costs 2.5 times as much.
_TLS = re.compile(
    r"(?:Anonymous|Untrusted|Trusted|Verified) TLS connection established from \S+"
    r" (?P<ver>\S+) with cipher (?P<cipher>\S+)"
)
_CLIENT = re.compile(_QID + r": client=(?P<client>[^,\s]+)(?P<rest>(?:, \w+=.*)?)$", re.DOTALL)
# Numbers from logs have a bounded number of digits: int() refuses more than 4,300.
_QMGR = re.compile(_QID + r": from=<(?P<from>[^>]*)>, size=(?P<size>\d{1,20}), "
                   r"nrcpt=(?P<nrcpt>\d{1,20})(?!\d)")
_DISCONNECT = re.compile(r"disconnect from (?P<client>\S+)")
_AUTH_SUMMARY = re.compile(r" auth=(?P<ok>\d{1,20})/(?P<tried>\d{1,20})(?!\d)")
# Postfix appends `, sasl_username=NAME` last: NAME (spaces, commas and all) runs to the end.
_SASL_FAIL = re.compile(
    r"warning: (?:(?P<client>\S+?): )?SASL (?P<mech>[\w-]+) authentication failed"
    r"(?P<reason>:[^,]*)?(?:, sasl_username=(?P<user>.*?))?\s*$", re.DOTALL
)
_TEMPORARY = "Connection lost to authentication server"  # the server could not check


# ---- line grammar (pure) ------------------------------------------------------------------
# Fragments are named tuples: one is built for every relevant line, and tuples are cheap.

class Tls(NamedTuple):
    version: str
    cipher: str


class Client(NamedTuple):
    qid: str
    client_host: str | None
    client_ip: str | None
    method: str | None
    username: str | None
    reinjected: bool = False


class Queued(NamedTuple):
    qid: str
    envelope_from: str | None
    size: int
    recipients: int


class Disconnect(NamedTuple):
    client: str | None = None  # `host[ip]` as logged: parsed only for the rare failure events
    auth_failed: int = 0  # from the 3.x summary `auth=N/M`: M - N


class AuthFailed(NamedTuple):
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
        qid, sender, size, recipients = match.groups()
        return Queued(qid, envelope_address(sender), int(size), int(recipients))
    return None


def _parse_smtpd(message: str) -> Fragment | None:
    # The cheapest test first: every connection ends with a disconnect line.
    if message.startswith("disconnect from "):
        match = _DISCONNECT.match(message)
        auth = _AUTH_SUMMARY.search(message) if " auth=" in message else None
        failed = int(auth["tried"]) - int(auth["ok"]) if auth else 0
        return Disconnect(match[1] if match else None, min(max(failed, 0), MAX_SUMMARY_FAILURES))
    if "TLS connection established" in message:
        match = _TLS.match(message)
        if match is None:
            return Invalid("postfix_tls_unparsed", "TLS line in an unknown format")
        # The client is not parsed: the client= line names it for the events.
        return Tls(canonical_tls(match["ver"]), match["cipher"])
    if ": client=" in message:
        match = _CLIENT.match(message)
        if match is None:
            return Invalid("postfix_client_unparsed", "client= line in an unknown format")
        qid, client, fields = match.groups()
        host, ip = host_and_ip(client)
        username = _username(fields)
        # A re-injection names its origin; text inside a user name is not that.
        before = fields if username is None else fields[:fields.find(", sasl_username=")]
        return Client(qid, host, ip, _field(before, ", sasl_method="), username,
                      ", orig_client=" in before or ", orig_queue_id=" in before)
    if "authentication failed" in message:
        match = _SASL_FAIL.match(message)
        if match is None:
            return Invalid("postfix_sasl_unparsed", "SASL failure line in an unknown format")
        if _TEMPORARY in (match["reason"] or ""):
            return None
        host, ip = host_and_ip(match["client"] or "")
        return AuthFailed(host, ip, match["mech"].upper(), match["user"] or None)
    return None


def _username(fields: str) -> str | None:
    """`, sasl_username=NAME`: the client's text, spaces and commas and all, from the first
    one Postfix writes to the end (or to a final `, sasl_sender=`, which Postfix writes
    after it and which holds no `, `)."""
    at = fields.find(", sasl_username=")
    if at < 0:
        return None
    name = fields[at + 16:]
    sender_at = name.rfind(", sasl_sender=")
    if sender_at >= 0 and ", " not in name[sender_at + 2:]:
        name = name[:sender_at]
    return name or None


def _field(fields: str, key: str) -> str | None:
    """The value of the last `, name=value` in `fields`, which hold only what Postfix wrote
    before the client's user name (a value has no comma)."""
    at = fields.rfind(key)
    if at < 0:
        return None
    return fields[at + len(key):].partition(",")[0]


# ---- correlation (per server) --------------------------------------------------------------

@dataclass(slots=True)
class _Connection:
    tls: Tls | None = None
    failures_logged: int = 0


class _Submission(NamedTuple):
    client: Client
    tls: Tls | None


class PostfixSessions:
    def __init__(self, server: str, config: NormalizeConfig) -> None:
        self.server = server
        self.config = config
        self._timeout = timedelta(seconds=config.session_timeout_seconds)
        holds = Holds()
        self._connections: Pending[int | None, _Connection] = Pending(holds)
        self._submissions: Pending[str, _Submission] = Pending(holds)

    def pending(self) -> int:
        return len(self._connections.entries) + len(self._submissions.entries)

    def oldest(self) -> datetime | None:
        starts = [t for t in (self._connections.oldest(), self._submissions.oldest())
                  if t is not None]
        return min(starts, default=None)

    def feed(self, line: SyslogLine, token: Token) -> Step:
        fragment = parse(line.program, line.message)
        step = Step([], [], [])  # positional: no field factories on the hot path
        # Commonest first.
        if fragment is None:
            step.skipped = True
            step.released.append(token)
        elif isinstance(fragment, Queued):
            self._complete(fragment, token, step)
        elif isinstance(fragment, Disconnect):
            self._disconnect(line, fragment, token, step)
        elif isinstance(fragment, Client):
            self._submit(line, fragment, token, step)
        elif isinstance(fragment, Tls):
            step.released += self._connections.open(line.pid, _Connection(fragment), line.ts,
                                                    [token])
        elif isinstance(fragment, Invalid):
            step.invalid.append(fragment)
            step.released.append(token)
        else:
            step.events.append(self._failure(line, fragment.client_host, fragment.client_ip,
                                             fragment.mechanism, fragment.username))
            # Held until the disconnect summary, which must not count this failure again.
            if not self._connections.attach(line.pid, token):
                self._connections.open(line.pid, _Connection(), line.ts, [token])
            connection = self._connections.get(line.pid)
            assert connection is not None
            connection.value.failures_logged += 1
        return step

    def _submit(self, line: SyslogLine, client: Client, token: Token, step: Step) -> None:
        if not client.username or client.reinjected:
            # Not an authenticated submission: a relay, local mail, or a content filter
            # re-injecting a message already counted when it first arrived.
            step.skipped = True
            step.released.append(token)
            return
        connection = self._connections.get(line.pid)
        tokens = [token] + (connection.tokens if connection else [])
        tls = connection.value.tls if connection else None
        if client.qid == "NOQUEUE":
            # A before-queue filter: the message has no queue id of its own (its re-injection
            # is skipped), so each such record is its own submission, ended by the timeout.
            client = client._replace(qid=f"NOQUEUE:{line.pid}:{line.seq}:{line.ts.isoformat()}")
        step.released += self._submissions.open(client.qid, _Submission(client, tls), line.ts,
                                                tokens)

    def _complete(self, queued: Queued, token: Token, step: Step) -> None:
        entry, released = self._submissions.close(queued.qid)
        step.released.append(token)
        if entry is None:
            step.skipped = True  # unauthenticated message, or its client= line timed out
            return
        step.events.append(self._event(entry.value, entry.started, queued))
        step.released += released

    def _disconnect(self, line: SyslogLine, summary: Disconnect, token: Token,
                    step: Step) -> None:
        entry, released = self._connections.close(line.pid)
        step.released += [token, *released]
        logged = entry.value.failures_logged if entry else 0
        # Postfix 3.x `auth=N/M`: M-N attempts failed. Count those no warning line reported,
        # with the TLS version the connection's own TLS line logged.
        unreported = summary.auth_failed - logged
        if unreported > 0:
            host, ip = host_and_ip(summary.client or "")
            tls = entry.value.tls if entry else None
            for n in range(unreported):
                step.events.append(self._failure(line, host, ip, None, None, n, tls))

    def _event(self, sub: _Submission, ts: datetime, queued: Queued | None) -> AuthEvent:
        sender, domain = sender_identity(sub.client.username, self.config.default_domain)
        tls = sub.tls
        return AuthEvent(
            event_id=event_id(NAME, self.server, sub.client.qid, ts.isoformat()),
            kind="submission",
            ts=ts,
            server=self.server,
            source=NAME,
            sender=sender,
            sender_domain=domain,
            envelope_from=queued.envelope_from if queued else None,
            auth_mechanism=mechanism_of(sub.client.method),
            client_ip=sub.client.client_ip,
            client_host=sub.client.client_host,
            tls_version=tls.version if tls else "unknown",
            tls_cipher=tls.cipher if tls else None,
            message_id=None if sub.client.qid.startswith("NOQUEUE") else sub.client.qid,
            recipients=queued.recipients if queued else None,
            size=queued.size if queued else None,
        )

    def _failure(self, line: SyslogLine, host: str | None, ip: str | None,
                 mechanism: str | None, username: str | None, n: int = 0,
                 tls: Tls | None = None) -> AuthEvent:
        sender, domain = sender_identity(username, self.config.default_domain)
        connection = self._connections.get(line.pid)
        if tls is None and connection is not None:
            tls = connection.value.tls
        return AuthEvent(
            event_id=event_id(failure_id(NAME, line), n),
            kind="auth_failure",
            ts=line.ts,
            server=self.server,
            source=NAME,
            sender=sender,
            sender_domain=domain,
            auth_mechanism=mechanism,
            client_ip=ip,
            client_host=host,
            tls_version=tls.version if tls else "unknown",
        )

    def expire(self, now: datetime) -> Step:
        step = Step()
        horizon = now - self._timeout
        limit = self.config.max_pending_sessions
        for entry, released in self._submissions.expire(horizon, limit):
            step.events.append(self._event(entry.value, entry.started, None))
            step.released += released
        step.released += self._connections.drop_expired(horizon, limit)
        return step


class Postfix(Dialect):
    name = NAME
    markers = MARKERS
    prefixes = ("postfix",)  # postfix/smtpd, postfix/submission/smtpd, postfix-in/qmgr, …

    def sessions(self, server: str, config: NormalizeConfig) -> PostfixSessions:
        return PostfixSessions(server, config)
