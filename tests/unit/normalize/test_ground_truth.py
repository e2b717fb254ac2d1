"""Per dialect: the normalized output of generated logs equals their ground truth exactly."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest

from pipeline.normalize.dialects import BY_NAME
from pipeline.normalize.dialects.base import NormalizeConfig
from pipeline.normalize.normalizer import Normalizer, normalize_lines
from pipeline.synthetic import LogGenerator

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


def _key(e):
    return (e["ts"], e["server"], e["kind"], e["client_ip"] or "", e["message_id"] or "",
            e["sender"] or "")


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("dialect", sorted(BY_NAME))
def test_generated_log_equals_ground_truth(dialect, seed):
    lines, truth = LogGenerator(dialect, seed).log(300, T0)
    normalizer = Normalizer(NormalizeConfig())
    events, rejections, released = [], [], []
    feed = ((server.encode(), line.encode()) for server, line in lines)
    for out in normalize_lines(feed, normalizer, T0):
        events += out.events
        rejections += out.rejections
        released += out.released
    assert rejections == []
    got = [e.model_dump(mode="json", exclude={"event_id"}) for e in events]
    assert sorted(got, key=_key) == sorted(truth, key=_key)
    assert len({e.event_id for e in events}) == len(events), "event ids must be distinct"
    assert sorted(released) == list(range(len(lines))), "every line released exactly once"
    assert Counter(t["kind"] for t in truth)["submission"] == 300


@pytest.mark.parametrize("dialect", sorted(BY_NAME))
def test_detection_needs_no_hint(dialect):
    """The same log normalizes identically with `--source` forced and with detection."""
    lines, _ = LogGenerator(dialect, 5).log(40, T0)
    feed = [(server.encode(), line.encode()) for server, line in lines]

    def run(forced):
        n = Normalizer(NormalizeConfig(), forced=forced)
        return [e for out in normalize_lines(feed, n, T0) for e in out.events]

    assert run(None) == run(dialect)
