"""Session expiry: by event time while a server sends, by the receive clock once it is quiet
(issue 16.5: a replay far behind the wall clock must not lose its sessions' later lines)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pipeline.live.count import DEDUP_HOURS, hour_of, new_entry, prune
from pipeline.normalize.dialects.base import NormalizeConfig
from pipeline.normalize.normalizer import Normalizer

OLD = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)  # months behind the receive clock
RECEIVED = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
TLS = ("{ts} mx1 postfix/submission/smtpd[7]: Anonymous TLS connection established from "
       "a.example[192.0.2.7]: TLSv1.1 with cipher ECDHE-RSA-AES128-SHA (128/128 bits)")
SASL = ("{ts} mx1 postfix/submission/smtpd[7]: 4Q7ZrB1xyz: client=a.example[192.0.2.7], "
        "sasl_method=LOGIN, sasl_username=printer@example.org")
QMGR = ("{ts} mx1 postfix/qmgr[812]: 4Q7ZrB1xyz: from=<printer@example.org>, size=20480, "
        "nrcpt=3 (queue active)")


def _line(template: str, ts: datetime) -> bytes:
    return template.format(ts=ts.isoformat().replace("+00:00", "Z")).encode()


def test_a_server_still_sending_is_left_to_event_time():
    n = Normalizer(NormalizeConfig(session_timeout_seconds=5))
    n.feed(_line(TLS, OLD), 1, RECEIVED)
    n.feed(_line(SASL, OLD), 2, RECEIVED)
    # Seconds later by the receive clock, months after the session began: not quiet yet.
    assert n.expire_quiet(RECEIVED + timedelta(seconds=4)).events == []
    out = n.feed(_line(QMGR, OLD + timedelta(milliseconds=30)), 3, RECEIVED + timedelta(
        seconds=4))
    out.events.extend(n.expire_quiet(RECEIVED + timedelta(seconds=20)).events)
    [event] = out.events
    assert (event.tls_version, event.size, event.recipients) == ("TLS1.1", 20480, 3)


def test_a_quiet_server_ends_its_sessions_by_the_receive_clock():
    n = Normalizer(NormalizeConfig(session_timeout_seconds=5))
    n.feed(_line(TLS, OLD), 1, RECEIVED)
    n.feed(_line(SASL, OLD), 2, RECEIVED)
    assert n.expire_quiet(RECEIVED + timedelta(seconds=4)).events == []
    out = n.expire_quiet(RECEIVED + timedelta(seconds=5))
    [event] = out.events
    assert event.tls_version == "TLS1.1" and event.sender == "printer@example.org"
    assert sorted(out.released) == [1, 2] and n.pending() == 0


def test_ids_leave_by_their_partition_event_time_not_the_wall_clock():
    entry = new_entry()
    replayed = hour_of(OLD)
    entry["i"] = {"a": replayed, "b": replayed - DEDUP_HOURS - 1}
    entry["s"] = {str(replayed): {"TLS1.2": 1}}
    # The wall clock is months on; the partition's event time is where the replay is.
    assert prune(entry, hour_of(RECEIVED), replayed)
    assert entry["i"] == {"a": replayed}
    assert entry["s"] == {}  # buckets leave by the views' window, the wall clock
