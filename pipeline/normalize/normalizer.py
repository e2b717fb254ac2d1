"""normalize: raw messages → canonical events, dead letters, and the inputs safe to commit.

Pure and synchronous: the faust agent and the `smtp-auth normalize` command both drive it.
State is per server and dialect, bounded by the session timeout and the pending limit.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from itertools import compress
from typing import TYPE_CHECKING

from pipeline.ingest.envelope import Undecodable, decode
from pipeline.ingest.scan import Scanner, contains_any, scanner
from pipeline.ingest.syslog import SyslogLine, clean, from_header, parse_syslog, year_key
from pipeline.normalize.dialects import BY_NAME, DIALECTS, detect
from pipeline.normalize.dialects.base import (
    Dialect,
    Invalid,
    NormalizeConfig,
    Sessions,
    Step,
    Token,
)
from pipeline.normalize.outcome import Copy, Origin, Outcome
from schemas.event import AuthEvent
from schemas.rejection import RAW_EXCERPT, Rejection, Stage

if TYPE_CHECKING:
    from pipeline.metrics import Metrics
    from pipeline.normalize.stats import Stats

MAX_REPEAT = 10_000
_NEVER = datetime.max.replace(tzinfo=UTC)
# No mail was sent before the epoch; ClickHouse's DateTime (the aggregates) starts there.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_REPEATED = re.compile(r"message repeated (?P<n>\d{1,9}) times: \[ ?(?P<msg>.*?) ?\]$")
class Normalizer:
    def __init__(
        self,
        config: NormalizeConfig,
        max_line_bytes: int = 16384,
        forced: str | None = None,
        year: int | None = None,
        metrics: Metrics | None = None,
        native: bool = True,
        stats: Stats | None = None,
    ) -> None:
        """`native`: scan files with the Rust scanner when it is built (pipeline/ingest/scan.py).
        `stats`: tally per dialect (feed and feed_batch also attribute the lines no marker
        selects, so `seen` counts every line of a dialect)."""
        self.config = config
        self.zone = config.zone or UTC
        self.max_line_bytes = max_line_bytes
        self.forced: Dialect | None = BY_NAME[forced] if forced else None
        self.year = year
        self.metrics = metrics
        self.stats = stats
        self._sessions: dict[tuple[str, str], Sessions] = {}
        dialects = [self.forced] if self.forced else list(DIALECTS)
        self._headerless = [d.headerless for d in dialects]
        # In dialect order: the commonest first.
        self._markers = [*(m for d in dialects for m in d.markers), "message repeated",
                         "event_id"]
        self._maybe_relevant = contains_any(self._markers)
        self._native = native
        self._scanner: Scanner | None = None
        self._timeout = timedelta(seconds=config.session_timeout_seconds)
        self._deadlines: dict[tuple[str, str], datetime] = {}  # when a server's oldest is due
        self._copies: dict[Token, int] = {}  # token → copies of a folded repeat still held
        self._programs: dict[str, Dialect | None] = {}
        self._heard: dict[tuple[str, str], datetime] = {}  # receive time of a server's last line
        self._skew = timedelta(seconds=config.max_clock_skew_seconds)
        self._latest = _NEVER  # events after this are implausible: receive time + skew
        self._last_received = EARLIEST
        # Counts of lines and events, added to the metrics once per call: a metric's inc()
        # takes a lock, and per line it was a sixteenth of a worker's normalize time.
        self._tally: dict[tuple[str, str], int] = {}
        self._event_tally: dict[tuple[str, str], int] = {}

    def _detect(self, program: str) -> Dialect | None:
        try:
            return self._programs[program]
        except KeyError:
            if len(self._programs) > 10_000:  # bounded: program tags come from the input
                self._programs.clear()
            found = self._programs[program] = detect(program)
            return found

    def feed(self, raw: bytes, token: Token, received: datetime,
             origin: Origin | None = None, key: bytes | None = None) -> Outcome:
        """`key` is the Kafka key: the server host, for log lines that do not name it."""
        text = raw.decode("utf-8", errors="replace") if len(raw) <= self.max_line_bytes else None
        out = Outcome([], [], [])
        self._received(received)
        if text is not None and not self._maybe_relevant(text):
            # The cheap path for most of a mail log: no dialect could care about this line.
            if self.metrics is not None:
                self._count("none", "skipped")
            if self.stats is not None:
                self.stats.skipped(self._attribute(raw, text, received, key))
            out.released.append(token)
        else:
            self._feed_text(raw, text, token, received, origin, key, out)
        self._publish()
        return out

    def feed_batch(self, items: Iterable[tuple[Token, bytes | None, bytes]],
                   received: datetime, origin: Callable[[Token], Origin] | None = None
                   ) -> Outcome:
        """(token, key, raw) in order → feed_messages() of them."""
        batch = list(items)
        return self.feed_messages([t for t, _, _ in batch], [k for _, k, _ in batch],
                                  [r for _, _, r in batch], received, origin)

    def feed_messages(self, tokens: Sequence[Token], keys: Sequence[bytes | None],
                      raws: list[bytes | None], received: datetime,
                      origin: Callable[[Token], Origin] | None = None) -> Outcome:
        """A Kafka fetch: message n is `raws[n]` (None as empty), its key `keys[n]`, its
        token `tokens[n]` → what feeding them one by one gives, gathered: the same events
        and dead letters in the same order, the same tokens released (the unselected ones
        first). The messages no dialect could care about never reach Python
        (pipeline/ingest/scan.py). `origin` names a token's input in its dead letters."""
        if self._scanner is None:
            self._scanner = scanner(self._markers, self.max_line_bytes, self._native)
        unselected, kept = self._scanner.scan_messages(raws)
        out = Outcome([], [], list(compress(tokens, unselected)))
        self._received(received)
        if self.stats is not None:
            for index in compress(range(len(raws)), unselected):
                raw = raws[index] or b""
                self.stats.skipped(self._attribute(
                    raw, raw.decode("utf-8", errors="replace"), received, keys[index]))
        zone, year, limit = self.zone, year_key(received, self.year), self.max_line_bytes
        for index, fields in kept:
            raw, token = raws[index] or b"", tokens[index]
            where = None if origin is None else origin(token)
            if fields is not None and (line := from_header(fields, zone, year)) is not None:
                self._feed_line(line, raw, token, received, where, out)
                continue
            text = raw.decode("utf-8", errors="replace") if len(raw) <= limit else None
            self._feed_text(raw, text, token, received, where, keys[index], out)
        if len(raws) > len(kept):
            self._count("none", "skipped", len(raws) - len(kept))
        self._publish()
        return out

    def feed_block(self, block: bytes, base: int, received: datetime,
                   key: bytes | None = None) -> Outcome:
        """Whole lines of a file, each identified by `base` + its offset in `block` → what
        feeding them one by one gives, gathered; `key` as for feed(). The lines no dialect
        could care about never reach Python (pipeline/ingest/scan.py). Files are not acknowledged,
        so `released` stays empty."""
        if self._scanner is None:
            self._scanner = scanner(self._markers, self.max_line_bytes, self._native)
        lines, found = self._scanner.scan(block)
        out = Outcome([], [], [])
        self._received(received)
        zone, year = self.zone, year_key(received, self.year)
        for offset, raw, fields in found:
            if fields is not None and (line := from_header(fields, zone, year)) is not None:
                self._feed_line(line, raw, base + offset, received, None, out)
                continue
            text = raw.decode("utf-8", errors="replace") if len(raw) <= self.max_line_bytes \
                else None
            self._feed_text(raw, text, base + offset, received, None, key, out)
        if self.metrics is not None:
            self._count("none", "skipped", lines - len(found))
        out.released.clear()
        self._publish()
        return out

    def _feed_text(self, raw: bytes, text: str | None, token: Token, received: datetime,
                   origin: Origin | None, key: bytes | None, out: Outcome) -> None:
        try:
            decoded = self._decode(raw, text, received, key)
        except Exception as exc:  # a decoder bug dead-letters the line, no more
            decoded = Undecodable("decoder_error", f"{type(exc).__name__}: {exc}"[:500])
        if isinstance(decoded, SyslogLine):
            self._feed_line(decoded, raw, token, received, origin, out)
        elif isinstance(decoded, AuthEvent):
            self._screen([decoded], out)
            out.released.append(token)
            self._count("json", "event")
        else:
            out.rejections.append(self._reject(raw, received, origin, "decode", None,
                                               decoded.reason, decoded.detail))
            out.released.append(token)
            source = "json" if raw[:1] == b"{" else "unknown"
            self._count(source, "rejected")
            if self.stats is not None:
                self.stats.rejected(source, decoded.reason, text or "")

    def _decode(self, raw: bytes, text: str | None, received: datetime,
                key: bytes | None) -> SyslogLine | AuthEvent | Undecodable:
        if text is not None:
            text = clean(text)
        if text is not None and text[:1] != "{":
            # The common case, straight to the syslog header (decode() below would try the
            # same first); anything else takes the general path.
            line = parse_syslog(text.strip(), received, self.zone, self.year)
            if line is not None:
                return line
        host = key.decode("utf-8", errors="replace") if key else None
        return decode(raw, received, self.zone, self.max_line_bytes, self.year, host,
                      self._headerless, text)

    def _feed_line(self, line: SyslogLine, raw: bytes, token: Token, received: datetime,
                   origin: Origin | None, out: Outcome) -> None:
        ts, host, program, _, message, _ = line
        if "#011" in message:  # rsyslog's escape for a TAB
            message = message.replace("#011", "\t")
            line = line._replace(message=message)
        dialect = self.forced or self._programs.get(program) or self._detect(program)
        if dialect is None:
            out.released.append(token)
            self._count("none", "skipped")
            return
        key = (host, dialect.name)
        self._heard[key] = received
        sessions = self._sessions.get(key)
        if sessions is None:
            sessions = self._sessions[key] = dialect.sessions(host, self.config)
        repeated = _REPEATED.match(message) if "message repeated" in message else None
        try:
            if repeated is None:
                step = sessions.feed(line, token)
            else:
                step = self._feed_repeats(sessions, line, repeated, token)
        except Exception as exc:
            step = self._recover(key, sessions, token, exc)
        if not step.skipped:
            self._expire_due(key, sessions, ts, step)
        self._merge(step, out)
        for invalid in step.invalid:
            out.rejections.append(self._reject(raw, received, origin, "parse", dialect.name,
                                               invalid.reason, invalid.detail))
            if self.metrics is not None:
                self.metrics.dead_letters.labels(dialect.name, invalid.reason).inc()
        if self.metrics is not None:
            self._count(dialect.name, "rejected" if step.invalid else
                        "skipped" if step.skipped else "parsed")
        if self.stats is not None:
            self.stats.line(dialect.name, step.skipped, (i.reason for i in step.invalid),
                            message)

    def _attribute(self, raw: bytes, text: str, received: datetime, key: bytes | None) -> str:
        """The dialect of a line no marker selected (only for stats: it costs a decode)."""
        try:
            decoded = self._decode(raw, text, received, key)
        except Exception:  # a tally must not fail the run
            return "unknown"
        if not isinstance(decoded, SyslogLine):
            return "unknown"
        dialect = self.forced or self._detect(decoded.program)
        return dialect.name if dialect else "none"

    def _expire_due(self, key: tuple[str, str], sessions: Sessions, ts: datetime,
                    step: Step) -> None:
        """Expire by event time exactly when the oldest pending entry is due (or the server
        holds too many): as if checked on every line, yet one call per timeout rather than
        one per line. The deadline is kept, and may be early when that entry has completed
        since; an early call expires nothing and sets the next deadline."""
        pending = sessions.pending()
        if not pending:
            # Nothing open: forgetting the deadline changes no output, and makes an idle
            # server's state equal a fresh one's (pipeline/normalize/parallel.py compares states).
            self._deadlines.pop(key, None)
            return
        deadline = self._deadlines.get(key)
        if deadline is None:
            deadline = self._deadline(sessions)
        if ts >= deadline or pending > self.config.max_pending_sessions:
            step.extend(sessions.expire(ts))
            deadline = self._deadline(sessions)
        self._deadlines[key] = deadline

    def _deadline(self, sessions: Sessions) -> datetime:
        oldest = sessions.oldest()
        try:
            return _NEVER if oldest is None else oldest + self._timeout
        except OverflowError:  # a stamp in year 9999: never due
            return _NEVER

    def _recover(self, key: tuple[str, str], sessions: Sessions, token: Token,
                 exc: Exception) -> Step:
        """A dialect raised: flush that server's state (emitting what it knew, releasing what
        it held), start afresh, and dead-letter the line. Fuzzing keeps this path unused."""
        del self._sessions[key]
        step = sessions.expire(_NEVER)
        if token not in step.released:
            step.released.append(token)
        step.invalid.append(Invalid("parser_error", f"{type(exc).__name__}: {exc}"[:500]))
        return step

    def _feed_repeats(self, sessions: Sessions, line: SyslogLine, repeated: re.Match[str],
                      token: Token) -> Step:
        """rsyslog folds N identical messages into "message repeated N times: [ msg ]": the
        previous line happened N more times. Each copy is fed as its own line (its own
        event id through `seq`); the Kafka message is released when every copy is."""
        count = int(repeated["n"])
        if count > MAX_REPEAT:
            return Step(released=[token], invalid=[Invalid(
                "repeat_too_large", f"message repeated {count} times, limit {MAX_REPEAT}")])
        self._copies[token] = count
        step = Step()
        for seq in range(1, count + 1):
            copy = line._replace(message=repeated["msg"], seq=seq)
            step.extend(sessions.feed(copy, Copy(token, seq)))
        return step

    def expire(self, now: datetime | None = None) -> Outcome:
        """Emit what timed out; `now=None` flushes everything (end of input, shutdown)."""
        out = Outcome()
        for sessions in self._sessions.values():
            self._merge(sessions.expire(now or _NEVER), out)
        self._publish()
        return out

    def expire_quiet(self, now: datetime) -> Outcome:
        """Emit the open sessions of servers that have gone quiet: no line received from them
        for the session timeout by the receive clock `now`. Event time cannot advance for a
        quiet server, so this is the only way its last sessions end; a server still sending
        (say, a replay of old logs far behind the wall clock) is left to event time."""
        out = Outcome()
        for key, sessions in self._sessions.items():
            heard = self._heard.get(key)
            if sessions.pending() and heard is not None and now - heard >= self._timeout:
                self._merge(sessions.expire(_NEVER), out)
                self._deadlines.pop(key, None)
        self._publish()
        return out

    def pending(self) -> int:
        return sum(s.pending() for s in self._sessions.values())

    # Correlation state without caches or metrics: to compare, and to continue elsewhere
    # (pipeline/normalize/parallel.py). Pickles travel between our own processes only.
    def state(self) -> tuple[dict[tuple[str, str], Sessions], dict[tuple[str, str], datetime],
                             dict[Token, int]]:
        return self._sessions, self._deadlines, self._copies

    def snapshot(self) -> bytes:
        return pickle.dumps(self.state(), protocol=pickle.HIGHEST_PROTOCOL)

    def restore(self, snapshot: bytes) -> None:
        self._sessions, self._deadlines, self._copies = pickle.loads(snapshot)  # noqa: S301

    def _received(self, received: datetime) -> None:
        self._last_received = received
        try:
            self._latest = received + self._skew
        except OverflowError:
            self._latest = _NEVER

    def _screen(self, events: list[AuthEvent], out: Outcome) -> None:
        """Events stamped before the epoch or further ahead of their receive time than the
        allowed clock skew are dead letters: a wrong clock or a crafted stamp must not move
        the live watermarks, alert windows or ClickHouse partitions."""
        latest = self._latest
        for event in events:
            if EARLIEST <= event.ts <= latest:
                out.events.append(event)
                continue
            when = "before 1970" if event.ts < EARLIEST else (
                f"more than {self._skew.total_seconds():.0f} s after its receive time")
            out.rejections.append(self._reject(
                event.model_dump_json().encode(), self._last_received, None,
                "validate", event.source, "implausible_time",
                f"event time {event.ts.isoformat()} is {when}"))

    def _merge(self, step: Step, out: Outcome) -> None:
        if step.events:
            self._screen(step.events, out)
        if not self._copies:  # no folded repeat held: every token is a plain one
            out.released.extend(step.released)
        else:
            self._release_copies(step.released, out)
        if self.metrics is not None and step.events:
            tally = self._event_tally
            for event in step.events:
                pair = (event.source, event.kind)
                tally[pair] = tally.get(pair, 0) + 1
        if self.stats is not None:
            self.stats.events(step.events)

    def _release_copies(self, released: list[Token], out: Outcome) -> None:
        for token in released:
            if isinstance(token, Copy):
                left = self._copies[token.of] - 1
                if left:
                    self._copies[token.of] = left
                    continue
                del self._copies[token.of]
                token = token.of
            out.released.append(token)

    def _count(self, dialect: str, outcome: str, n: int = 1) -> None:
        if self.metrics is not None:
            pair = (dialect, outcome)
            self._tally[pair] = self._tally.get(pair, 0) + n

    def _publish(self) -> None:
        metrics = self.metrics
        if metrics is None:
            return
        for (dialect, outcome), n in self._tally.items():
            metrics.lines.labels(dialect, outcome).inc(n)
        for (source, kind), n in self._event_tally.items():
            metrics.events.labels(source, kind).inc(n)
        self._tally.clear()
        self._event_tally.clear()

    def _reject(self, raw: bytes, received: datetime, origin: Origin | None, stage: Stage,
                dialect: str | None, reason: str, detail: str) -> Rejection:
        if self.metrics is not None:
            self.metrics.rejections.labels(stage, reason).inc()
        origin = origin or Origin()
        return Rejection(
            reason=reason, detail=detail, stage=stage,
            dialect=dialect, raw=raw[:RAW_EXCERPT].decode("utf-8", errors="replace"),
            topic=origin.topic, partition=origin.partition, offset=origin.offset,
            received_at=received,
        )


def normalize_lines(lines: Iterable[tuple[bytes | None, bytes]], normalizer: Normalizer,
                    received: datetime) -> Iterator[Outcome]:
    """Line by line through feed() (tests use it as the reference for feed_batch and
    pipeline/normalize/parallel.py): feed every (key, line), then flush what is still pending."""
    for number, (key, raw) in enumerate(lines):
        yield normalizer.feed(raw, number, received, key=key)
    yield normalizer.expire(None)
