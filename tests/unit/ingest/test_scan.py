"""The Rust line scanner equals its pure-Python reference on arbitrary bytes, and a file fed a
block at a time (either scanner) gives what feeding it line by line gives."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.ingest.scan import ReferenceScanner, native_available, scanner
from pipeline.normalize.dialects import BY_NAME
from pipeline.normalize.dialects.base import NormalizeConfig
from pipeline.normalize.normalizer import Normalizer
from pipeline.normalize.outcome import Outcome
from pipeline.synthetic import LogGenerator

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
MARKERS = ["TLS connection established", "sasl_username=", "from=<", "authentication failed"]
needs_native = pytest.mark.skipif(
    not native_available() and not os.environ.get("CI"),
    reason="built without a Rust toolchain (CI always builds it)")


def test_ci_builds_the_native_scanner():
    if os.environ.get("CI"):
        assert native_available(), "pipeline.ingest._scan was not built: is cargo on PATH?"
    assert type(scanner(MARKERS, 100)).__module__ == (
        "pipeline.ingest._scan" if native_available() else "pipeline.ingest.scan")
    assert isinstance(scanner(MARKERS, 100, native=False), ReferenceScanner)


HEADERS = [
    ("Nov 28 02:55:13 mx1 postfix/smtpd[123]: from=<a@b>",
     ("Nov 28 02:55:13", "mx1", "postfix/smtpd", 123, "from=<a@b>")),
    ("Nov  2 02:55:13.123456 mx1 postfix/qmgr: from=<x>",
     ("Nov  2 02:55:13", "mx1", "postfix/qmgr", None, "from=<x>")),
    ("  Nov 2 02:55:13 h p[1]:  from=<  \x1c", ("Nov 2 02:55:13", "h", "p", 1, " from=<")),
    ("Abc 99 99:99:99 h p: from=<", ("Abc 99 99:99:99", "h", "p", None, "from=<")),
    ("Nov 28 02:55:13 mx1 p[12345678901]: from=<", None),  # pid of 11 digits
    ("Nov 28 02:55:13 mx1 p[1]:from=<", None),
    ("Nov 28 02:55:13 mx1 p[x]: from=<", None),
    ("Nov 28 02:55:13\tmx1 p: from=<", None),
    ("Nov 128 02:55:13 mx1 p: from=<", None),
    ("Nov 28 02:55:13. mx1 p: from=<", None),
    ("nov 28 02:55:13 mx1 p: from=<", None),
    ("<13>Nov 28 02:55:13 mx1 p: from=<", ("Nov 28 02:55:13", "mx1", "p", None, "from=<")),
    ("<13>1 Nov 28 02:55:13 mx1 p: from=<", ("Nov 28 02:55:13", "mx1", "p", None, "from=<")),
    ("<1234>Nov 28 02:55:13 mx1 p: from=<", None),  # PRI of four digits
    ("2026-11-28T02:55:13Z mx1 p: from=<", ("2026-11-28T02:55:13Z", "mx1", "p", None, "from=<")),
    ("<165>1 2026-11-28T02:55:13.123456+01:00 mx1 p[9]: from=<",
     ("2026-11-28T02:55:13.123456+01:00", "mx1", "p", 9, "from=<")),
    ("2026-11-28T02:55:13-0500 mx1 p: from=<", ("2026-11-28T02:55:13-0500", "mx1", "p", None,
                                                 "from=<")),
    ("2026-11-28T02:55:13 mx1 p: from=<", ("2026-11-28T02:55:13", "mx1", "p", None, "from=<")),
    ("2026-13-45T99:99:99 mx1 p: from=<", ("2026-13-45T99:99:99", "mx1", "p", None, "from=<")),
    ("2026-11-28T02:55:13+01:0 mx1 p: from=<", None),
    ("2026-11-28T02:55:13. mx1 p: from=<", None),
    ("2026-11-28 02:55:13 mx1 p: from=<", None),  # Exim's own stamp: the general path
    ('{"message": "from=<"}', None),
    ("Nov 28 02:55:13 mx1 p: from=< é", None),  # not ASCII
]


@needs_native
@pytest.mark.parametrize(("line", "want"), HEADERS)
def test_headers_are_split_as_the_syslog_pattern_splits_them(line, want):
    block = line.encode() + b"\n"
    for native in (True, False):
        lines, found = scanner(MARKERS, 16384, native).scan(block)
        assert (lines, found) == (1, [(0, line.encode(), want)]), native


# Lines built from the pieces the header grammar turns on, so that random draws reach deep.
PIECES = st.sampled_from([
    "Nov", "Jan", "nov", "NOV", "Dec ", " ", "  ", "\t", "\r", "\x0b", "\x1c", "\x1f", "\x00",
    "1", "28", "123", "02:55:13", "2:55:13", ".", ".123", "mx1", "mx1.example.net", "[", "]",
    "[123]", "[12345678901]", ":", ": ", "postfix/smtpd", "<13>", "{", "2026-11-28T02:55:13Z",
    "é", "\ufffd", *MARKERS, "TLS connection", "from=", "a@b.example",
    "2026", "-11-", "2026-11-28T", "T", "Z", "+", "-", "+01:00", "-0500", "+01:0", "<165>1 ",
    "2026-11-28T02:55:13.5+01:00", "2026-11-28T02:55:13Z", "9999-12-31T23:59:59-05:00",
])
LINE = st.one_of(
    st.lists(PIECES, max_size=14).map("".join).map(str.encode),
    st.lists(PIECES, max_size=14).map("".join).map(str.encode).map(lambda b: b + b"\xff\xfe"),
    st.binary(max_size=80),
)
BLOCK = st.lists(st.tuples(LINE, st.sampled_from([b"\n", b"\r\n", b"\r\r\n"])), max_size=12)


@needs_native
@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(block=BLOCK, last_line_end=st.booleans(), limit=st.sampled_from([8, 30, 16384]))
def test_native_scanner_equals_the_reference(block, last_line_end, limit):
    data = b"".join(line + end for line, end in block)
    if block and not last_line_end:
        data = data[:-len(block[-1][1])]
    native = scanner(MARKERS, limit).scan(data)
    assert native == ReferenceScanner(MARKERS, limit).scan(data)


MESSAGES = st.lists(st.one_of(st.none(), LINE, st.tuples(LINE, st.sampled_from(
    [b"\n", b"\r\n", b"\n\x1c", b"\nNov 28 02:55:13 h p: from=<"])).map(b"".join)), max_size=12)


@needs_native
@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages=MESSAGES, limit=st.sampled_from([8, 30, 16384]))
def test_native_message_scanner_equals_the_reference(messages, limit):
    """Kafka messages are taken whole: line ends inside or at the end are part of them."""
    native = scanner(MARKERS, limit).scan_messages(messages)
    assert native == ReferenceScanner(MARKERS, limit).scan_messages(messages)
    unselected, kept = native
    assert len(unselected) == len(messages)
    assert [i for i, flag in enumerate(unselected) if not flag] == [i for i, _ in kept]


def _log(dialect: str) -> bytes:
    """A generated log as a file holds it, with the odd lines files have: CRLF line ends, a
    blank line, bytes that are not UTF-8, a line beyond the size limit, no final line end."""
    lines, _ = LogGenerator(dialect, 4, rfc3164=True).log(150, T0)
    body = [text.encode() for _, text in lines]
    odd = [b"", b"Nov 28 10:00:01 mx1 postfix/qmgr[9]: ABCDE1: from=<\xff\xfe>, size=1, nrcpt=1",
           b"x" * 20_000 + b" from=<", b"Nov 28 10:00:02 mx1 postfix/smtpd[7]: disconnect from"
           b" a[192.0.2.1]\r"]
    for n, line in enumerate(odd):
        body.insert(len(body) * (n + 1) // 5, line)
    return b"\n".join(body)


def _render(outcomes: list[Outcome]) -> list[str]:
    return [e.model_dump_json() for o in outcomes for e in o.events] + [
        r.model_dump_json(exclude={"received_at"}) for o in outcomes for r in o.rejections]


@pytest.mark.parametrize("native", [True, False])
@pytest.mark.parametrize("dialect", sorted(BY_NAME))
def test_a_file_fed_by_blocks_equals_it_fed_line_by_line(dialect, native):
    data = _log(dialect)
    host = b"mx9.example.net"  # for the dialects whose files do not name their server
    one_by_one = Normalizer(NormalizeConfig(), 16384, year=2026)
    want = [one_by_one.feed(raw.rstrip(b"\r"), n, T0, key=host)
            for n, raw in enumerate(data.split(b"\n"))] + [one_by_one.expire(None)]
    assert _render(want).__len__() > 150
    blocks = Normalizer(NormalizeConfig(), 16384, year=2026, native=native)
    cut = data.index(b"\n", len(data) // 3) + 1  # two blocks: sessions open across the cut
    got = [blocks.feed_block(data[:cut], 0, T0, host), blocks.feed_block(data[cut:], cut, T0, host),
           blocks.expire(None)]
    assert _render(got) == _render(want)
    assert got[0].released == got[1].released == []  # files are not acknowledged


@pytest.mark.parametrize("line", [
    b"9999-12-31T23:59:59-05:00 mx1 postfix/smtpd[1]: disconnect from a[192.0.2.1]",
    b"0001-01-01T00:00:00+05:00 mx1 postfix/smtpd[1]: disconnect from a[192.0.2.1]",
    b"Nov 20 00:00:00 mx1 postfix/smtpd[" + b"1" * 5000 + b"]: disconnect from a[192.0.2.1]",
])
def test_stamps_beyond_the_calendar_and_huge_pids_are_dead_letters_not_crashes(line):
    for year in (None, 9999):
        normalizer = Normalizer(NormalizeConfig(), year=year)
        out = normalizer.feed(line, 0, T0)
        block = normalizer.feed_block(line + b"\n", 0, T0)
        assert [r.reason for r in out.rejections + block.rejections] == ["no_syslog_header"] * 2


@pytest.mark.parametrize("native", [True, False])
def test_markers_must_be_ascii(native):
    with pytest.raises(ValueError, match="ASCII"):
        scanner(["from=<", "é"], 100, native)
