"""Property-based fuzzing: no input can raise out of the normalizer.

Per dialect, real lines from the generator are mutated (spans replaced by random text,
digits and brackets, truncation, fields duplicated); plus raw random bytes and random JSON.
Every outcome must be well-formed: events are valid AuthEvents, each input is released at
most once, and a final flush releases everything. The number of inputs tried per dialect is
written to test-artifacts/fuzz.json.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pipeline.normalize.dialects import BY_NAME
from pipeline.normalize.dialects.base import NormalizeConfig
from pipeline.normalize.normalizer import Normalizer
from pipeline.normalize.outcome import Outcome
from pipeline.synthetic import LogGenerator
from schemas.event import AuthEvent
from tests.helpers import ARTIFACTS

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
EXAMPLES = 1500
TRIED: Counter[str] = Counter()
NASTY = st.sampled_from(["", " ", "[", "]", "<", ">", ",", "=", ":", "::", "[::1]", "\x00",
                         "999999999999999999999", "-1", "TLSv9", "é", "\u202e", "\n", "\"",
                         "sasl_username=", "from=<", "auth=3/1", "message repeated 3 times: [ ",
                         "1" * 5000, "9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00"])


def _samples(dialect: str, rfc3164: bool = False) -> list[tuple[str, str]]:
    lines, _ = LogGenerator(dialect, 9, rfc3164=rfc3164).log(30, T0)
    return lines


SAMPLES = {name: _samples(name) for name in BY_NAME}
# Classic syslog stamps: the headers the line scanners split themselves.
SAMPLES_3164 = {name: _samples(name, rfc3164=True) for name in BY_NAME}


@st.composite
def mutated(draw: st.DrawFn, dialect: str, rfc3164: bool = False) -> list[tuple[str, str]]:
    lines = (SAMPLES_3164 if rfc3164 else SAMPLES)[dialect]
    start = draw(st.integers(0, len(lines) - 1))
    window = list(lines[start:start + draw(st.integers(1, 12))])
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(window) - 1))
        server, text = window[i]
        a = draw(st.integers(0, len(text)))
        b = draw(st.integers(a, min(len(text), a + 20)))
        filler = draw(st.one_of(NASTY, st.text(max_size=12)))
        choice = draw(st.integers(0, 3))
        if choice == 0:
            text = text[:a] + filler + text[b:]
        elif choice == 1:
            text = text[:a]
        elif choice == 2:
            text = text[:b] + text[a:]
        else:
            window.insert(i, (server, text))
        window[i] = (server, text)
    return window


def _check(normalizer: Normalizer, inputs: list[tuple[bytes | None, bytes]]) -> None:
    released: list[int] = []
    for token, (key, raw) in enumerate(inputs):
        out = normalizer.feed(raw, token, T0, key=key)
        assert all(isinstance(e, AuthEvent) for e in out.events)
        # The normalizer's safety nets: each would hide a bug, so each counts as an escape.
        escapes = [r for r in out.rejections if r.reason in ("parser_error", "decoder_error")]
        assert not escapes, escapes[0].detail
        released += out.released
    released += normalizer.expire(None).released
    assert sorted(released) == list(range(len(inputs))), "each input released exactly once"


@pytest.mark.parametrize("dialect", sorted(BY_NAME))
def test_mutated_dialect_lines_never_escape(dialect):
    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(window=mutated(dialect))
    def run(window):
        TRIED[dialect] += 1
        _check(Normalizer(NormalizeConfig(max_pending_sessions=20)),
               [(s.encode(), t.encode("utf-8", "surrogatepass")) for s, t in window])

    run()
    assert TRIED[dialect] >= EXAMPLES // 2


@settings(max_examples=EXAMPLES, deadline=None, database=None)
@given(st.lists(st.tuples(st.one_of(st.none(), st.binary(max_size=20)),
                          st.binary(max_size=300)), max_size=8))
def test_random_bytes_never_escape(inputs):
    TRIED["random-bytes"] += 1
    _check(Normalizer(NormalizeConfig()), inputs)


JSONISH = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                       lambda inner: st.lists(inner, max_size=3)
                       | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=8)
KEYS = st.sampled_from(["message", "msg", "host", "hostname", "@timestamp", "timestamp",
                        "appname", "program", "pid", "procid", "event_id", "kind", "ts",
                        "server", "source", "process", "log", "client_ip", "tls_version"])


@settings(max_examples=EXAMPLES, deadline=None, database=None)
@given(st.dictionaries(KEYS, JSONISH, max_size=8))
def test_random_envelopes_never_escape(doc):
    TRIED["json"] += 1
    _check(Normalizer(NormalizeConfig()), [(None, json.dumps(doc).encode())])


@pytest.mark.parametrize("dialect", sorted(BY_NAME))
def test_huge_numbers_anywhere_never_escape(dialect):
    """Every run of digits in a real line, one at a time, made 5,000 digits long: int()
    refuses more than 4,300, so every number a parser converts must be bounded first."""
    inputs = []
    for server, text in SAMPLES[dialect]:
        for match in re.finditer(r"\d+", text):
            huge = text[:match.start()] + "7" * 5000 + text[match.end():]
            inputs.append((server.encode(), huge.encode()))
    TRIED[f"{dialect}-huge-numbers"] += len(inputs)
    _check(Normalizer(NormalizeConfig()), inputs)


STAMPS = st.one_of(
    st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5)),
                                            timezone(timedelta(hours=14))]))
    .map(lambda ts: ts.isoformat()),  # years 1 to 9999: both ends overflow in UTC
    st.tuples(st.sampled_from(["Jan", "Feb", "Nov", "Dec", "Xyz"]), st.integers(0, 99),
              st.integers(0, 99), st.integers(0, 99), st.integers(0, 99))
    .map(lambda p: f"{p[0]} {p[1]:>2} {p[2]:02}:{p[3]:02}:{p[4]:02}"),
)


RELEVANT_POSTFIX = [t for _, t in SAMPLES["postfix"] if "disconnect from" in t]
PIDS = st.one_of(st.none(), st.integers(0, 10**12).map(str),
                 st.integers(4000, 5000).map(lambda n: "9" * n))  # int() refuses > 4300 digits


@settings(max_examples=EXAMPLES, deadline=None, database=None)
@example(stamp="9999-12-31T23:59:59-05:00", pid=None, message=RELEVANT_POSTFIX[0], year=None)
@example(stamp="0001-01-01T00:00:00+05:00", pid="9" * 4500, message=RELEVANT_POSTFIX[0],
         year=9999)
@given(stamp=STAMPS, pid=PIDS,
       message=st.sampled_from(RELEVANT_POSTFIX), year=st.sampled_from(
           [None, 1, 2026, 9999]))
def test_syslog_headers_at_the_edges_never_escape(stamp, pid, message, year):
    """Stamps from year 1 to 9999 in any offset, impossible dates, pids of any length."""
    TRIED["syslog-headers"] += 1
    body = message.split(": ", 1)[-1]
    line = f"{stamp} mx1 postfix/smtpd{f'[{pid}]' if pid else ''}: {body}".encode()
    envelope = json.dumps({"@timestamp": stamp, "host": "mx1", "program": "postfix/smtpd",
                           "message": body}).encode()
    _check(Normalizer(NormalizeConfig(), year=year), [(None, line), (None, envelope)])
    block = Normalizer(NormalizeConfig(), year=year).feed_block(line + b"\n", 0, T0)
    assert all(r.reason not in ("parser_error", "decoder_error") for r in block.rejections)


@settings(max_examples=EXAMPLES, deadline=None, database=None)
@example(stamp=datetime(9999, 12, 31, 23), offset="-0500", message=SAMPLES["exim"][0][1])
@given(stamp=st.datetimes(), offset=st.from_regex(r"[+-][0-9]{4}", fullmatch=True),
       message=st.sampled_from([t.split(" ", 2)[-1] for _, t in SAMPLES["exim"]]))
def test_exim_stamps_and_offsets_at_the_edges_never_escape(stamp, offset, message):
    """Exim's own stamps with any offset (an offset of a day or more is no zone at all)."""
    TRIED["exim-stamps"] += 1
    line = f"{stamp:%Y-%m-%d %H:%M:%S} {offset} {message}".encode()
    _check(Normalizer(NormalizeConfig()), [(b"mx1", line)])


@pytest.mark.parametrize("native", [True, False])
def test_mutated_files_fed_by_blocks_equal_them_fed_line_by_line(native):
    """The file path (pipeline/ingest/scan.py, then feed_block) on mangled input writes exactly what
    feeding the same lines one by one writes."""
    @settings(max_examples=EXAMPLES // 3, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(window=st.tuples(st.sampled_from(sorted(BY_NAME)), st.booleans()).flatmap(
        lambda choice: mutated(*choice)))
    def run(window):
        TRIED["blocks-vs-lines"] += 1
        raws = [t.encode("utf-8", "surrogatepass").replace(b"\n", b" ") for _, t in window]
        one_by_one = Normalizer(NormalizeConfig(), year=2026)
        want = [one_by_one.feed(raw.rstrip(b"\r"), n, T0, key=b"mx9") for n, raw in
                enumerate(raws)] + [one_by_one.expire(None)]
        blocks = Normalizer(NormalizeConfig(), year=2026, native=native)
        got = [blocks.feed_block(b"\n".join(raws) + b"\n", 0, T0, b"mx9"), blocks.expire(None)]
        assert _rendered(got) == _rendered(want)

    run()


@pytest.mark.parametrize("native", [True, False])
def test_mutated_fetches_fed_at_once_equal_them_fed_line_by_line(native):
    """The Kafka path (scan_messages, then feed_messages) on mangled messages, tombstones
    and line ends inside messages: the same events and dead letters, in order, and the same
    inputs released, as feeding the messages one by one."""
    @settings(max_examples=EXAMPLES // 3, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(window=st.tuples(st.sampled_from(sorted(BY_NAME)), st.booleans()).flatmap(
               lambda choice: mutated(*choice)),
           odd=st.lists(st.tuples(st.integers(0, 12), st.sampled_from(
               [None, b"", b"\n", b"x" * 20_000 + b" from=<", b"\xff\xfe from=<"])), max_size=3),
           cut=st.integers(0, 14))
    def run(window, odd, cut):
        TRIED["fetches-vs-lines"] += 1
        raws: list[bytes | None] = [t.encode("utf-8", "surrogatepass") for _, t in window]
        for at, value in odd:
            raws.insert(min(at, len(raws)), value)
        keys = [b"mx9" if n % 3 else None for n in range(len(raws))]
        one_by_one = Normalizer(NormalizeConfig(), year=2026)
        want = [one_by_one.feed(raw or b"", n, T0, key=key)
                for n, (key, raw) in enumerate(zip(keys, raws, strict=True))]
        want.append(one_by_one.expire(None))
        fetches = Normalizer(NormalizeConfig(), year=2026, native=native)
        tokens = list(range(len(raws)))
        cut = min(cut, len(raws))  # two fetches: sessions open across them
        got = [fetches.feed_messages(tokens[:cut], keys[:cut], raws[:cut], T0),
               fetches.feed_messages(tokens[cut:], keys[cut:], raws[cut:], T0),
               fetches.expire(None)]
        assert _rendered(got) == _rendered(want)
        assert sorted(t for o in got for t in o.released) == sorted(
            t for o in want for t in o.released) == tokens

    run()


def _rendered(outcomes: list[Outcome]) -> list[str]:
    return [e.model_dump_json() for o in outcomes for e in o.events] + [
        r.model_dump_json(exclude={"received_at", "offset"}) for o in outcomes
        for r in o.rejections]


def teardown_module() -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / "fuzz.json"
    previous = json.loads(path.read_text()) if path.exists() else {}
    path.write_text(json.dumps({**previous, **TRIED}, indent=2, sort_keys=True))
