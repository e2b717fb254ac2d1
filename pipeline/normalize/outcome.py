"""What normalizing gives back: events, dead letters, and the inputs now safe to commit."""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.normalize.dialects.base import Token
from schemas.event import AuthEvent
from schemas.rejection import Rejection


@dataclass(slots=True)
class Outcome:
    events: list[AuthEvent] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    released: list[Token] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Origin:
    """Where an input came from, for dead letters."""

    topic: str | None = None
    partition: int | None = None
    offset: int | None = None


@dataclass(frozen=True, slots=True)
class Copy:
    """Token of the n-th copy of a folded repeated line."""

    of: Token
    seq: int
