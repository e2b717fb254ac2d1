"""The dialect registry: one line per dialect module."""

from __future__ import annotations

from pipeline.normalize.dialects.base import Dialect
from pipeline.normalize.dialects.dovecot import Dovecot
from pipeline.normalize.dialects.exchange import Exchange
from pipeline.normalize.dialects.exim import Exim
from pipeline.normalize.dialects.opensmtpd import OpenSmtpd
from pipeline.normalize.dialects.postfix import Postfix
from pipeline.normalize.dialects.sendmail import Sendmail

DIALECTS: tuple[Dialect, ...] = (
    Postfix(),
    Exim(),
    Sendmail(),
    Exchange(),
    Dovecot(),
    OpenSmtpd(),
)

BY_NAME: dict[str, Dialect] = {d.name: d for d in DIALECTS}


def detect(program: str) -> Dialect | None:
    """The dialect that claims this syslog program tag, if any (cheap: prefix tests)."""
    for dialect in DIALECTS:
        if dialect.claims(program):
            return dialect
    return None
