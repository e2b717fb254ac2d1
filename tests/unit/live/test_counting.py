"""Live counters: exactly once by offset and event id, event time, lateness, expiry, and
incremental sums that always equal a rebuild."""

from __future__ import annotations

import copy
import random
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.live import count
from schemas.event import AuthEvent

T0 = datetime(2026, 11, 28, 10, 30, tzinfo=UTC)
H0 = count.hour_of(T0)


def ev(n: int, ts: datetime = T0, tls: str = "TLS1.2", kind: str = "submission",
       sender: str = "a@example.com", ip: str = "192.0.2.1") -> AuthEvent:
    return AuthEvent(event_id=f"e{n}", kind=kind, ts=ts, server="mx", source="json",  # type: ignore[arg-type]
                     sender=sender, sender_domain=sender.rpartition("@")[2], tls_version=tls,  # type: ignore[arg-type]
                     client_ip=ip)


def test_each_event_counts_once_whatever_is_replayed():
    entry = count.new_entry()
    assert count.apply(entry, ev(1), 10, H0, 1).reason == "counted"
    assert count.apply(entry, ev(1), 10, H0, 1).reason == "replayed"   # same offset
    assert count.apply(entry, ev(2), 9, H0, 1).reason == "replayed"    # older offset
    assert count.apply(entry, ev(1), 11, H0, 1).reason == "duplicate"  # re-emitted copy
    assert count.apply(entry, ev(3), 12, H0, 1).reason == "counted"
    assert count.sender_view(entry, T0)["messages"] == 2


def test_lateness_and_expiry_by_event_time():
    entry = count.new_entry()
    watermark = H0 + 5
    assert count.apply(entry, ev(1, T0 + timedelta(hours=4)), 1, watermark, 1).counted
    assert count.apply(entry, ev(2, T0), 2, watermark, 1).reason == "late"
    assert count.apply(entry, ev(3, T0 - timedelta(days=8)), 3, watermark, 1).reason == (
        "expired")
    assert entry["late"] == 1
    assert count.apply(entry, ev(4, T0), 4, watermark, 6).counted  # a laxer lateness


def test_buckets_and_ids_are_pruned():
    entry = count.new_entry()
    count.apply(entry, ev(1), 1, H0, 1)
    assert count.prune(entry, H0 + 4)           # ids past the dedup horizon go
    assert entry["i"] == {} and entry["s"]
    assert count.prune(entry, H0 + 7 * 24)      # the bucket leaves the 7-day window
    assert entry["s"] == {}
    assert not count.prune(entry, H0 + 7 * 24)


def test_a_week_of_hours_leaves_from_the_front_and_a_late_hour_with_the_sweep():
    """Per event only the oldest buckets are looked at: a sender active all week loses its
    oldest hour as the hours move on, an hour counted behind newer ones stays until the
    sweep, and the views never count a bucket outside their window meanwhile."""
    entry = count.new_entry()
    week = [H0 - count.WINDOW_HOURS + 1 + h for h in range(count.WINDOW_HOURS)]
    for n, hour in enumerate(week):
        assert count.apply(entry, ev(n, T0 + timedelta(hours=hour - H0)), n, hour, 1).counted
    assert list(entry["s"]) == [str(h) for h in week]
    # An hour of the first day counted again after its bucket went: it lands at the back.
    straggler = week[10]
    del entry["s"][str(straggler)]
    at = T0 + timedelta(hours=straggler - H0)
    assert count.apply(entry, ev(500, at), 500, H0, count.WINDOW_HOURS).counted
    assert list(entry["s"])[-1] == str(straggler)
    # Two days on: the two oldest days leave from the front; the straggler is of them by
    # its hour, but it sits at the back and waits for the sweep.
    later = T0 + timedelta(hours=48)
    moved = count.apply(entry, ev(600, later), 600, H0 + 48, 1)
    assert moved.removed is not None
    assert set(moved.removed["s"]) == {str(h) for h in week[:48]} - {str(straggler)}
    assert str(straggler) in entry["s"]
    window = set(range(H0 + 48 - count.WINDOW_HOURS + 1, H0 + 49))
    assert straggler not in window
    want = sum(n for k, per in entry["s"].items() if int(k) in window for n in per.values())
    assert count.sender_view(entry, later)["messages"] == want == count.WINDOW_HOURS - 48 + 1
    swept = count.prune(entry, H0 + 48)
    assert swept is not None and set(swept["s"]) == {str(straggler)}
    assert all(int(k) in window for k in entry["s"])


def test_incremental_sums_equal_a_rebuild():
    rng = random.Random(4)
    entries: dict[str, dict] = {}
    agg = count.Aggregates()
    for n in range(2000):
        sender = f"u{rng.randrange(40)}@d{rng.randrange(3)}.example"
        event = ev(n, T0 - timedelta(hours=rng.randrange(30)),
                   rng.choice(["TLS1.0", "TLS1.1", "TLS1.2", "TLS1.3"]),
                   rng.choice(["submission"] * 5 + ["auth_failure"]), sender,
                   f"203.0.113.{rng.randrange(9)}")
        old = entries.get(sender)
        entry = copy.deepcopy(old) if old else count.new_entry()
        if count.apply(entry, event, n, H0, 48).counted:
            if old:
                agg.add(sender, old, -1)
            agg.add(sender, entry)
        entries[sender] = entry
    rebuilt = count.rebuild(entries.items())
    assert count.summary(agg, T0) == count.summary(rebuilt, T0)
    assert count.top_legacy(agg, T0, 10) == count.top_legacy(rebuilt, T0, 10)
    assert count.top_failures(agg.failures_ip, T0, 99) == count.top_failures(
        rebuilt.failures_ip, T0, 99)
    total = count.summary(agg, T0)
    assert total["messages"] == sum(count.sender_view(e, T0)["messages"]
                                    for e in entries.values())


def test_partials_merge_by_addition():
    a, b = count.Aggregates(), count.Aggregates()
    ea, eb = count.new_entry(), count.new_entry()
    count.apply(ea, ev(1, tls="TLS1.0"), 1, H0, 1)
    count.apply(eb, ev(2, sender="b@example.com"), 1, H0, 1)
    a.add("a@example.com", ea)
    b.add("b@example.com", eb)
    merged = count.merge_summaries([count.summary(a, T0), count.summary(b, T0)])
    assert merged == {"messages": 2, "by_tls": {"TLS1.0": 1, "TLS1.2": 1}, "senders": 2,
                      "auth_failures": 0, "legacy_share": 0.5, "late": 0, "recovering": False}


def test_sums_from_deltas_equal_a_rebuild_with_hot_keys_and_moving_event_time():
    """The live agent applies each event in place and adds only its delta (issue 16.7: a copy
    of the whole entry per event made one hot key quadratic); across pruning, late events
    and hours moving on, the sums equal a rebuild from the entries."""
    rng = random.Random(7)
    entries: dict[str, dict] = {}
    agg = count.Aggregates()
    watermark = H0
    for n in range(6000):
        sender = "hot@d0.example" if rng.random() < 0.6 else f"u{rng.randrange(30)}@d1.example"
        ts = T0 + timedelta(minutes=n // 3 + rng.randrange(-90, 5))
        event = ev(n, ts, rng.choice(["TLS1.0", "TLS1.2", "TLS1.3"]),
                   rng.choice(["submission"] * 4 + ["auth_failure"]), sender,
                   f"203.0.113.{rng.randrange(5)}")
        watermark = max(watermark, count.hour_of(ts))
        entry = entries.setdefault(sender, count.new_entry())
        applied = count.apply(entry, event, n, watermark, 1)
        if applied.removed is not None:
            agg.add(sender, applied.removed, -1)
        if applied.added is not None:
            agg.add(sender, applied.added)
        if n % 1000 == 999:  # the periodic sweep, days on
            for key, e in entries.items():
                removed = count.prune(e, watermark + 24 * (n // 1000), watermark)
                if removed is not None:
                    agg.add(key, removed, -1)
    now = T0 + timedelta(days=6)
    rebuilt = count.rebuild(entries.items())
    assert count.summary(agg, now) == count.summary(rebuilt, now)
    assert count.top_legacy(agg, now, 10) == count.top_legacy(rebuilt, now, 10)
    assert agg.tls == rebuilt.tls and agg.failures_ip == rebuilt.failures_ip
    assert agg.domains == rebuilt.domains and agg.failures_account == rebuilt.failures_account
    assert agg.sender_hours == rebuilt.sender_hours and agg.late == rebuilt.late > 0
    # The dedup memory of the hot key stays within the horizon of its event time.
    hot = entries["hot@d0.example"]
    assert min(hot["i"].values()) >= watermark - count.DEDUP_HOURS


def test_a_submission_without_an_account_is_no_sender_in_the_live_summary():
    entry = count.new_entry()
    event = AuthEvent(event_id="e1", kind="submission", ts=T0, server="mx", source="json",
                      tls_version="TLS1.2")
    assert count.apply(entry, event, 1, count.hour_of(T0), 1).counted
    summary = count.summary(count.rebuild([("", entry)]), T0)
    assert (summary["messages"], summary["senders"]) == (1, 0)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 30), st.integers(-5, 5), st.booleans()),
                max_size=200),
       st.integers(-3, 8))
def test_senders_in_a_window_counted_from_their_newest_hour_equal_a_walk(steps, since):
    """The summary's distinct senders come from the senders-by-newest-hour buckets; they must
    equal a walk over every sender's hours, also for hours ahead of the window (a clock
    ahead) and after hours left by pruning."""
    agg = count.Aggregates()
    held: list[tuple[str, count.Entry]] = []
    for sender_no, hour, add in steps:
        sender = f"s{sender_no}@x.org"
        entry: count.Entry = {"o": -1, "d": "x.org", "s": {str(hour): {"TLS1.2": 1}},
                              "f": {}, "i": {}, "late": 0}
        if add or not held:
            agg.add(sender, entry)
            held.append((sender, entry))
        else:
            gone = held.pop(sender_no % len(held))
            agg.add(gone[0], gone[1], -1)
    until = since + 4
    walk = sum(1 for hours in agg.sender_hours.values()
               if any(since <= h < until for h in hours))
    assert count.senders_in(agg, since, until) == walk
    assert {s: max(hours) for s, hours in agg.sender_hours.items()} == {
        s: h for h, senders in agg.by_newest.items() for s in senders}
