"""Normalize a large log file on several cores, with output identical to one sequential pass.

The file is cut into chunks at line boundaries. A worker starts a little before its chunk
and feeds that warm-up without writing anything, so its correlation state at the chunk's
first line is, almost always, what a sequential pass would hold there. It records that
guess, normalizes its chunk, and returns the output and its true end state. The parent then
checks each guess against the previous chunk's true end state: equal → processing is
deterministic, so the chunk's output is exactly the sequential output; different (a session
older than the warm-up still open, a server that went quiet) → the parent redoes that chunk
from the true state. Speculation, checked; never an approximation.

Tokens are byte offsets, so states from different processes compare directly. States travel
between our own processes only, pickled.
"""

from __future__ import annotations

import io
import mmap
import multiprocessing
import os
import stat
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, is_dataclass
from datetime import UTC, datetime
from typing import IO, Any, Protocol

from pipeline.ingest.scan import split_lines
from pipeline.ingest.syslog import parse_syslog
from pipeline.normalize.dialects import BY_NAME
from pipeline.normalize.dialects.base import NormalizeConfig
from pipeline.normalize.normalizer import Normalizer
from pipeline.normalize.outcome import Outcome
from schemas.event import AuthEvent

MIN_PARALLEL_BYTES = 16 << 20  # below this, starting processes costs more than it saves
WARM_UP_BYTES = 8 << 20  # when the log's own stamps cannot size it; the check covers misses
WARM_UP_TIMEOUTS = 3  # warm up over this many session timeouts of the log's time


class TextOut(Protocol):
    def write(self, text: str, /) -> Any: ...


@dataclass(frozen=True, slots=True)
class Options:
    """What every process needs to normalize exactly as one pass would."""

    config: NormalizeConfig
    max_line_bytes: int
    forced: str | None
    year: int | None
    received: datetime  # one reference time for year inference, shared by all chunks
    host: bytes | None  # default key for lines that do not name their server
    keyed: bool  # "key<TAB>line" input
    native: bool = True  # the Rust scanner, when built (pipeline/ingest/scan.py)

    def normalizer(self) -> Normalizer:
        return Normalizer(self.config, self.max_line_bytes, self.forced, self.year,
                          native=self.native)


@dataclass(frozen=True, slots=True)
class _Chunk:
    path: str
    start: int
    end: int
    warm_from: int
    last: bool


@dataclass(frozen=True, slots=True)
class _Done:
    guess: Any  # comparable state at `start` after the warm-up (None for the first chunk)
    events: bytes
    rejections: str
    end_state: bytes


def render(outcome: Outcome, events: IO[bytes], rejections: TextOut) -> None:
    # The model's serializer straight to bytes: what model_dump_json() writes, without its
    # keyword handling and the str round trip (a measurable share of a whole-file run).
    if outcome.events:
        events.write(b"\n".join(map(AuthEvent.__pydantic_serializer__.to_json, outcome.events)))
        events.write(b"\n")
    for rejection in outcome.rejections:
        rejections.write(rejection.model_dump_json() + "\n")


def comparable(value: Any) -> Any:
    """A value that compares equal exactly when two correlation states are the same: plain
    data and dataclasses as they are, other objects by their attributes, order kept where
    the code depends on it (OrderedDict: expiry takes the oldest first)."""
    if value is None or isinstance(value, (str, bytes, int, float, datetime)):
        return value
    if isinstance(value, OrderedDict):
        return ("ordered", [(k, comparable(v)) for k, v in value.items()])
    if isinstance(value, dict):
        return {k: comparable(v) for k, v in value.items()}
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # a named tuple: keep its type
        return (type(value).__qualname__, [comparable(v) for v in value])
    if isinstance(value, (list, tuple)):
        return [comparable(v) for v in value]
    if is_dataclass(value):
        return value
    if callable(value) and hasattr(value, "__qualname__"):
        return value.__qualname__
    names = list(getattr(value, "__dict__", {})) or list(getattr(value, "__slots__", ()))
    return (type(value).__qualname__, {n: comparable(getattr(value, n)) for n in names})


def canonical(normalizer: Normalizer) -> Any:
    """The comparable correlation state, without servers that hold nothing a fresh state
    would not (they behave exactly like servers never seen)."""
    sessions, deadlines, copies = normalizer.state()
    kept = {}
    for (server, dialect), held in sessions.items():
        state = comparable(held)
        if held.pending() or state != comparable(BY_NAME[dialect].sessions(server,
                                                                           normalizer.config)):
            kept[(server, dialect)] = state
    return kept, comparable(deadlines), comparable(copies)


BLOCK_BYTES = 1 << 20  # per feed call: little overhead, little memory
Block = tuple[int, bytes]  # the byte offset of its first line, and whole lines


def stream_blocks(stream: IO[bytes]) -> Iterator[Block]:
    """Blocks of whole lines of a stream (stdin); the last line may lack its line end. A line
    longer than a block is gathered whole (the normalizer dead-letters it as too long)."""
    base, held = 0, []  # held: the start of a line, read but not ended yet
    while data := stream.read(BLOCK_BYTES):
        cut = data.rfind(b"\n") + 1
        if not cut:
            held.append(data)
            continue
        block = b"".join([*held, data[:cut]]) if held else data[:cut]
        yield base, block
        base += len(block)
        held = [data[cut:]] if cut < len(data) else []
    if held:
        yield base, b"".join(held)


def mapped_blocks(data: mmap.mmap, start: int, end: int) -> Iterator[Block]:
    """Blocks of the lines in [start, end) of a mapped file (`start` is a line start)."""
    while start < end:
        cut = data.find(b"\n", min(start + BLOCK_BYTES, end) - 1, end)
        stop = end if cut < 0 else cut + 1
        yield start, data[start:stop]
        start = stop


def keyed_lines(base: int, block: bytes) -> list[tuple[int, bytes | None, bytes]]:
    """`server<TAB>line` lines → (byte offset, key, line) without line ends."""
    return [(base + offset, *raw.partition(b"\t")[::2]) for offset, raw in split_lines(block)]


def feed_all(normalizer: Normalizer, blocks: Iterable[Block], options: Options,
             events: IO[bytes] | None, rejections: TextOut | None) -> None:
    """Feed every line as the sequential command does, each identified by its byte offset;
    write what comes out unless `events` is None."""
    for base, block in blocks:
        if options.keyed:
            outcome = normalizer.feed_batch(keyed_lines(base, block), options.received)
        else:
            outcome = normalizer.feed_block(block, base, options.received, options.host)
        if events is not None and rejections is not None:
            render(outcome, events, rejections)


def _run(chunk: _Chunk, options: Options, state: bytes | None = None) -> _Done:
    normalizer = options.normalizer()
    if state is not None:
        normalizer.restore(state)
    events, rejections = io.BytesIO(), io.StringIO()
    with open(chunk.path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        guess = None
        if state is None and chunk.start > 0:
            feed_all(normalizer, mapped_blocks(data, chunk.warm_from, chunk.start), options,
                     None, None)
            guess = canonical(normalizer)
        feed_all(normalizer, mapped_blocks(data, chunk.start, chunk.end), options, events,
                 rejections)
    if chunk.last:
        render(normalizer.expire(None), events, rejections)
    return _Done(guess, events.getvalue(), rejections.getvalue(), normalizer.snapshot())


def regular_file_size(fd: int) -> int | None:
    """The size of `fd` when it is a regular file (so it can be mapped), else None."""
    info = os.fstat(fd)
    return info.st_size if stat.S_ISREG(info.st_mode) else None


def chunks(path: str, size: int, jobs: int, warm_up: int = WARM_UP_BYTES) -> list[_Chunk]:
    """`jobs` chunks cut at line starts; each but the first with its warm-up range. The
    first chunk, which needs no warm-up, is longer by one warm-up: equal work per process."""
    share = (size + (jobs - 1) * warm_up) // jobs
    if share > 2 * warm_up:
        targets = [share + j * (share - warm_up) for j in range(jobs - 1)]
    else:  # a small file: even chunks, each warmed up by (at most) the one before
        targets = [size * (j + 1) // jobs for j in range(jobs - 1)]
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        starts = [0]
        for target in targets:
            cut = data.find(b"\n", max(starts[-1], target))
            if cut < 0 or cut + 1 >= size:
                break
            if cut + 1 > starts[-1]:
                starts.append(cut + 1)
        bounds = [*starts, size]
        out = []
        for j, start in enumerate(starts):
            warm = max(bounds[j - 1] if j else 0, start - warm_up)
            if 0 < warm < start:  # begin the warm-up at a line start
                warm = data.find(b"\n", warm - 1) + 1
            out.append(_Chunk(path, start, bounds[j + 1], warm, j == len(starts) - 1))
    return out


def warm_up_for(path: str, size: int, options: Options) -> int:
    """Bytes that span a few session timeouts, from the log's average rate (its first and
    last stamps); the default when those are not syslog stamps."""
    def stamp(raw: bytes) -> datetime | None:
        text = raw.decode("utf-8", "replace").strip()
        if options.keyed:
            text = text.partition("\t")[2]
        line = parse_syslog(text, options.received, options.config.zone or UTC, options.year)
        return line.ts if line else None

    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        first = stamp(data[:max(0, data.find(b"\n"))])
        last = stamp(data[data.rfind(b"\n", 0, size - 1) + 1:])
    seconds = (last - first).total_seconds() if first and last else 0.0
    if seconds <= 0:
        return WARM_UP_BYTES
    wanted = size / seconds * WARM_UP_TIMEOUTS * options.config.session_timeout_seconds
    return int(min(max(wanted, 256 << 10), 64 << 20))


@dataclass(slots=True)
class Report:
    chunks: int = 0
    redone: int = 0  # chunks whose guessed start state was wrong, normalized again


def normalize_file(path: str, size: int, options: Options, jobs: int, events: IO[bytes],
                   rejections: TextOut, warm_up: int | None = None) -> Report:
    """Normalize the regular file at `path` with `jobs` processes; write what one pass would."""
    if warm_up is None:
        warm_up = warm_up_for(path, size, options)
    plan = chunks(path, size, jobs, warm_up)
    report = Report(chunks=len(plan))
    # fork: the workers share the loaded code and need nothing but the file and the options.
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        futures: list[Future[_Done]] = [pool.submit(_run, c, options) for c in plan]
        true_state: bytes | None = None
        for chunk, future in zip(plan, futures, strict=True):
            done = future.result()
            if true_state is not None and done.guess != _canonical(true_state, options):
                done = _run(chunk, options, true_state)  # the guess was wrong: redo exactly
                report.redone += 1
            events.write(done.events)
            rejections.write(done.rejections)
            true_state = done.end_state
    return report


def _canonical(snapshot: bytes, options: Options) -> Any:
    normalizer = options.normalizer()
    normalizer.restore(snapshot)
    return canonical(normalizer)
