"""Microsoft Exchange Server SMTP receive protocol log (CSV, times in UTC).

    #Fields: date-time,connector-id,session-id,sequence-number,local-endpoint,
        remote-endpoint,event,data,context
    2026-11-28T10:00:00.300Z,EX01\\Client Frontend EX01,08DD1A2B,5,10.0.0.5:587,
        192.0.2.7:51234,*,,"TLS protocol SP_PROT_TLS1_2_SERVER negotiation succeeded using
        bulk encryption algorithm CALG_AES_256 ..."
    ...,6,...,<,AUTH LOGIN,
    ...,8,...,*,CONTOSO\\alice,authenticated
    ...,10,...,<,MAIL FROM:<alice@contoso.com> SIZE=1234,
    ...,11,...,<,RCPT TO:<bob@fabrikam.com>,
    ...,13,...,>,"250 2.6.0 <id@host> [InternalId=1234, Hostname=EX01] Queued mail for delivery",
    ...,14,...,-,,Local

Lines of one session share the session-id; a message is complete at "Queued mail for
delivery", the session at the `-` event. `Inbound AUTH LOGIN failed because of LogonDenied`
records (one per attempt; their 535 reply is the same attempt) and `535` answers are failed
logins; the account is taken from the `User Name:` record that follows, or an
`authenticated` note, when Exchange logged one. The server is
the connector's host (`EX01\\Client Frontend EX01`). `#Fields` lines set the column order.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo

from pipeline.ingest.syslog import SyslogLine, parse_rfc3339
from pipeline.normalize.correlate import Holds, Pending
from pipeline.normalize.dialects.base import Dialect, Invalid, NormalizeConfig, Step, Token
from pipeline.normalize.dialects.common import (
    canonical_ip,
    envelope_address,
    event_id,
    mechanism_of,
    sender_identity,
)
from schemas.event import AuthEvent

NAME = "exchange"
PROGRAM = "MSExchangeTransport"
DEFAULT_FIELDS = ("date-time", "connector-id", "session-id", "sequence-number", "local-endpoint",
                  "remote-endpoint", "event", "data", "context")
_LINE = re.compile(r"(?:#\w[\w-]*:|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z,)")
_TLS = re.compile(r"SP_PROT_(?P<ver>TLS1(?:_\d)?|SSL3)_SERVER")
_CIPHER = re.compile(r"bulk encryption algorithm (?P<cipher>\w+)")
# The account as the client typed it (commas, spaces and all): the rest of the record.
_USER_NAME = re.compile(r"User Name: (?P<user>.+?)\s*$", re.IGNORECASE | re.DOTALL)
_DENIED = re.compile(r"Inbound AUTH (?P<mech>\S+) failed because of (?P<why>\w+)")
_SIZE = re.compile(r"SIZE=(?P<size>\d{1,20})(?!\d)", re.IGNORECASE)  # int() refuses 4,300 digits
_INTERNAL_ID = re.compile(r"InternalId=(?P<id>\d+)")
_TLS_LABEL = {"TLS1": "TLS1.0", "TLS1_0": "TLS1.0", "TLS1_1": "TLS1.1", "TLS1_2": "TLS1.2",
              "TLS1_3": "TLS1.3", "SSL3": "SSL3"}


def headerless(text: str, host: str | None, zone: tzinfo) -> SyslogLine | None:
    if _LINE.match(text) is None:
        return None
    if text.startswith("#"):
        return SyslogLine(datetime.min.replace(tzinfo=zone), host or "unknown", PROGRAM, None,
                          text)
    try:
        ts = parse_rfc3339(text[: text.index(",")], zone)
    except ValueError:
        return None
    # Keyed by the shipping host so the #Fields header and the rows share one state.
    return SyslogLine(ts, host or "unknown", PROGRAM, None, text)


@dataclass(slots=True)
class _Session:
    server: str
    client_ip: str | None = None
    tls: str = "none"  # Exchange logs every negotiation; none logged means plaintext
    cipher: str | None = None
    mechanism: str | None = None
    user: str | None = None
    authenticated: bool = False
    mail_from: str | None = None
    size: int | None = None
    recipients: int = 0
    failures: int = 0
    extra: list[str] = field(default_factory=list)
    # A `LogonDenied` record waits for the `User Name:` record Exchange writes after it.
    denied: tuple[datetime, str] | None = None  # (time, sequence number) of the attempt
    denied_seq: str | None = None  # the last attempt counted: its 535 reply is no new one
    sid: str = ""


class ExchangeSessions:
    def __init__(self, server: str, config: NormalizeConfig) -> None:
        self.server = server
        self.config = config
        self._timeout = timedelta(seconds=config.session_timeout_seconds)
        self._sessions: Pending[str, _Session] = Pending(Holds())
        self._columns: dict[str, int] = {name: i for i, name in enumerate(DEFAULT_FIELDS)}

    def pending(self) -> int:
        return len(self._sessions.entries)

    def oldest(self) -> datetime | None:
        return self._sessions.oldest()

    def feed(self, line: SyslogLine, token: Token) -> Step:
        step = Step()
        text = line.message
        if text.startswith("#"):
            if text.startswith("#Fields:"):
                names = [n.strip() for n in text[8:].split(",")]
                self._columns = {name: i for i, name in enumerate(names)}
            step.skipped = True
            step.released.append(token)
            return step
        try:
            row = next(csv.reader([text]), [])
        except csv.Error as exc:
            step.invalid.append(Invalid("exchange_bad_csv", str(exc)))
            step.released.append(token)
            return step
        try:
            session_id, event = self._col(row, "session-id"), self._col(row, "event")
            data, context = self._col(row, "data"), self._col(row, "context")
            remote = self._col(row, "remote-endpoint")
            connector = self._col(row, "connector-id")
        except (IndexError, KeyError):
            step.invalid.append(Invalid("exchange_short_row", f"{len(row)} columns"))
            step.released.append(token)
            return step
        if event == "+" or self._sessions.get(session_id) is None:
            ip = canonical_ip(remote.rpartition(":")[0].strip("[]"))
            # The connector id names the server: `EX01\Client Frontend EX01`.
            server = connector.split("\\", 1)[0] if "\\" in connector else self.server
            step.released += self._sessions.open(session_id, _Session(server, ip, sid=session_id),
                                                 line.ts, [token])
        else:
            self._sessions.attach(session_id, token)
        entry = self._sessions.get(session_id)
        assert entry is not None
        session = entry.value
        seq = row[self._columns["sequence-number"]] if "sequence-number" in self._columns \
            and self._columns["sequence-number"] < len(row) else ""
        if session.denied is not None and not (
                event == "*" and (_USER_NAME.search(context) or _DENIED.search(context))):
            self._emit_denied(session, session_id, step)
        self._apply(session, line, session_id, event, data, context, step, seq)
        if event == "-":
            self._emit_denied(session, session_id, step)
            _, released = self._sessions.close(session_id)
            step.released += released
        return step

    def _emit_denied(self, s: _Session, session_id: str, step: Step) -> None:
        if s.denied is None:
            return
        ts, seq = s.denied
        s.denied = None
        step.events.append(self._event(s, ts, session_id, "auth_failure", seq=seq))
        s.user = None

    def _col(self, row: list[str], name: str) -> str:
        return row[self._columns[name]]

    def _apply(self, s: _Session, line: SyslogLine, session_id: str, event: str, data: str,
               context: str, step: Step, seq: str = "") -> None:
        if event == "*":
            denied = _DENIED.search(context)
            if denied is not None and denied["why"] != "LogonDenied":
                step.invalid.append(Invalid("exchange_auth_unrecognized",
                                            f"AUTH failed because of {denied['why']}"))
                return
            if denied is not None:
                if seq != s.denied_seq:  # a record repeated with its sequence number is one
                    self._emit_denied(s, session_id, step)
                    s.mechanism = mechanism_of(denied["mech"])
                    s.denied, s.denied_seq, s.user = (line.ts, seq), seq, None
                return
            user = _USER_NAME.search(context)
            if user is not None and s.denied is not None:
                s.user = user["user"]
                self._emit_denied(s, session_id, step)
                return
            if context == "authenticated" and data:  # data: the account, the client's text
                s.user, s.authenticated = data, True
                return
            tls = _TLS.search(context) or _TLS.search(data)
            if tls is not None:
                s.tls = _TLS_LABEL.get(tls["ver"], "unknown")
                cipher = _CIPHER.search(context)
                s.cipher = cipher["cipher"] if cipher else None
            user = _USER_NAME.search(context)  # Exchange's own column, not the data
            if user is not None:
                s.user = user["user"]
        elif event == "<":
            upper = data.upper()
            if upper.startswith("AUTH "):
                words = data.split()
                s.mechanism = mechanism_of(words[1]) if len(words) > 1 else None
            elif upper.startswith("MAIL FROM:"):
                s.mail_from = envelope_address(data[10:].split(" ", 1)[0])
                size = _SIZE.search(data)
                s.size = int(size["size"]) if size else None
                s.recipients = 0
            elif upper.startswith("RCPT TO:"):
                s.recipients += 1
        elif event == ">":
            if data.startswith("235"):
                s.authenticated = True
            elif data.startswith("535"):
                if s.denied_seq is None:  # else the LogonDenied record counted this attempt
                    step.events.append(self._event(s, line.ts, session_id, "auth_failure"))
                s.denied_seq = None
                s.user = None
            elif data.startswith("250") and "Queued mail for delivery" in data:
                if s.authenticated:
                    step.events.append(self._event(s, line.ts, session_id, "submission", data))
                s.mail_from, s.size, s.recipients = None, None, 0

    def _event(self, s: _Session, ts: datetime, session_id: str, kind: str,
               queued: str = "", seq: str = "") -> AuthEvent:
        sender, domain = sender_identity(s.user, self.config.default_domain)
        internal = _INTERNAL_ID.search(queued)
        submission = kind == "submission"
        return AuthEvent(
            event_id=event_id(NAME, s.server, session_id, ts.isoformat(), kind, *(
                (seq,) if seq else ())),
            kind=kind,
            ts=ts,
            server=s.server,
            source=NAME,
            sender=sender,
            sender_domain=domain,
            envelope_from=s.mail_from if submission else None,
            auth_mechanism=s.mechanism,
            client_ip=s.client_ip,
            tls_version=s.tls,
            tls_cipher=s.cipher,
            message_id=internal["id"] if internal else None,
            recipients=s.recipients if submission else None,
            size=s.size if submission else None,
        )

    def expire(self, now: datetime) -> Step:
        step = Step()
        for entry, released in self._sessions.expire(now - self._timeout,
                                                     self.config.max_pending_sessions):
            self._emit_denied(entry.value, entry.value.sid, step)
            step.released += released
        return step


class Exchange(Dialect):
    name = NAME
    markers = ("Z,", "#Fields:")  # every row of a session matters
    programs = (PROGRAM,)
    headerless = staticmethod(headerless)  # the receive protocol log is CSV, no syslog

    def sessions(self, server: str, config: NormalizeConfig) -> ExchangeSessions:
        return ExchangeSessions(server, config)
