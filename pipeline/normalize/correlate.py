"""Bookkeeping for multi-line sessions: pending entries and the inputs they still need.

An input is released (its Kafka offset may be committed) only when no pending entry holds it
any more, so after a crash the uncommitted lines are replayed and rebuild the same state.
Entries are kept in arrival order, so expiry by age and eviction by count are O(1) each.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar

Token = Hashable  # identifies one input (e.g. a Kafka message); released once fully handled

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Holds:
    """Reference counts of tokens held by pending entries."""

    __slots__ = ("_counts",)

    def __init__(self) -> None:
        self._counts: dict[Token, int] = {}

    def hold(self, tokens: Iterable[Token]) -> None:
        counts = self._counts
        for token in tokens:
            counts[token] = counts.get(token, 0) + 1

    def release(self, tokens: Iterable[Token]) -> list[Token]:
        """Drop one hold per token; return those no longer held by anything."""
        free: list[Token] = []
        counts = self._counts
        for token in tokens:
            left = counts.get(token, 0) - 1
            if left > 0:
                counts[token] = left
            else:
                counts.pop(token, None)
                free.append(token)
        return free

    def __len__(self) -> int:
        return len(self._counts)


@dataclass(slots=True)
class Entry(Generic[V]):
    value: V
    started: datetime
    tokens: list[Token] = field(default_factory=list)


class Pending(Generic[K, V]):
    """Open entries by key (pid, queue id, session id), oldest first, sharing one `Holds`."""

    def __init__(self, holds: Holds) -> None:
        # Public for a cheap len() on the hot path; change it only through the methods.
        self.entries: OrderedDict[K, Entry[V]] = OrderedDict()
        self._holds = holds

    def open(self, key: K, value: V, started: datetime, tokens: list[Token]) -> list[Token]:
        """Add (or replace) an entry; return tokens freed by the one it replaced."""
        self._holds.hold(tokens)
        old = self.entries.pop(key, None)
        self.entries[key] = Entry(value, started, tokens)
        return self._holds.release(old.tokens) if old is not None else []

    def get(self, key: K) -> Entry[V] | None:
        return self.entries.get(key)

    def oldest(self) -> datetime | None:
        """When the first entry in arrival order started: the one `expire` looks at first."""
        for entry in self.entries.values():
            return entry.started
        return None

    def attach(self, key: K, token: Token) -> bool:
        """Make an open entry hold one more input; False when there is no such entry."""
        entry = self.entries.get(key)
        if entry is None:
            return False
        self._holds.hold([token])
        entry.tokens.append(token)
        return True

    def close(self, key: K) -> tuple[Entry[V] | None, list[Token]]:
        """Remove an entry; return it and the tokens it alone held."""
        entry = self.entries.pop(key, None)
        if entry is None:
            return None, []
        return entry, self._holds.release(entry.tokens)

    def expire(self, horizon: datetime, limit: int) -> list[tuple[Entry[V], list[Token]]]:
        """Remove entries started at or before `horizon`, and the oldest beyond `limit`."""
        out = []
        entries = self.entries
        while entries:
            key, entry = next(iter(entries.items()))
            if entry.started > horizon and len(entries) <= limit:
                break
            del entries[key]
            out.append((entry, self._holds.release(entry.tokens)))
        return out

    def drop_expired(self, horizon: datetime, limit: int) -> list[Token]:
        """Like `expire`, for state that emits nothing when it ends (connections): only
        the inputs it alone held are returned, to be released."""
        return [token for _, released in self.expire(horizon, limit) for token in released]

    def __len__(self) -> int:
        return len(self.entries)
