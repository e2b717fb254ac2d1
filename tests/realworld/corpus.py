"""Read the real-world blocks: verbatim log lines with hand-written labels (RULES.md)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).parent
DIALECTS = ("postfix", "exim", "sendmail", "exchange", "dovecot", "opensmtpd")
FIELDS = ("kind", "sender", "client_ip", "auth_mechanism", "tls_version", "ts")
# A relevant line is one the rule book has to decide on: it mentions authentication, TLS,
# a login, or is a message arrival/submission record (RULES.md).
RELEVANT = re.compile(r"auth|sasl|tls|login|LogonDenied|User Name| <= |from=<|client=|relay=|"
                      r"submission", re.IGNORECASE)


@dataclass
class Block:
    dialect: str
    name: str
    source: str
    host: str | None = None
    year: int | None = None
    lines: list[str] = field(default_factory=list)
    expect: list[tuple[str | None, ...]] = field(default_factory=list)
    dead: list[str] = field(default_factory=list)


def _label(text: str) -> tuple[str | None, ...]:
    cells = [c.strip() for c in text.split(" | ")]
    values = [None if c == "-" else c for c in cells]
    return tuple(values + [None] * (len(FIELDS) - len(values)))


def blocks(dialect: str) -> list[Block]:
    out: list[Block] = []
    mode = "lines"
    for raw in (HERE / f"{dialect}.log").read_text(encoding="utf-8").split("\n"):
        if raw.startswith("=== "):
            name, *attrs = raw[4:].split()
            opts = dict(a.split("=", 1) for a in attrs)
            out.append(Block(dialect, name, opts["source"], opts.get("host"),
                             int(opts["year"]) if "year" in opts else None))
            mode = "lines"
        elif raw == "--- expect":
            mode = "expect"
        elif raw.startswith("--- dead "):
            out[-1].dead = raw[9:].split(",")
        elif mode == "lines" and out:
            out[-1].lines.append(raw)
        elif raw.strip():
            out[-1].expect.append(_label(raw))
    for block in out:
        while block.lines and not block.lines[-1]:
            block.lines.pop()
    return out


def all_blocks() -> list[Block]:
    return [b for d in DIALECTS for b in blocks(d)]
