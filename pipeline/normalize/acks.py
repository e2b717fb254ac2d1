"""Kafka offsets leave in order: the acknowledgement discipline of the normalize agent."""

from __future__ import annotations

import heapq
from collections import OrderedDict
from typing import Generic, TypeVar

V = TypeVar("V")


class AckOrder(Generic[V]):
    """Acknowledge inputs in offset order, per partition.

    A line is released when everything it contributed to has been emitted, so releases come
    out of order. faust commits the first run of consecutive acked offsets, and its guard
    against an unacked head misses a head gap of exactly one offset (and any gap before the
    first commit: `Consumer._new_offset` in faust-streaming). An out-of-order ack could then
    commit past a line still held by an open session, and a crash would lose that session
    (CI saw one message lost after a SIGKILL). Acking only below the oldest held offset
    keeps the committed offset behind every held line.
    """

    def __init__(self) -> None:
        self._held: dict[int, OrderedDict[int, None]] = {}
        self._ready: dict[int, list[tuple[int, V]]] = {}

    def fed(self, partition: int, offset: int) -> None:
        """An input entered the normalizer (inputs arrive in offset order per partition)."""
        self._held.setdefault(partition, OrderedDict())[offset] = None

    def released(self, partition: int, offset: int, token: V) -> list[V]:
        """The input is released; return the tokens now safe to ack, in offset order."""
        held = self._held.setdefault(partition, OrderedDict())
        held.pop(offset, None)
        ready = self._ready.setdefault(partition, [])
        heapq.heappush(ready, (offset, token))  # offsets are unique: tokens never compared
        out = []
        while ready and (not held or ready[0][0] < next(iter(held))):
            out.append(heapq.heappop(ready)[1])
        return out

    def forget(self, partition: int) -> None:
        """The partition went to another worker, which replays what was not committed."""
        self._held.pop(partition, None)
        self._ready.pop(partition, None)

    def waiting(self) -> int:
        return sum(len(r) for r in self._ready.values())
