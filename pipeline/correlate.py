"""Bookkeeping for multi-line sessions: which inputs are still needed by pending state.

An input is released (its Kafka offset may be committed) only when no pending entry holds it
any more, so after a crash the uncommitted lines are replayed and rebuild the same state.
"""

from __future__ import annotations

from collections.abc import Iterable

from pipeline.dialects.base import Token


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
