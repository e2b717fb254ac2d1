"""Small pure helpers shared by the dialect parsers."""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache

from pipeline.ingest.syslog import SyslogLine
from schemas.event import canonical_ip as event_ip

_TLS_LABELS = {
    "tlsv1": "TLS1.0", "tlsv1.0": "TLS1.0", "tls1.0": "TLS1.0", "tls1": "TLS1.0",
    "tlsv1.1": "TLS1.1", "tls1.1": "TLS1.1",
    "tlsv1.2": "TLS1.2", "tls1.2": "TLS1.2",
    "tlsv1.3": "TLS1.3", "tls1.3": "TLS1.3",
    "sslv3": "SSL3", "ssl3": "SSL3", "ssl3.0": "SSL3",
}
_HOST_IP = re.compile(r"(?P<host>[^\s\[\]]*)\[(?P<ip>[0-9A-Fa-f:.]+)\](?::\d+)?")


# The helpers below are pure and their inputs repeat (the same clients, accounts, TLS
# labels line after line): cached, a lookup replaces a regex or a loop on the hot path.
# Bounded: entries times max_line_bytes at worst, whatever the input.
@lru_cache(maxsize=256)
def canonical_tls(label: str | None) -> str:
    """`TLSv1.2` → `TLS1.2`; anything unknown → `unknown`."""
    if not label:
        return "unknown"
    return _TLS_LABELS.get(label.strip().lower().replace("_", "."), "unknown")


def canonical_ip(text: str | None) -> str | None:
    """An address as logged (`IPv6:` prefix allowed) → canonical text, or None."""
    if not text:
        return None
    text = text.strip()
    if text.lower().startswith("ipv6:"):
        text = text[5:]
    try:
        return event_ip(text)
    except ValueError:
        return None


@lru_cache(maxsize=4096)
def host_and_ip(text: str) -> tuple[str | None, str | None]:
    """`mail.example.com[192.0.2.1]` (optionally `:port`) → (host, ip); host None if unknown."""
    match = _HOST_IP.match(text)
    if match is None:
        return None, None
    host = match["host"]
    return (host if host and host != "unknown" else None), canonical_ip(match["ip"])


@lru_cache(maxsize=4096)
def sender_identity(username: str | None,
                    default_domain: str | None) -> tuple[str | None, str | None]:
    """The authenticated account and its domain; bare names get the default domain."""
    if not username:
        return None, None
    name = username.strip()
    if "@" in name:
        name = name.lower()
        return name, name.rpartition("@")[2] or None
    return name, default_domain.lower() if default_domain else None


@lru_cache(maxsize=4096)
def envelope_address(text: str | None) -> str | None:
    if text is None:
        return None
    text = text.strip().strip("<>")
    return text.lower() if text else None


def event_id(*parts: object) -> str:
    """Stable id of an event: same input parts ⇒ same id (dedup in ClickHouse)."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=16)
    return digest.hexdigest()


def failure_id(source: str, line: SyslogLine) -> str:
    """Failures carry no id of their own: the line (and its repeat number) is the identity."""
    return event_id(source, line.host, line.ts.isoformat(), line.pid, line.seq, line.message)


# Authenticator / mechanism names as MTAs log them → the SASL mechanism.
_MECHANISMS = ("CRAM-MD5", "DIGEST-MD5", "SCRAM-SHA-256", "SCRAM-SHA-1", "XOAUTH2",
               "OAUTHBEARER", "NTLM", "GSSAPI", "PLAIN", "LOGIN", "EXTERNAL")


@lru_cache(maxsize=256)
def mechanism_of(name: str | None) -> str | None:
    """`dovecot_plain` → PLAIN, `cram_md5` → CRAM-MD5, `xoauth2` → XOAUTH2; else upper-cased."""
    if not name:
        return None
    upper = name.upper().replace("_", "-")
    for mech in _MECHANISMS:
        if mech in upper:
            return mech
    return upper


_MECHANISM_PARTS = {m.replace("-", "_").lower(): m for m in _MECHANISMS}


@lru_cache(maxsize=256)
def mechanism_of_instance(name: str | None) -> str | None:
    """An Exim authenticator *instance* name is configuration, not a mechanism: a mechanism
    only when a `_`/`-` separated part of it is one (`dovecot_login` → LOGIN, `cram_md5` →
    CRAM-MD5); `mylogin`, `spa`, `au1` → None rather than an invented name."""
    if not name:
        return None
    text = name.lower().replace("-", "_")
    for key, mech in _MECHANISM_PARTS.items():
        if f"_{text}_".find(f"_{key}_") >= 0:
            return mech
    return None
