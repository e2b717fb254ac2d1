"""OpenSMTPD: lines of one SMTP session share its 16-hex-digit session id.

6.6+:
    smtpd[771]: 1a2b3c4d5e6f7a8b smtp connected address=192.0.2.7 host=laptop.lan
    smtpd[771]: 1a2b3c4d5e6f7a8b smtp tls ciphers=TLSv1.3:TLS_AES_256_GCM_SHA384:256
    smtpd[771]: 1a2b3c4d5e6f7a8b smtp authentication user=alice@example.com result=ok
    smtpd[771]: 1a2b3c4d5e6f7a8b smtp message msgid=0a1b2c3d size=1234 nrcpt=2 proto=ESMTP
    smtpd[771]: 1a2b3c4d5e6f7a8b smtp disconnected reason=quit
6.0-6.4 (`event=`, address= on every line, one message line per recipient):
    smtpd[771]: 1a2b3c4d5e6f7a8b smtp event=starttls address=192.0.2.7 host=laptop.lan
        ciphers="version=TLSv1.2, cipher=ECDHE-RSA-AES256-GCM-SHA384, bits=256"
    smtpd[771]: 1a2b3c4d5e6f7a8b smtp event=authentication user=alice address=192.0.2.7
        host=laptop.lan result=ok
    smtpd[771]: 1a2b3c4d5e6f7a8b smtp event=message address=192.0.2.7 host=laptop.lan
        msgid=0a1b2c3d from=<alice@example.com> to=<bob@example.org> size=1234 ndest=2
        proto=ESMTP

OpenSMTPD does not log the SASL mechanism. A session without a `tls` line is plaintext.
`result=permfail` is a failed login; `tempfail` (the server could not check) is none.
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
    event_id,
    failure_id,
    sender_identity,
)
from schemas.event import AuthEvent

NAME = "opensmtpd"
_LINE = re.compile(r"(?P<sid>[0-9a-f]{16}) smtp (?P<what>[\w-]+(?:=\S+)?)(?P<rest>.*)$")
_KV = re.compile(r"(\w+)=(\"[^\"]*\"|[^ ]+)")  # a TAB only as rsyslog's #011 undone
# OpenSMTPD writes the user name through strnvis(VIS_WHITE | VIS_SAFE): `\040` is a space.
_VIS = re.compile(r"\\(?:([0-3][0-7]{2})|(\\))")


def _unvis(text: str) -> str:
    return _VIS.sub(lambda m: chr(int(m[1], 8)) if m[1] else "\\", text) if "\\" in text \
        else text


@dataclass(slots=True)
class _Session:
    address: str | None = None
    host: str | None = None
    tls: str = "none"
    cipher: str | None = None
    user: str | None = None
    last_msgid: str | None = None


def _ciphers(text: str) -> tuple[str, str | None]:
    """6.6+ `TLSv1.3:TLS_AES_256_GCM_SHA384:256`; 6.0-6.4 `version=TLSv1.2, cipher=…, bits=…`."""
    if "version=" in text:
        version = re.search(r"version=([^,\s]+)", text)
        cipher = re.search(r"cipher=([^,\s]+)", text)
        return canonical_tls(version[1] if version else None), cipher[1] if cipher else None
    parts = text.split(":")
    return canonical_tls(parts[0]), parts[1] if len(parts) > 1 else None


class OpenSmtpdSessions:
    def __init__(self, server: str, config: NormalizeConfig) -> None:
        self.server = server
        self.config = config
        self._timeout = timedelta(seconds=config.session_timeout_seconds)
        self._sessions: Pending[str, _Session] = Pending(Holds())

    def pending(self) -> int:
        return len(self._sessions.entries)

    def oldest(self) -> datetime | None:
        return self._sessions.oldest()

    def feed(self, line: SyslogLine, token: Token) -> Step:
        step = Step()
        match = _LINE.match(line.message)
        if match is None:
            step.skipped = True
            step.released.append(token)
            return step
        sid, what = match["sid"], match["what"]
        # OpenSMTPD quotes some values (ciphers="…"); a user name is written as typed. The
        # first of each key is OpenSMTPD's: 6.0-6.4 write address= before the client's
        # from=<…> and to=<…>, which may hold `address=…` themselves.
        kv: dict[str, str] = {}
        for k, v in _KV.findall(match["rest"]):
            kv.setdefault(k, v[1:-1] if k != "user" and len(v) > 1 and v[0] == v[-1] == '"'
                          else v)
        if what.startswith("event="):
            what = what[6:]
        if what == "connected" or self._sessions.get(sid) is None:
            session = _Session()
            step.released += self._sessions.open(sid, session, line.ts, [token])
        else:
            self._sessions.attach(sid, token)
            entry = self._sessions.get(sid)
            assert entry is not None
            session = entry.value
        if "address" in kv:
            session.address = canonical_ip(kv["address"])
        if "host" in kv:
            session.host = kv["host"] if kv["host"] != "<unknown>" else None
        if what in ("tls", "starttls"):
            session.tls, session.cipher = _ciphers(kv.get("ciphers", ""))
        elif what == "authentication":
            self._authentication(line, session, kv, step)
        elif what == "message" and session.user is not None:
            self._message(line, sid, session, kv, step)
        elif what in ("disconnected", "closed"):
            _, released = self._sessions.close(sid)
            step.released += released
        return step

    def _authentication(self, line: SyslogLine, session: _Session, kv: dict[str, str],
                        step: Step) -> None:
        result = kv.get("result")
        user = kv.get("user")
        user = _unvis(user) if user is not None else None
        if result == "ok":
            session.user = user
        elif result == "tempfail":
            pass  # the server could not check the password: no failed login (RULES.md)
        elif result == "permfail":
            step.events.append(self._event(line, session, "auth_failure", failure_id(NAME, line),
                                           user=user))
        else:
            step.invalid.append(Invalid("opensmtpd_auth_result", f"result={result}"))

    def _message(self, line: SyslogLine, sid: str, session: _Session, kv: dict[str, str],
                 step: Step) -> None:
        try:
            size = int(kv["size"]) if "size" in kv else None
            count = kv.get("nrcpt", kv.get("ndest"))
            rcpt = int(count) if count is not None else None
        except ValueError:
            step.invalid.append(Invalid("opensmtpd_message_unparsed", "non-numeric size/nrcpt"))
            return
        msgid = kv.get("msgid")
        if msgid is not None and msgid == session.last_msgid:
            return  # 6.0-6.4 log a message once per recipient
        session.last_msgid = msgid
        step.events.append(self._event(
            line, session, "submission", event_id(NAME, self.server, sid, msgid),
            user=session.user, message_id=msgid, size=size, recipients=rcpt))

    def _event(self, line: SyslogLine, session: _Session, kind: str, eid: str,
               user: str | None, **extra: object) -> AuthEvent:
        sender, domain = sender_identity(user, self.config.default_domain)
        return AuthEvent(
            event_id=eid, kind=kind, ts=line.ts, server=self.server,
            source=NAME, sender=sender, sender_domain=domain, client_ip=session.address,
            client_host=session.host, tls_version=session.tls,
            tls_cipher=session.cipher, **extra)

    def expire(self, now: datetime) -> Step:
        return Step(released=self._sessions.drop_expired(now - self._timeout,
                                                        self.config.max_pending_sessions))


class OpenSmtpd(Dialect):
    name = NAME
    markers = (" smtp ",)
    programs = ("smtpd",)

    def sessions(self, server: str, config: NormalizeConfig) -> OpenSmtpdSessions:
        return OpenSmtpdSessions(server, config)
