"""The internal readers' fast model (`CanonicalEvent`) against the one events are made with
(`AuthEvent`): what the normalizer writes reads back the same; what it would have mended is
refused, not silently taken."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from aiokafka import ConsumerRecord
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from pipeline.store.sink import build_batch
from schemas.event import AuthEvent, CanonicalEvent

text = st.text(min_size=1, max_size=400)
optional = st.none() | text
ips = st.ip_addresses().map(str) | st.ip_addresses(v=6).map(lambda ip: str(ip).upper())
zones = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
stamps = st.builds(lambda s, tz: datetime.fromtimestamp(s, UTC).astimezone(tz),
                   st.integers(0, 4_000_000_000), zones)
counts = st.none() | st.integers(-(2**64), 2**64)


@settings(max_examples=300, deadline=None)
@given(event_id=st.text(min_size=1, max_size=128), kind=st.sampled_from(["submission",
       "auth_failure"]), ts=stamps, server=st.text(min_size=1, max_size=300), sender=optional,
       domain=optional, mechanism=st.none() | st.sampled_from(["plain", "Login", "XOAUTH2"]),
       ip=st.none() | ips, tls=st.sampled_from(["TLS1.0", "TLS1.3", "none", "unknown"]),
       cipher=optional, recipients=counts, size=counts)
def test_what_the_normalizer_writes_reads_back_the_same(
        event_id: str, kind: str, ts: datetime, server: str, sender: str | None,
        domain: str | None, mechanism: str | None, ip: str | None, tls: str,
        cipher: str | None, recipients: int | None, size: int | None) -> None:
    made = AuthEvent.model_validate({
        "event_id": event_id, "kind": kind, "ts": ts, "server": server, "source": "json",
        "sender": sender, "sender_domain": domain, "envelope_from": sender,
        "auth_mechanism": mechanism, "client_ip": ip, "client_host": domain,
        "tls_version": tls, "tls_cipher": cipher, "message_id": domain,
        "recipients": recipients, "size": size})
    read = CanonicalEvent.model_validate_json(made.model_dump_json())
    # Equal to the millisecond the topic carries, and every other field as made.
    assert abs(read.ts - made.ts) < timedelta(milliseconds=1)
    assert read.model_dump(exclude={"ts"}) == made.model_dump(exclude={"ts"})
    assert read.legacy_tls == made.legacy_tls


BASE = {"event_id": "e1", "kind": "submission", "ts": "2026-12-01T10:00:00.000Z",
        "server": "mx1", "source": "json"}


@pytest.mark.parametrize("change", [
    {"ts": "2026-12-01T10:00:00"},            # no time zone
    {"sender": "a" * 321 + "@example.com"},   # beyond its bound: AuthEvent would cut it
    {"recipients": -1},                       # AuthEvent would make it unknown
    {"tls_version": "TLS1.4"},
    {"extra": 1},
])
def test_what_the_normalizer_would_have_mended_is_refused(change: dict[str, object]) -> None:
    import json

    doc = json.dumps({**BASE, **change}).encode()
    with pytest.raises(ValidationError):
        CanonicalEvent.model_validate_json(doc)
    # ... and the sink dead-letters it from the events topic, with the record's place.
    record = ConsumerRecord("smtp-auth.events", 2, 41, 0, 0, b"k", doc, None, 1, len(doc), [])
    batch = build_batch([record], datetime.now(UTC))
    assert not batch.rows
    assert [(r.reason, r.partition, r.offset) for r in batch.rejections] == [
        ("invalid_event", 2, 41)]


def test_the_tidying_cuts_strings_to_the_bounds_the_readers_check() -> None:
    """A string the normalizer cuts must fit what its own readers accept, or every event
    with a long field would be dead-lettered by the sink."""
    from schemas.event import _LIMITS

    for name, limit in _LIMITS.items():
        bounds = [m.max_length for m in CanonicalEvent.model_fields[name].metadata
                  if hasattr(m, "max_length")]
        assert bounds == [limit], name
