"""Run a few raw lines through the normalizer; used by the per-dialect test tables."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pipeline.normalize.dialects.base import NormalizeConfig
from pipeline.normalize.normalizer import Normalizer, normalize_lines
from schemas.rejection import Rejection

RECEIVED = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def run(lines: list[str], host: str | None = None, **config: Any) -> tuple[
        list[dict[str, Any]], list[Rejection]]:
    normalizer = Normalizer(NormalizeConfig(**config))
    key = host.encode() if host else None
    events, rejections = [], []
    for out in normalize_lines(((key, line.encode()) for line in lines), normalizer, RECEIVED):
        events += [e.model_dump(mode="json") for e in out.events]
        rejections += out.rejections
    return events, rejections


def pick(event: dict[str, Any], *fields: str) -> tuple[Any, ...]:
    return tuple(event[f] for f in fields)
