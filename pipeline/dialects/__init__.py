"""The dialect registry: one line per dialect module."""

from __future__ import annotations

from pipeline.dialects.base import Dialect
from pipeline.dialects.postfix import Postfix

DIALECTS: tuple[Dialect, ...] = (
    Postfix(),
)

BY_NAME: dict[str, Dialect] = {d.name: d for d in DIALECTS}


def detect(program: str) -> Dialect | None:
    """The dialect that claims this syslog program tag, if any (cheap: prefix tests)."""
    for dialect in DIALECTS:
        if dialect.claims(program):
            return dialect
    return None
