"""What the generator decided for one session; renderers turn it into a dialect's lines."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

# TLS as the generator picks it: a canonical label, "none" for plaintext.
CANONICAL_TLS = ("TLS1.3", "TLS1.2", "TLS1.1", "TLS1.0", "none")
OPENSSL_CIPHER = {"TLS1.3": "TLS_AES_256_GCM_SHA384", "TLS1.2": "ECDHE-RSA-AES256-GCM-SHA384",
                  "TLS1.1": "ECDHE-RSA-AES128-SHA", "TLS1.0": "AES128-SHA"}
OPENSSL_LABEL = {"TLS1.3": "TLSv1.3", "TLS1.2": "TLSv1.2", "TLS1.1": "TLSv1.1",
                 "TLS1.0": "TLSv1"}


@dataclass(frozen=True, slots=True)
class Submission:
    server: str
    ts: datetime
    pid: int
    qid: str
    sender: str
    ip: str
    host: str | None
    tls: str
    mechanism: str
    size: int
    recipients: int


@dataclass(frozen=True, slots=True)
class Failure:
    server: str
    ts: datetime
    pid: int
    session: str
    ip: str
    mechanism: str
    username: str | None


@dataclass(slots=True)
class Rendered:
    """Lines as (time, text, syslog): syslog lines get an RFC 3339 header added by the
    driver; others are the dialect's own log-file lines, keyed by server."""

    lines: list[tuple[datetime, str, bool]] = field(default_factory=list)
    truth: list[dict[str, Any]] = field(default_factory=list)
    server: str = ""  # the host these lines came from (the Kafka key)

    def add(self, ts: datetime, text: str, syslog: bool = True) -> None:
        self.lines.append((ts, text, syslog))


class Renderer(Protocol):
    def submission(self, s: Submission) -> Rendered: ...

    def failure(self, f: Failure) -> Rendered: ...

    def noise(self, s: Submission) -> Rendered: ...


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def ms(ts: datetime, n: float) -> datetime:
    return ts + timedelta(milliseconds=int(n * 1000))


def truth(source: str, kind: str, ts: datetime, server: str, **fields: Any) -> dict[str, Any]:
    """One expected canonical event (without event_id), every field present."""
    row: dict[str, Any] = {
        "kind": kind, "ts": iso(ts), "server": server, "source": source,
        "sender": None, "sender_domain": None, "envelope_from": None, "auth_mechanism": None,
        "client_ip": None, "client_host": None, "tls_version": "unknown", "tls_cipher": None,
        "message_id": None, "recipients": None, "size": None,
    }
    row.update(fields)
    sender = row["sender"]
    if sender and row["sender_domain"] is None and "@" in sender:
        row["sender_domain"] = sender.rpartition("@")[2]
    return row
