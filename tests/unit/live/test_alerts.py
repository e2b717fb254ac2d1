"""Alert rules on a generated week with injected incidents: exactly the expected alerts,
once each, whatever the arrival order within the grace period."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from pipeline.live.decide import AlertConfig, AlertEngine, Signal, run_alerts, signals_for
from schemas.alert import Alert
from schemas.event import AuthEvent

START = datetime(2026, 11, 16, 0, 0, tzinfo=UTC)


def _ev(n: int, ts: datetime, kind: str = "submission", sender: str | None = "u@example.com",
        tls: str = "TLS1.2", ip: str = "198.51.100.1") -> AuthEvent:
    return AuthEvent(event_id=f"w{n}", kind=kind, ts=ts, server="mx", source="json",  # type: ignore[arg-type]
                     sender=sender, sender_domain=sender.rpartition("@")[2] if sender else None,
                     tls_version=tls, client_ip=ip)  # type: ignore[arg-type]


def week() -> list[AuthEvent]:
    rng = random.Random(7)
    events: list[AuthEvent] = []
    n = 0
    for hour in range(8 * 24):
        base = START + timedelta(hours=hour)
        for i in range(20):
            n += 1
            legacy = i < (2 if hour % 3 == 0 else 1)
            sender = ("printer@example.com" if i == 0 else "app@contoso.org") if legacy else (
                f"user{rng.randrange(50)}@example.com")
            events.append(_ev(n, base + timedelta(seconds=rng.randrange(3600)),
                              sender=sender, tls="TLS1.0" if legacy else "TLS1.3"))
        if hour % 3 == 0:  # background failures: never an incident
            n += 1
            events.append(_ev(n, base + timedelta(minutes=7), "auth_failure",
                              f"user{rng.randrange(50)}@example.com",
                              ip=f"192.0.2.{rng.randrange(200)}"))
    spike = START + timedelta(days=6, hours=14)
    for i in range(40):  # legacy-TLS spike: a new scanner on TLS 1.0
        n += 1
        events.append(_ev(n, spike + timedelta(seconds=60 * i), sender="old-scanner@example.com",
                          tls="TLS1.0"))
    spray = START + timedelta(days=5, hours=10)
    for i in range(7):  # one IP, seven accounts, ten minutes
        n += 1
        events.append(_ev(n, spray + timedelta(seconds=90 * i), "auth_failure",
                          f"victim{i}@example.com", ip="203.0.113.66"))
    brute = START + timedelta(days=4, hours=3)
    for i in range(12):  # one account hammered from one IP
        n += 1
        events.append(_ev(n, brute + timedelta(seconds=150 * i), "auth_failure",
                          "ceo@example.com", ip="203.0.113.77"))
    return sorted(events, key=lambda e: e.ts)


EXPECTED = {
    ("first_legacy_tls", "printer@example.com"), ("first_legacy_tls", "app@contoso.org"),
    ("first_legacy_tls", "old-scanner@example.com"),
    ("legacy_tls_spike", "example.com"), ("legacy_tls_spike", "*"),
    ("password_spray", "203.0.113.66"),
    ("brute_force_account", "ceo@example.com"), ("brute_force_ip", "203.0.113.77"),
}


def test_injected_incidents_give_exactly_the_expected_alerts_once_each():
    alerts = run_alerts(week())
    assert sorted((a.rule, a.key) for a in alerts) == sorted(EXPECTED)
    spike = next(a for a in alerts if a.rule == "legacy_tls_spike" and a.key == "example.com")
    assert spike.value == 40 + 1 and spike.window_start == START + timedelta(days=6, hours=14)
    spray = next(a for a in alerts if a.rule == "password_spray")
    assert spray.value == 7 and spray.details["accounts"][0] == "victim0@example.com"


def test_replay_and_reordering_within_grace_give_the_same_alerts():
    events = week()
    first = [a.model_dump() for a in run_alerts(events)]
    assert [a.model_dump() for a in run_alerts(events)] == first
    rng = random.Random(3)
    jittered = sorted(events, key=lambda e: e.ts.timestamp() + rng.uniform(0, 60))
    assert sorted(a.alert_id for a in run_alerts(jittered)) == sorted(a["alert_id"] for a in first)


def test_duplicate_copies_do_not_inflate_counts():
    events = week()
    doubled = sorted(events + events, key=lambda e: e.ts)
    assert sorted(a.alert_id for a in run_alerts(doubled)) == sorted(
        a.alert_id for a in run_alerts(events))


def test_thresholds_come_from_the_config():
    strict = AlertConfig(spray_accounts=8, brute_failures=20, spike_min_volume=100)
    rules = {a.rule for a in run_alerts(week(), strict)}
    assert rules == {"first_legacy_tls"}


def _worker_path(events: list[AuthEvent], again_every: int = 0,
                 batch: int = 20) -> tuple[list[Alert], dict[str, Any]]:
    """The worker's way in: signals carry their event's partition and offset, only a
    sender's first legacy-TLS submission sends a sender signal, a batch's signals come one
    group per key, and (with `again_every`) every so many batches one is counted again at
    once, as after a crash between its signals and its counters' flush."""
    store: dict[str, Any] = {}
    engine = AlertEngine(AlertConfig(), store)
    alerts: list[Alert] = []
    legacy_seen: set[str] = set()
    newest = 0.0
    for number, start in enumerate(range(0, len(events), batch)):
        groups: dict[str, list[Signal]] = {}
        before = newest
        for offset in range(start, min(start + batch, len(events))):
            event = events[offset]
            newest = max(newest, event.ts.timestamp())
            for signal in signals_for(event):
                if signal.key.startswith("snd:"):
                    if signal.key in legacy_seen:
                        continue
                    legacy_seen.add(signal.key)
                groups.setdefault(signal.key, []).append(replace(signal, source=0,
                                                                 offset=offset))
        for _ in range(2 if again_every and number % again_every == 0 else 1):
            engine.advance(0, before)  # a group carries the watermark the ticks said
            for key, signals in groups.items():
                alerts += engine.feed_many(key, signals)
        engine.advance(0, newest)
        alerts += engine.tick()
    alerts += engine.tick(newest + 2 * 86400)
    return alerts, store


def test_the_worker_path_with_offsets_gives_the_expected_alerts_and_keeps_no_ids():
    events = week()
    alerts, store = _worker_path(events)
    assert sorted((a.rule, a.key) for a in alerts) == sorted(EXPECTED)
    assert sorted(a.alert_id for a in alerts) == sorted(a.alert_id for a in run_alerts(events))
    spike = next(a for a in alerts if a.rule == "legacy_tls_spike" and a.key == "example.com")
    assert spike.value == 40 + 1
    # The dedup memory is one offset per partition, not the ids of the hot keys' events.
    assert all(not state["ids"] and set(state["o"]) == {"0"} for state in store.values())


def test_batches_counted_again_after_a_crash_change_no_alert():
    events = week()
    alerts, _ = _worker_path(events)
    for again_every in (1, 3):
        again, _ = _worker_path(events, again_every=again_every)
        assert sorted((a.alert_id, a.value) for a in again) == sorted(
            (a.alert_id, a.value) for a in alerts)


def _ticking(events: list[AuthEvent], every_tick_judges_all: bool,
             monkeypatch: Any) -> tuple[list[tuple[int, Alert]], dict[str, Any]]:
    """Two source partitions replayed at different speeds, a tick from each after every
    batch (most leave the slower source's watermark where it was), signals by group. The
    alerts come with the step that decided them: a tick that skipped a key it should have
    judged would only delay its alert."""
    from pipeline.live import decide

    if every_tick_judges_all:  # the reference: every pending key judged at every tick
        monkeypatch.setattr(decide, "_due", lambda key, state, mark: True)
    store: dict[str, Any] = {}
    engine = AlertEngine(AlertConfig(), store)
    alerts: list[tuple[int, Alert]] = []
    sources = [events[0::2], events[1::2]]
    done = [0, 0]
    newest = [0.0, 0.0]
    rng = random.Random(11)
    step = 0
    while done[0] < len(sources[0]) or done[1] < len(sources[1]):
        source = rng.randrange(2)
        part = sources[source][done[source]:done[source] + rng.randrange(1, 40 * (source + 1))]
        groups: dict[str, list[Signal]] = {}
        for i, event in enumerate(part, start=done[source]):
            newest[source] = max(newest[source], event.ts.timestamp())
            for signal in signals_for(event):
                groups.setdefault(signal.key, []).append(
                    replace(signal, source=source, offset=i))
        done[source] += len(part)
        for key, signals in groups.items():
            alerts += [(step, a) for a in engine.feed_many(key, signals)]
        for tick_source in (0, 1, source):
            step += 1
            engine.advance(tick_source, newest[tick_source])
            if every_tick_judges_all:
                engine._judged = None
            alerts += [(step, a) for a in engine.tick()]
    alerts += [(step + 1, a) for a in engine.tick(max(newest) + 2 * 86400)]
    return alerts, store


def test_ticks_that_skip_what_cannot_change_decide_the_same(monkeypatch: Any):
    events = week()
    fast, fast_store = _ticking(events, False, monkeypatch)
    slow, slow_store = _ticking(events, True, monkeypatch)
    assert sorted((a.rule, a.key) for _, a in fast) == sorted(EXPECTED)
    assert sorted((step, a.alert_id, a.value, a.threshold) for step, a in fast) == sorted(
        (step, a.alert_id, a.value, a.threshold) for step, a in slow)
    assert fast_store == slow_store
