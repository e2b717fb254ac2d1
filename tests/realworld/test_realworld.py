"""Real-world lines of every dialect against labels written by hand (RULES.md, SOURCES.md)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from pipeline.normalize.dialects.base import NormalizeConfig
from pipeline.normalize.normalizer import Normalizer, normalize_lines
from tests.helpers import ARTIFACTS
from tests.realworld.corpus import DIALECTS, FIELDS, RELEVANT, Block, all_blocks, blocks

RECEIVED = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
BLOCKS = all_blocks()


def feed(block: Block) -> tuple[list[dict[str, Any]], list[str]]:
    normalizer = Normalizer(NormalizeConfig(), year=block.year)
    key = block.host.encode() if block.host else None
    events, dead = [], []
    for out in normalize_lines(((key, line.encode()) for line in block.lines), normalizer,
                               RECEIVED):
        events += [e.model_dump(mode="json") for e in out.events]
        dead += [r.reason for r in out.rejections]
    return events, dead


def _instant(text: str) -> str:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).isoformat()


def _got(event: dict[str, Any], label: tuple[str | None, ...] | None) -> tuple[str | None, ...]:
    ts = _instant(event["ts"]) if label is not None and label[-1] is not None else None
    return (*(event[f] for f in FIELDS[:-1]), ts)


def _want(label: tuple[str | None, ...]) -> tuple[str | None, ...]:
    return (*label[:-1], _instant(label[-1]) if label[-1] is not None else None)


@pytest.mark.parametrize("block", BLOCKS, ids=[f"{b.dialect}:{b.name}" for b in BLOCKS])
def test_block_gives_its_labels(block: Block) -> None:
    events, dead = feed(block)
    labels = block.expect + [None] * (len(events) - len(block.expect))
    got = [_got(e, label) for e, label in zip(events, labels, strict=False)]
    assert got == [_want(label) for label in block.expect], f"{block.name} from {block.source}"
    assert sorted(dead) == sorted(block.dead)


def test_every_dialect_is_covered_and_the_tier_is_large_enough() -> None:
    sizes = {}
    for dialect in DIALECTS:
        found = blocks(dialect)
        assert found, dialect
        lines = [line for b in found for line in b.lines]
        sizes[dialect] = {"blocks": len(found), "lines": len(lines),
                          "relevant": sum(1 for line in lines if RELEVANT.search(line)),
                          "events": sum(len(b.expect) for b in found),
                          "sources": len({b.source for b in found})}
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "realworld.json").write_text(json.dumps(sizes, indent=2, sort_keys=True))
    assert sum(s["relevant"] for s in sizes.values()) >= 300


def test_every_block_names_a_listed_source() -> None:
    from tests.realworld.corpus import HERE
    listed = (HERE / "SOURCES.md").read_text(encoding="utf-8")
    for block in BLOCKS:
        assert f"| {block.source} |" in listed, block.source
