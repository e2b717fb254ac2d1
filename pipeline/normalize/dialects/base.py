"""What a dialect is: a name, a cheap test on the syslog program tag, and per-server session
state that turns lines into canonical events. Implementations live one per module."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, ClassVar, Protocol

from pipeline.ingest.syslog import SyslogLine
from pipeline.normalize.correlate import Token
from schemas.event import AuthEvent

if TYPE_CHECKING:
    from pipeline.settings import Settings

__all__ = [
    "Dialect",
    "Invalid",
    "NormalizeConfig",
    "Sessions",
    "Stateless",
    "StatelessDialect",
    "Step",
    "Token",
]


@dataclass(frozen=True, slots=True)
class NormalizeConfig:
    default_domain: str | None = None
    zone: tzinfo | None = None
    session_timeout_seconds: float = 300.0
    max_pending_sessions: int = 50_000
    max_clock_skew_seconds: float = 86_400.0

    @classmethod
    def from_settings(cls, settings: Settings) -> NormalizeConfig:
        return cls(settings.default_domain, settings.zone, settings.session_timeout_seconds,
                   settings.max_pending_sessions, settings.max_clock_skew_seconds)


@dataclass(frozen=True, slots=True)
class Invalid:
    """A line that is about SMTP submission but cannot be understood."""

    reason: str
    detail: str


@dataclass(slots=True)
class Step:
    """What feeding one line (or expiring state) produced."""

    events: list[AuthEvent] = field(default_factory=list)
    invalid: list[Invalid] = field(default_factory=list)
    released: list[Token] = field(default_factory=list)
    skipped: bool = False  # the line was not about submission

    def extend(self, other: Step) -> None:
        self.events.extend(other.events)
        self.invalid.extend(other.invalid)
        self.released.extend(other.released)


class Sessions(Protocol):
    """Correlation state of one dialect on one server."""

    def feed(self, line: SyslogLine, token: Token) -> Step: ...

    def expire(self, now: datetime) -> Step:
        """Emit or drop what is older than the timeout at event time `now`."""
        ...

    def pending(self) -> int: ...

    def oldest(self) -> datetime | None:
        """When the pending entry `expire` would end first started; None if none is."""
        ...


LineParser = Callable[[SyslogLine, NormalizeConfig], "list[AuthEvent] | Invalid | None"]


class Stateless:
    """Sessions for dialects whose every event stands on one line."""

    def __init__(self, parse: LineParser, config: NormalizeConfig) -> None:
        self._parse = parse
        self._config = config

    def feed(self, line: SyslogLine, token: Token) -> Step:
        result = self._parse(line, self._config)
        step = Step(released=[token])
        if result is None:
            step.skipped = True
        elif isinstance(result, Invalid):
            step.invalid.append(result)
        else:
            step.events.extend(result)
        return step

    def expire(self, now: datetime) -> Step:
        return Step()

    def pending(self) -> int:
        return 0

    def oldest(self) -> datetime | None:
        return None


class Dialect:
    """A dialect module's face to the registry: its name, its markers, the syslog program
    tags it claims (exactly, or by prefix), and its per-server state. A dialect without a log
    file format of its own keeps `headerless`; one whose events stand on one line subclasses
    `StatelessDialect` and names its `parse`."""

    name: ClassVar[str]
    markers: ClassVar[tuple[str, ...]]
    programs: ClassVar[tuple[str, ...]] = ()
    prefixes: ClassVar[tuple[str, ...]] = ()

    def claims(self, program: str) -> bool:
        return program in self.programs or program.startswith(self.prefixes)

    def headerless(self, text: str, host: str | None, zone: tzinfo) -> SyslogLine | None:
        return None  # logs only through syslog

    def sessions(self, server: str, config: NormalizeConfig) -> Sessions:
        raise NotImplementedError


class StatelessDialect(Dialect):
    @staticmethod
    def parse(line: SyslogLine, config: NormalizeConfig) -> list[AuthEvent] | Invalid | None:
        raise NotImplementedError

    def sessions(self, server: str, config: NormalizeConfig) -> Sessions:
        return Stateless(self.parse, config)
