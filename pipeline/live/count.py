"""count: rolling 7-day counters per sender, by event time, exactly once.

Why not faust's windowed tables: they lose windows on rebalance and never expire after
recovery (faust-streaming#385, #193), and `.delta()` ignores `relative_to_field` (#428).
Instead one plain table entry per sender holds that sender's hourly buckets, pruned here.

Exactly once, although faust is at-least-once: an entry remembers the offset of the last
event applied to it (a sender's events are all in one partition, so offsets only grow), so
an event re-read after a crash is skipped; and it remembers the event ids of the last hours,
so a copy the normalizer emitted twice (same event_id, new offset) is skipped too. The
counts, the offset and the ids travel in the same changelog record, so they agree.

Pure functions over plain dicts (the table's JSON values); no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NotRequired, TypedDict

from schemas.event import LEGACY_TLS, CanonicalEvent

WINDOW_HOURS = 7 * 24
DEDUP_HOURS = 3  # event ids are remembered this long (event time) for duplicate copies
Buckets = dict[str, dict[str, int]]  # hour (as text: JSON keys) → TLS version or IP → n


class Entry(TypedDict):
    """One sender's table value (one changelog record), its keys kept short on purpose."""

    o: int  # the offset of the last event applied
    d: str | None  # the sender's domain
    s: Buckets  # submissions: hour → TLS version → n
    f: Buckets  # failures: hour → client IP → n
    i: dict[str, int]  # event id → hour, the dedup memory
    late: int  # events beyond the allowed lateness
    p: NotRequired[int]  # the events partition that owns the entry (set by the agent)
    leg: NotRequired[int]  # 1 once a legacy-TLS submission was counted (the first alerts)


def hour_of(ts: datetime) -> int:
    return int(ts.timestamp()) // 3600


def new_entry() -> Entry:
    return {"o": -1, "d": None, "s": {}, "f": {}, "i": {}, "late": 0}


@dataclass(frozen=True, slots=True)
class Applied:
    counted: bool
    reason: str  # counted | replayed | duplicate | late | expired
    # For the sums over many entries, without copying the entry: what this event added
    # and the buckets that pruning removed meanwhile, each entry-shaped (Aggregates.add).
    added: Entry | None = None
    removed: Entry | None = None


def _delta(domain: str | None, late: int = 0) -> Entry:
    return {"o": -1, "d": domain, "s": {}, "f": {}, "i": {}, "late": late}


def apply(entry: Entry, event: CanonicalEvent, offset: int, watermark_hour: int,
          lateness_hours: int) -> Applied:
    """Count one event into its sender's entry (in place). Cost: independent of how many
    events the entry holds (ids leave from the front, in arrival order)."""
    if offset <= entry["o"]:
        return Applied(False, "replayed")
    entry["o"] = offset
    if event.event_id in entry["i"]:
        return Applied(False, "duplicate")
    hour = hour_of(event.ts)
    if hour <= watermark_hour - WINDOW_HOURS:
        return Applied(False, "expired")
    if hour < watermark_hour - lateness_hours:
        entry["late"] += 1
        return Applied(False, "late", added=_delta(entry["d"], late=1))
    key = str(hour)
    if event.kind == "submission":
        entry["d"] = event.sender_domain
        tls = entry["s"].setdefault(key, {})
        tls[event.tls_version] = tls.get(event.tls_version, 0) + 1
        added = _delta(entry["d"])
        added["s"][key] = {event.tls_version: 1}
    else:
        ips = entry["f"].setdefault(key, {})
        ip = event.client_ip or ""
        ips[ip] = ips.get(ip, 0) + 1
        added = _delta(entry["d"])
        added["f"][key] = {ip: 1}
    entry["i"][event.event_id] = hour
    removed = prune(entry, max(watermark_hour, hour), sweep=False)
    return Applied(True, "counted", added, removed)


def prune(entry: Entry, now_hour: int, ids_hour: int | None = None,
          sweep: bool = True) -> Entry | None:
    """Drop buckets out of the 7-day window before `now_hour` and ids past the dedup horizon
    before `ids_hour` (default: the same hour). Returns what was removed (entry-shaped; the
    buckets), or None when nothing changed. `sweep=False` looks at the oldest ids only (ids
    arrive roughly in event-time order; the periodic sweep catches the stragglers), and so
    at the oldest buckets."""
    removed = _delta(entry["d"])
    changed = False
    oldest = now_hour - WINDOW_HOURS
    for buckets, gone in ((entry["s"], removed["s"]), (entry["f"], removed["f"])):
        if sweep:
            for key in [k for k in buckets if int(k) <= oldest]:
                gone[key] = buckets.pop(key)
                changed = True
            continue
        # Hours arrive roughly in order, so the oldest bucket is first: per event, look
        # there only (a sender active all week holds 168 hours: a walk of them took 33 µs
        # an event against 4). An older hour counted behind newer ones (a late event, a
        # slower server) waits for the sweep; the views skip it by their window meanwhile.
        while buckets:
            first = next(iter(buckets))
            if int(first) > oldest:
                break
            gone[first] = buckets.pop(first)
            changed = True
    ids = entry["i"]
    horizon = (now_hour if ids_hour is None else ids_hour) - DEDUP_HOURS
    if sweep:
        for event_id in [e for e, h in ids.items() if h < horizon]:
            del ids[event_id]
            changed = True
    else:
        while ids:
            first = next(iter(ids))
            if ids[first] >= horizon:
                break
            del ids[first]
            changed = True
    return removed if changed else None


# ---- local aggregates over many entries (what the live views read) ------------------------

@dataclass
class Aggregates:
    """Sums over the entries one worker holds, kept incrementally."""

    tls: dict[int, dict[str, int]] = field(default_factory=dict)          # hour → tls → n
    domains: dict[str, dict[int, dict[str, int]]] = field(default_factory=dict)
    failures_ip: dict[int, dict[str, int]] = field(default_factory=dict)  # hour → ip → n
    failures_account: dict[int, dict[str, int]] = field(default_factory=dict)
    sender_hours: dict[str, set[int]] = field(default_factory=dict)       # sender → hours
    # Senders by their newest hour, so the summary counts senders in its window from a few
    # hundred hour buckets instead of a walk over every sender (2 s at a million senders,
    # with the worker's event loop blocked meanwhile).
    by_newest: dict[int, set[str]] = field(default_factory=dict)
    legacy: dict[str, dict[int, int]] = field(default_factory=dict)       # sender → hour → n
    late: int = 0

    def add(self, sender: str, entry: Entry, sign: int = 1) -> None:
        domain = entry["d"] or ""
        self.late += sign * entry["late"]
        for key, per_tls in entry["s"].items():
            hour = int(key)
            for tls, n in per_tls.items():
                _bump(self.tls, hour, tls, sign * n)
                _bump(self.domains.setdefault(domain, {}), hour, tls, sign * n)
                if tls in LEGACY_TLS:
                    per_hour = self.legacy.setdefault(sender, {})
                    per_hour[hour] = per_hour.get(hour, 0) + sign * n
                    if not per_hour[hour]:
                        del per_hour[hour]
                    if not per_hour:
                        del self.legacy[sender]
            if not sender:
                continue  # a submission without an account is no sender (as in the widget)
            hours = self.sender_hours.setdefault(sender, set())
            before = max(hours) if hours else None
            if sign > 0:
                hours.add(hour)
            else:
                hours.discard(hour)
                if not hours:
                    del self.sender_hours[sender]
            after = max(hours) if hours else None
            if after != before:
                if before is not None:
                    newest = self.by_newest[before]
                    newest.discard(sender)
                    if not newest:
                        del self.by_newest[before]
                if after is not None:
                    self.by_newest.setdefault(after, set()).add(sender)
        for key, per_ip in entry["f"].items():
            hour = int(key)
            for ip, n in per_ip.items():
                _bump(self.failures_ip, hour, ip, sign * n)
                _bump(self.failures_account, hour, sender, sign * n)


def _bump(table: dict[int, dict[str, int]], hour: int, key: str, n: int) -> None:
    per = table.setdefault(hour, {})
    per[key] = per.get(key, 0) + n
    if not per[key]:
        del per[key]
        if not per:
            del table[hour]


def rebuild(entries: Iterable[tuple[str, Entry]]) -> Aggregates:
    agg = Aggregates()
    for sender, entry in entries:
        agg.add(sender, entry)
    return agg


# ---- views: local partials that merge by addition ----------------------------------------

def _in(hours: Mapping[int, Any], since: int, until: int) -> Iterator[tuple[int, Any]]:
    return ((h, v) for h, v in hours.items() if since <= h < until)


def summary(agg: Aggregates, now: datetime) -> dict[str, Any]:
    until = hour_of(now) + 1
    since = until - WINDOW_HOURS
    by_tls: dict[str, int] = {}
    for _, per in _in(agg.tls, since, until):
        for tls, n in per.items():
            by_tls[tls] = by_tls.get(tls, 0) + n
    senders = senders_in(agg, since, until)
    failures = sum(n for _, per in _in(agg.failures_ip, since, until) for n in per.values())
    return {"messages": sum(by_tls.values()), "by_tls": by_tls, "senders": senders,
            "auth_failures": failures, "late": agg.late}


def senders_in(agg: Aggregates, since: int, until: int) -> int:
    """Senders with an hour in [since, until): all whose newest hour is in it, and those
    whose newest hour is later (stamped ahead of the clock, within the allowed skew) that
    have another hour in it. None whose newest hour is before it."""
    n = 0
    for newest, senders in agg.by_newest.items():
        if since <= newest < until:
            n += len(senders)
        elif newest >= until:
            n += sum(1 for s in senders
                     if any(since <= h < until for h in agg.sender_hours[s]))
    return n


def merge_summaries(parts: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"messages": 0, "by_tls": {}, "senders": 0, "auth_failures": 0,
                           "late": 0, "recovering": False}
    for part in parts:
        out["late"] += part.get("late", 0)
        out["recovering"] = out["recovering"] or bool(part.get("recovering", False))
        out["messages"] += part["messages"]
        out["senders"] += part["senders"]  # senders are partitioned: sets are disjoint
        out["auth_failures"] += part["auth_failures"]
        for tls, n in part["by_tls"].items():
            out["by_tls"][tls] = out["by_tls"].get(tls, 0) + n
    legacy = sum(n for tls, n in out["by_tls"].items() if tls in LEGACY_TLS)
    out["by_tls"] = dict(sorted(out["by_tls"].items()))
    out["legacy_share"] = round(legacy / out["messages"], 6) if out["messages"] else 0.0
    return out


def domain_view(agg: Aggregates, domain: str, now: datetime) -> dict[str, int]:
    until = hour_of(now) + 1
    by_tls: dict[str, int] = {}
    for _, per in _in(agg.domains.get(domain, {}), until - WINDOW_HOURS, until):
        for tls, n in per.items():
            by_tls[tls] = by_tls.get(tls, 0) + n
    return by_tls


def sender_view(entry: Entry | None, now: datetime) -> dict[str, Any]:
    until = hour_of(now) + 1
    by_tls: dict[str, int] = {}
    failures = 0
    if entry is not None:
        for key, per in entry["s"].items():
            if until - WINDOW_HOURS <= int(key) < until:
                for tls, n in per.items():
                    by_tls[tls] = by_tls.get(tls, 0) + n
        failures = sum(n for key, per in entry["f"].items()
                       if until - WINDOW_HOURS <= int(key) < until for n in per.values())
    return {"messages": sum(by_tls.values()), "by_tls": dict(sorted(by_tls.items())),
            "auth_failures": failures, "late": entry["late"] if entry else 0}


def top_legacy(agg: Aggregates, now: datetime, limit: int) -> list[tuple[str, int]]:
    until = hour_of(now) + 1
    totals = [(s, sum(n for _, n in _in(per, until - WINDOW_HOURS, until)))
              for s, per in agg.legacy.items()]
    return sorted(((s, n) for s, n in totals if n), key=lambda r: (-r[1], r[0]))[:limit]


def top_failures(table: Mapping[int, Mapping[str, int]], now: datetime,
                 limit: int) -> list[tuple[str, int]]:
    until = hour_of(now) + 1
    totals: dict[str, int] = {}
    for _, per in _in(table, until - WINDOW_HOURS, until):
        for key, n in per.items():
            totals[key] = totals.get(key, 0) + n
    return sorted(totals.items(), key=lambda r: (-r[1], r[0]))[:limit]


def merge_top(parts: Iterable[Iterable[tuple[str, int]]], limit: int) -> list[tuple[str, int]]:
    totals: dict[str, int] = {}
    for part in parts:
        for key, n in part:
            totals[key] = totals.get(key, 0) + n
    return sorted(totals.items(), key=lambda r: (-r[1], r[0]))[:limit]

