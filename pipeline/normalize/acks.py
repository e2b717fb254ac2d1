"""Kafka offsets leave in order: the commit discipline of the normalize stage."""

from __future__ import annotations

from collections.abc import Iterable


class AckOrder:
    """The raw offset safe to commit, per partition.

    A line is released when everything it contributed to has been emitted, so releases come
    out of order: a session open across fetches holds its first lines while later lines go.
    Committing only up to the oldest line still held keeps the committed offset behind every
    held line, so a restart replays each open session whole. (faust's own acking commits the
    first run of consecutive acked offsets, and its guard against an unacked head misses a
    head gap of one offset: CI once lost a message after a SIGKILL that way.)

    A fetch is fed and released as whole lists: set operations, not a call per line.
    """

    def __init__(self) -> None:
        self._held: dict[int, set[int]] = {}
        self._start: dict[int, int] = {}  # partition → the first offset fed
        self._next: dict[int, int] = {}   # partition → one past the last offset fed

    def fed(self, partition: int, offsets: list[int]) -> None:
        """Inputs entered the normalizer, in offset order (Kafka's offsets may have gaps)."""
        if not offsets:
            return
        self._held.setdefault(partition, set()).update(offsets)
        self._start.setdefault(partition, offsets[0])
        self._next[partition] = offsets[-1] + 1

    def released(self, partition: int, offsets: Iterable[int]) -> None:
        """These inputs are released (any order, once each)."""
        held = self._held.get(partition)
        if held:
            held.difference_update(offsets)

    def safe(self, partition: int) -> int | None:
        """The offset to commit: the oldest line still held, or one past the last line fed
        when none is; None while not even the first line fed is free."""
        start = self._start.get(partition)
        if start is None:
            return None
        held = self._held[partition]
        safe = min(held) if held else self._next[partition]
        return safe if safe > start else None

    def forget(self, partition: int) -> None:
        """The partition went to another worker, which replays what was not committed."""
        self._held.pop(partition, None)
        self._start.pop(partition, None)
        self._next.pop(partition, None)

    def held(self) -> int:
        return sum(len(h) for h in self._held.values())
