"""`smtp-auth normalize` on several cores writes exactly what one pass writes: for every
dialect, with chunk boundaries inside sessions, with warm-ups too short (the checked guess
fails and the chunk is redone), with dead letters, and through the command itself."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.normalize import parallel
from pipeline.normalize.dialects import BY_NAME
from pipeline.normalize.dialects.base import NormalizeConfig
from pipeline.normalize.normalizer import normalize_lines
from pipeline.synthetic import LogGenerator
from tests.helpers import ROOT

RECEIVED = datetime(2026, 11, 28, 12, tzinfo=UTC)
START = datetime(2026, 11, 27, 9, tzinfo=UTC)


def options(keyed: bool = True) -> parallel.Options:
    return parallel.Options(NormalizeConfig(default_domain="example.org"), 16384, None, None,
                            RECEIVED, None, keyed)


def sequential(path: Path, opts: parallel.Options) -> tuple[bytes, str]:
    events, rejections = io.BytesIO(), io.StringIO()
    normalizer = opts.normalizer()
    with path.open("rb") as f:
        for number, raw in enumerate(f):  # line by line, through feed(): the reference
            key, _, message = raw.rstrip(b"\r\n").partition(b"\t")
            parallel.render(normalizer.feed(message, number, RECEIVED, key=key), events,
                            rejections)
    parallel.render(normalizer.expire(None), events, rejections)
    return events.getvalue(), rejections.getvalue()


def in_parallel(path: Path, opts: parallel.Options, jobs: int,
                warm_up: int) -> tuple[bytes, str, parallel.Report]:
    events, rejections = io.BytesIO(), io.StringIO()
    report = parallel.normalize_file(str(path), path.stat().st_size, opts, jobs, events,
                                     rejections, warm_up)
    return events.getvalue(), rejections.getvalue(), report


def write_log(path: Path, dialect: str, sessions: int, seed: int = 5, junk: bool = True) -> int:
    lines, truth = LogGenerator(dialect, seed, accounts=30).log(sessions, START, 0.7)
    bad_lines = [
        "Nov 27 10:00:00 mx1 postfix/smtpd[1]: warning: unknown[192.0.2.1]: SASL LOGIN"
        " authentication failed: \x00garbage", '{"event_id": "x", "kind": "submission"}',
        "Nov 27 10:00:01 mx1 postfix/qmgr[5]: ABCDE12: from=<a@b.example>, garbage"]
    body = [f"{server}\t{text}" for server, text in lines]
    for n, bad in enumerate(bad_lines if junk else []):  # dead letters mid-file too
        body.insert(len(body) * (n + 1) // 4, f"mx1.example.net\t{bad}")
    path.write_text("\n".join(body) + "\n")
    return len(truth)


@pytest.mark.parametrize("dialect", sorted(BY_NAME))
def test_every_dialect_same_output_with_sessions_cut_at_chunk_boundaries(tmp_path, dialect):
    path = tmp_path / f"{dialect}.log"
    expected_events = write_log(path, dialect, 400)
    want = sequential(path, options())
    assert want[0].count(b"\n") == expected_events + 1  # + the junk's one real SASL failure
    assert want[1].count("\n") == 2
    for jobs, warm_up in ((4, 1 << 20), (5, 300), (3, 0)):
        events, rejections, report = in_parallel(path, options(), jobs, warm_up)
        assert (events, rejections) == want, (jobs, warm_up, report)
        assert report.chunks == jobs


def test_a_too_short_warm_up_is_detected_and_the_chunk_redone(tmp_path):
    path = tmp_path / "postfix.log"
    write_log(path, "postfix", 600, junk=False)
    want = sequential(path, options())
    events, rejections, report = in_parallel(path, options(), 4, 0)
    assert report.redone >= 1  # sessions open across the cuts: the empty guess was wrong
    assert (events, rejections) == want
    _, _, warm = in_parallel(path, options(), 4, 1 << 20)
    assert warm.redone == 0  # with the whole previous chunk as warm-up every guess holds
    # A quiet server's open connection (a failed login, no disconnect yet) is real state
    # that no warm-up sees: detected, redone, and still the same output.
    write_log(path, "postfix", 600)
    want = sequential(path, options())
    events, rejections, quiet = in_parallel(path, options(), 4, 1 << 20)
    assert quiet.redone >= 1 and (events, rejections) == want


def test_the_command_uses_every_core_for_a_large_file_and_writes_the_same(tmp_path):
    path = tmp_path / "big.log"
    lines, _ = LogGenerator("postfix", 9, accounts=200, rfc3164=True).log(20_000, START, 0.2)
    text = "\n".join(t for _, t in lines) + "\n"
    path.write_text(text * max(1, parallel.MIN_PARALLEL_BYTES // len(text) + 1))
    assert path.stat().st_size >= parallel.MIN_PARALLEL_BYTES

    def run(*args: str, pipe: bool = False, native: bool = True) -> bytes:
        env = {**os.environ, "SMTP_AUTH_NATIVE_SCAN": str(native).lower()}
        command = [sys.executable, "-m", "pipeline.cli", "normalize", "--year", "2026", *args]
        with path.open("rb") as f:
            stdin = {"input": f.read()} if pipe else {"stdin": f}
            done = subprocess.run(command, **stdin, env=env, capture_output=True, cwd=ROOT,
                                  check=True, timeout=600)
        return done.stdout

    one = run("--jobs", "1")
    assert one.count(b"\n") > 1000
    assert run("--jobs", "2") == one
    assert run("--jobs", "2", native=False) == one  # the pure-Python scanner
    assert run(pipe=True) == one  # a pipe, not a file: read as a stream
    reference = io.BytesIO()
    normalizer = options(keyed=False).normalizer()
    normalizer.year = 2026
    with path.open("rb") as f:
        for outcome in normalize_lines(((None, raw.rstrip(b"\n")) for raw in f), normalizer,
                                       RECEIVED):
            parallel.render(outcome, reference, io.StringIO())
    assert reference.getvalue() == one  # line by line through feed()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([0, 1, 99, parallel.BLOCK_BYTES - 1, parallel.BLOCK_BYTES,
                                 parallel.BLOCK_BYTES + 7, 3 * parallel.BLOCK_BYTES]),
                max_size=6), st.booleans())
def test_a_stream_is_cut_into_blocks_of_whole_lines(lengths, line_end):
    data = b"\n".join(b"x" * n for n in lengths) + (b"\n" if line_end else b"")
    blocks = list(parallel.stream_blocks(io.BytesIO(data)))
    assert b"".join(block for _, block in blocks) == data
    assert [base for base, _ in blocks] == [sum(len(b) for _, b in blocks[:i])
                                            for i in range(len(blocks))]
    assert all(block.endswith(b"\n") for _, block in blocks[:-1])
