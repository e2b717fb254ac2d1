"""decide: alert rules as pure functions over per-key state, decided by event time.

Signals arrive keyed by what a rule is about (`ip:…`, `acct:…`, `dom:…`, `snd:…`) and are
only stored; a window is judged once the watermark has passed its end, so what is decided
depends on the events, not on the order they arrived in, and a replay decides the same.

Rules (thresholds in AlertConfig):
- password_spray: one client IP failing against ≥ N distinct accounts within W minutes.
- brute_force_ip / brute_force_account: ≥ N failures from one IP / for one account in W.
- legacy_tls_spike: a closed hour's legacy-TLS messages (per domain, and `*` overall) against
  the mean + k standard deviations of the previous week's hours, with a minimum history
  and a minimum volume.
- first_legacy_tls: the first legacy-TLS message seen from an account.
Failure windows hop by a quarter of their length; a cooldown after each alert makes one
incident one alert.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from schemas.alert import Alert

State = dict[str, Any]


@dataclass(frozen=True, slots=True)
class AlertConfig:
    grace_seconds: int = 120
    spray_accounts: int = 5
    spray_window_seconds: int = 20 * 60
    brute_failures: int = 8
    brute_window_seconds: int = 2 * 3600
    failure_cooldown_seconds: int = 3600
    spike_k: float = 3.0
    spike_min_volume: int = 10
    spike_min_history_hours: int = 24
    spike_cooldown_hours: int = 6


@dataclass(frozen=True, slots=True)
class Signal:
    key: str          # ip:1.2.3.4 | acct:alice@x | dom:example.com | dom:* | snd:alice@x
    ts: float         # event time, epoch seconds
    account: str = ""
    event_id: str = ""
    source: int = -1  # the events partition and offset the signal came from (-1: unknown)
    offset: int = -1


def signals_for(event: Any) -> list[Signal]:
    """The signals one canonical event contributes (CanonicalEvent in, keyed signals out)."""
    ts = event.ts.timestamp()
    out: list[Signal] = []
    if event.kind == "auth_failure":
        account = event.sender or ""
        if event.client_ip:
            out.append(Signal(f"ip:{event.client_ip}", ts, account, event.event_id))
        if account:
            out.append(Signal(f"acct:{account}", ts, account, event.event_id))
    elif event.legacy_tls:
        out.append(Signal(f"dom:{event.sender_domain or ''}", ts, "", event.event_id))
        out.append(Signal("dom:*", ts, "", event.event_id))
        if event.sender:
            out.append(Signal(f"snd:{event.sender}", ts, event.sender, event.event_id))
    return out


def new_state() -> State:
    return {"ev": [], "ids": [], "o": {}, "done": 0.0, "cool": 0.0, "h": {}, "first": None}


def observe(state: State, signal: Signal) -> bool:
    """Store a signal (in place); False for a copy already stored or one too late.

    A signal from the worker names its event's partition and offset: one key's signals of
    one partition arrive in offset order, so a copy (a batch counted again after a crash) is
    one at or below the newest offset stored, and the state remembers one offset per
    partition instead of every event id (a hot key, such as a domain's legacy-TLS
    submissions, would otherwise carry thousands of ids in every changelog record). Signals
    without one (a bounded input, `run_alerts`) are told apart by their event ids."""
    if signal.offset >= 0:
        offsets = state.setdefault("o", {})
        source = str(signal.source)
        if signal.offset <= offsets.get(source, -1):
            return False
        if signal.ts < state["done"]:
            return False  # its window was judged already: a late event, not decided on
        offsets[source] = signal.offset
    else:
        if signal.event_id and signal.event_id in state["ids"]:
            return False
        if signal.ts < state["done"]:
            return False
        state["ids"].append(signal.event_id)
    kind = signal.key.split(":", 1)[0]
    if kind == "dom":
        hour = str(int(signal.ts // 3600))
        state["h"][hour] = state["h"].get(hour, 0) + 1
        if state["first"] is None or int(hour) < state["first"]:
            state["first"] = int(hour)
    elif kind == "snd":
        if state["first"] is None or signal.ts < state["first"]:
            state["first"] = signal.ts
    else:
        state["ev"].append([signal.ts, signal.account])
    return True


def decide(key: str, state: State, watermark: float, config: AlertConfig) -> list[Alert]:
    """Judge every window of this key that the watermark has closed (state in place)."""
    kind, _, subject = key.partition(":")
    if kind == "ip":
        alerts = _failures(key, subject, state, watermark, config, ip=True)
    elif kind == "acct":
        alerts = _failures(key, subject, state, watermark, config, ip=False)
    elif kind == "dom":
        alerts = _spike(subject, state, watermark, config)
    else:
        alerts = _first_legacy(subject, state, watermark)
    _prune(state, watermark, config)
    return alerts


def pending(state: State) -> bool:
    return bool(state["ev"] or state["h"] or (state["first"] is not None
                                               and not state.get("fired")))


def _failures(key: str, subject: str, state: State, watermark: float, config: AlertConfig,
              ip: bool) -> list[Alert]:
    rules = [("brute_force_ip" if ip else "brute_force_account", config.brute_window_seconds,
              config.brute_failures)]
    if ip:
        rules.insert(0, ("password_spray", config.spray_window_seconds, config.spray_accounts))
    events = sorted(state["ev"])
    alerts: list[Alert] = []
    for rule, size, threshold in rules:
        hop = size // 4
        starts = sorted({int(ts // hop) * hop - k * hop for ts, _ in events
                         for k in range(4)})
        cool_key = f"cool:{rule}"
        for start in starts:
            end = start + size
            if end > watermark or end <= state["done"] or start < state.get(cool_key, 0):
                continue
            inside = [(ts, account) for ts, account in events if start <= ts < end]
            value = len({a for _, a in inside}) if rule == "password_spray" else len(inside)
            if value >= threshold:
                state[cool_key] = end + config.failure_cooldown_seconds
                alerts.append(_alert(rule, subject, start, end, value, threshold, {
                    "accounts": sorted({a for _, a in inside if a})[:50],
                    "failures": len(inside)}))
    # Every window ending by the watermark is judged; a signal older than it is late.
    state["done"] = max(state["done"], watermark)
    return alerts


def _spike(domain: str, state: State, watermark: float, config: AlertConfig) -> list[Alert]:
    alerts: list[Alert] = []
    closed = int(watermark // 3600)  # hours before this one are complete
    counts = {int(h): n for h, n in state["h"].items()}
    for hour in sorted(h for h in counts if h < closed and h * 3600 >= state["done"]):
        history = [counts.get(h, 0) for h in range(max(state["first"], hour - 168), hour)]
        if len(history) < config.spike_min_history_hours or hour < state["cool"]:
            continue
        mean = sum(history) / len(history)
        sd = math.sqrt(sum((x - mean) ** 2 for x in history) / len(history))
        threshold = max(float(config.spike_min_volume), mean + config.spike_k * sd)
        value = counts[hour]
        if value >= threshold:
            state["cool"] = hour + config.spike_cooldown_hours
            alerts.append(_alert(
                "legacy_tls_spike", domain, hour * 3600, (hour + 1) * 3600, value,
                round(threshold, 3), {"history_hours": len(history)},
                round(mean, 3), round(sd, 3)))
    state["done"] = max(state["done"], closed * 3600.0)
    return alerts


def _first_legacy(sender: str, state: State, watermark: float) -> list[Alert]:
    first = state["first"]
    if first is None or state.get("fired") or first > watermark:
        return []
    state["fired"] = True
    return [_alert("first_legacy_tls", sender, first, first, 1, 1, {})]


def _prune(state: State, watermark: float, config: AlertConfig) -> None:
    horizon = watermark - config.brute_window_seconds - config.grace_seconds
    state["ev"] = [e for e in state["ev"] if e[0] >= horizon]
    keep_hour = int(watermark // 3600) - 170
    state["h"] = {h: n for h, n in state["h"].items() if int(h) >= keep_hour}
    state["ids"] = state["ids"][-2000:]  # copies arrive close to their original


_SEVERITY = {"password_spray": "critical", "brute_force_ip": "warning",
             "brute_force_account": "warning", "legacy_tls_spike": "warning",
             "first_legacy_tls": "info"}
_TEXT = {
    "password_spray": "{key} failed to log in as {value:.0f} accounts within {minutes} min",
    "brute_force_ip": "{value:.0f} failed logins from {key} within {minutes} min",
    "brute_force_account": "{value:.0f} failed logins for {key} within {minutes} min",
    "legacy_tls_spike": "legacy TLS messages for {key} in one hour: {value:.0f} "
                        "(threshold {threshold})",
    "first_legacy_tls": "{key} submitted over legacy TLS for the first time",
}


def _alert(rule: str, key: str, start: float, end: float, value: float, threshold: float,
           details: dict[str, Any], mean: float | None = None,
           sd: float | None = None) -> Alert:
    subject = key or "(none)"
    if rule == "legacy_tls_spike" and key == "*":
        subject = "all domains"
    digest = hashlib.blake2b(f"{rule}\x1f{key}\x1f{int(start)}".encode(), digest_size=12)
    return Alert(
        alert_id=digest.hexdigest(), rule=rule, severity=_SEVERITY[rule],
        key=key, ts=_dt(end), window_start=_dt(start), window_end=_dt(end), value=value,
        threshold=threshold, baseline_mean=mean, baseline_sd=sd, details=details,
        message=_TEXT[rule].format(key=subject, value=value, threshold=threshold,
                                   minutes=int((end - start) // 60)))


def _dt(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


class AlertEngine:
    """Signals in, alerts out. `store` is any mutable mapping of key → state (a faust table
    in the worker, a dict in tests); each changed state is written back as a whole, which is
    what makes a table write it to its changelog."""

    def __init__(self, config: AlertConfig, store: Any) -> None:
        self.config = config
        self.store = store
        self.sources: dict[int, float] = {}  # source partition → newest event time seen
        self.pending: set[str] = set()
        self._judged: float | None = None  # the mark of the last tick over every pending key

    @property
    def watermark(self) -> float:
        if not self.sources:
            return 0.0
        return min(self.sources.values()) - self.config.grace_seconds

    def advance(self, source: int, newest: float) -> None:
        self.sources[source] = max(self.sources.get(source, newest), newest)

    def feed(self, signal: Signal) -> list[Alert]:
        return self.feed_many(signal.key, [signal])

    def feed_many(self, key: str, signals: list[Signal]) -> list[Alert]:
        """One key's signals, stored, then its windows judged once (the watermark is the
        same for all of them)."""
        state = self.store.get(key) or new_state()
        stored = [observe(state, signal) for signal in signals]
        if not any(stored):
            return []
        self.pending.add(key)
        alerts = decide(key, state, self.watermark, self.config)
        self.store[key] = state
        return alerts

    def recheck(self, key: str) -> None:
        """A key whose windows must be judged again (its state was recovered)."""
        self.pending.add(key)
        self._judged = None

    def tick(self, watermark: float | None = None) -> list[Alert]:
        """Judge what the watermark (or an explicit one: end of input) has closed.

        Cost: ticks come from every source partition, and most leave the watermark (the
        slowest source's) where it was: then nothing can close that the last tick or a
        key's own feed did not judge already. Otherwise every pending key is looked at,
        and judged only when the new mark can change it (`_due`)."""
        mark = self.watermark if watermark is None else watermark
        if mark == self._judged:
            return []
        self._judged = mark
        alerts: list[Alert] = []
        for key in sorted(self.pending):
            state = self.store.get(key)
            if state is None:
                self.pending.discard(key)
                continue
            if not _due(key, state, mark):
                continue
            before = _material(state)
            decided = decide(key, state, mark, self.config)
            alerts += decided
            # A tick moves every open key's `done` mark; writing each of them every tick
            # would be a changelog record per open key per tick. Written when more changed:
            # after a restart an older mark only judges the same stored signals again.
            if decided or _material(state) != before:
                self.store[key] = state
            if not pending(state):
                self.pending.discard(key)
        return alerts


def _due(key: str, state: State, mark: float) -> bool:
    """Whether judging the key at `mark` can change its state. A sender's first legacy
    submission waits until the mark passes it; a domain's hourly counts change only when
    an hour closes that was not closed at its last judgement (its `done`), and what pruning
    drops moves with that hour too. Failure windows are judged every time."""
    kind = key[:key.find(":")]
    if kind == "snd":
        first = state["first"]
        return first is not None and not state.get("fired") and bool(first <= mark)
    if kind == "dom":
        return int(mark // 3600) * 3600.0 > float(state["done"])
    return True


def _material(state: State) -> tuple[Any, ...]:
    """What of a state matters beyond its `done` mark (see AlertEngine.tick)."""
    return (len(state["ev"]), len(state["h"]), len(state["ids"]), state["first"],
            state.get("fired"), state["cool"],
            sorted((k, v) for k, v in state.items() if k.startswith("cool:")))


def run_alerts(events: Any, config: AlertConfig | None = None) -> list[Alert]:
    """Decide the alerts of a whole, bounded input (tests, `smtp-auth` batch use)."""
    engine = AlertEngine(config or AlertConfig(), {})
    alerts: list[Alert] = []
    last = 0.0
    for event in events:
        last = max(last, event.ts.timestamp())
        engine.advance(0, last)
        for signal in signals_for(event):
            alerts += engine.feed(signal)
        alerts += engine.tick()
    # End of input: every window is closed.
    alerts += engine.tick(last + 2 * 86400)
    return alerts
