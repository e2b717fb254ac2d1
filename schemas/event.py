"""The canonical event of topic smtp-auth.events (SPEC §5).

`schemas/json/smtp-auth.events.schema.json` is generated from this model
(`python -m schemas.export`); a unit test keeps the two in step.
"""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    field_serializer,
    field_validator,
    model_validator,
)

TlsVersion = Literal["TLS1.0", "TLS1.1", "TLS1.2", "TLS1.3", "SSL3", "none", "unknown"]
Kind = Literal["submission", "auth_failure"]
Source = Literal["postfix", "exim", "sendmail", "exchange", "dovecot", "opensmtpd", "json"]

_LIMITS = {"server": 255, "sender": 320, "sender_domain": 255, "envelope_from": 320,
           "auth_mechanism": 32, "client_host": 255, "tls_cipher": 128, "message_id": 255}
_INT_LIMITS = {"recipients": 2**32 - 1, "size": 2**63 - 1}
LEGACY_TLS: frozenset[str] = frozenset({"TLS1.0", "TLS1.1", "SSL3"})
OAUTH_MECHANISMS: frozenset[str] = frozenset({"XOAUTH2", "OAUTHBEARER"})


@lru_cache(maxsize=8192)  # clients repeat; parsing an address is the costly part
def canonical_ip(value: str) -> str:
    """The canonical text of an IPv4/IPv6 address (the one cache of it for every dialect)."""
    return str(ipaddress.ip_address(value))  # ValueError: a validation error naming the value


class CanonicalEvent(BaseModel):
    """A canonical event as the internal readers of smtp-auth.events take it (the live
    counters, the alert signals, the sink): the types, bounds and literals checked by
    pydantic's core alone, which reads JSON about twice as fast as `AuthEvent` (no Python
    validator per event; bench/RESULTS.md). The normalizer wrote these events through
    `AuthEvent`, so they are tidy already; one that is not (too long, a naive time) is
    refused here rather than mended, and the sink dead-letters it."""

    model_config = ConfigDict(frozen=True, extra="forbid", title="smtp-auth event")

    event_id: str = Field(min_length=1, max_length=128, description="Stable id from the input.")
    kind: Kind
    ts: AwareDatetime = Field(description="Event time, ISO-8601 UTC.")
    server: str = Field(min_length=1, max_length=255, description="MTA host that logged it.")
    source: Source = Field(description="Log dialect.")
    sender: str | None = Field(None, max_length=320, description="Authenticated account.")
    sender_domain: str | None = Field(None, max_length=255)
    envelope_from: str | None = Field(None, max_length=320, description="MAIL FROM address.")
    auth_mechanism: str | None = Field(None, max_length=32, description="Upper case.")
    client_ip: str | None = Field(None, max_length=45, description="Canonical IPv4/IPv6.")
    client_host: str | None = Field(None, max_length=255)
    tls_version: TlsVersion = "unknown"
    tls_cipher: str | None = Field(None, max_length=128)
    message_id: str | None = Field(None, max_length=255, description="Queue / message id.")
    recipients: int | None = Field(None, ge=0)
    size: int | None = Field(None, ge=0, description="Bytes.")

    @property
    def legacy_tls(self) -> bool:
        return self.tls_version in LEGACY_TLS


class AuthEvent(CanonicalEvent):
    """One authenticated submission, or one failed AUTH."""

    # How an event is made, from a log line or a custom producer's JSON: tidied on the way
    # in (the docstring above is the published schema's description).

    ts: datetime = Field(description="Event time, ISO-8601 UTC.")

    @model_validator(mode="before")
    @classmethod
    def _tidy(cls, data: Any) -> Any:
        """One pass over the raw fields (one call is much cheaper than one per field on the
        normalizer's hot path). Logs are untrusted: an absurdly long string is cut to its
        bound rather than losing the event; a count that is negative or beyond what the
        storage types hold is not believable, so unknown; IPs canonical, mechanisms upper."""
        if not isinstance(data, dict):
            return data
        data = dict(data)  # never change the caller's mapping
        for name, limit in _LIMITS.items():
            value = data.get(name)
            if isinstance(value, str) and len(value) > limit:
                data[name] = value[:limit]
        for name, limit in _INT_LIMITS.items():
            value = data.get(name)
            if isinstance(value, int) and not 0 <= value <= limit:
                data[name] = None
        ip = data.get("client_ip")
        if isinstance(ip, str):
            data["client_ip"] = canonical_ip(ip)
        mechanism = data.get("auth_mechanism")
        if isinstance(mechanism, str):
            data["auth_mechanism"] = mechanism.upper()
        return data

    @field_validator("ts")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("ts must carry a time zone")
        return value.astimezone(UTC)

    @field_serializer("ts")
    def _iso_z(self, value: datetime) -> str:
        if value.tzinfo is not UTC:  # validated events are UTC already: skip the conversion
            value = value.astimezone(UTC)
        return value.isoformat(timespec="milliseconds")[:-6] + "Z"  # "+00:00" → "Z"


def auth_protocol(mechanism: str | None) -> str:
    """Microsoft's report column: Basic for password mechanisms, OAuth for token ones."""
    if mechanism is None:
        return "unknown"
    return "OAuth" if mechanism.upper() in OAUTH_MECHANISMS else "Basic"
