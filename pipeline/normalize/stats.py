"""What a log holds per dialect, for `smtp-auth normalize --stats`: lines seen, relevant
(reached the dialect's parser and were not skipped), events, dead letters by reason, and the
shapes of the relevant lines that were not understood (digits and addresses masked), so an
admin sees what their logs hold that the parsers miss."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from schemas.event import AuthEvent

MAX_SHAPES = 1000  # distinct shapes kept per dialect: bounded whatever the input
SHOWN = 10
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)*")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
_DIGITS = re.compile(r"\d+")


def shape(message: str) -> str:
    """A message with addresses and numbers masked: lines that differ only there are one."""
    text = _EMAIL.sub("<addr>", message[:500])
    text = _IPV4.sub("<ip>", _IPV6.sub("<ip>", text))
    return _DIGITS.sub("#", text)[:200]


@dataclass(slots=True)
class DialectStats:
    seen: int = 0
    relevant: int = 0
    events: int = 0
    dead: Counter[str] = field(default_factory=Counter)
    shapes: Counter[str] = field(default_factory=Counter)


class Stats:
    def __init__(self) -> None:
        self.by: dict[str, DialectStats] = {}

    def _of(self, dialect: str) -> DialectStats:
        found = self.by.get(dialect)
        if found is None:
            found = self.by[dialect] = DialectStats()
        return found

    def skipped(self, dialect: str) -> None:
        """A line no dialect marker selected, attributed to the dialect of its program."""
        self._of(dialect).seen += 1

    def line(self, dialect: str, skipped: bool, reasons: Iterable[str], message: str) -> None:
        stats = self._of(dialect)
        stats.seen += 1
        stats.relevant += not skipped
        dead = False
        for reason in reasons:
            stats.dead[reason] += 1
            dead = True
        if dead and (len(stats.shapes) < MAX_SHAPES or shape(message) in stats.shapes):
            stats.shapes[shape(message)] += 1

    def rejected(self, dialect: str, reason: str, text: str) -> None:
        """A line that could not be decoded (no header, bad JSON): seen and dead."""
        self.line(dialect, False, [reason], text)

    def events(self, events: Iterable[AuthEvent]) -> None:
        for event in events:
            self._of(event.source).events += 1

    def render(self) -> str:
        out = ["dialect     seen  relevant  events  dead letters"]
        for name in sorted(self.by):
            s = self.by[name]
            out.append(f"{name:<10} {s.seen:>5} {s.relevant:>9} {s.events:>7} "
                       f"{sum(s.dead.values()):>13}")
            for reason, count in s.dead.most_common():
                out.append(f"    dead letter {reason}: {count}")
            for text, count in s.shapes.most_common(SHOWN):
                out.append(f"    {count:>6}x {text}")
        return "\n".join(out) + "\n"
