"""The normalizer's own duties: counting, repeat folding, recovery from a parser bug."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import CollectorRegistry

from pipeline.metrics import Metrics
from pipeline.normalize.dialects.base import NormalizeConfig
from pipeline.normalize.dialects.postfix import PostfixSessions
from pipeline.normalize.normalizer import Normalizer

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
FAIL = ("2026-11-28T10:00:00Z mx1 postfix/smtpd[9]: warning: unknown[203.0.113.5]: SASL LOGIN "
        "authentication failed: UGFzc3dvcmQ6")


def _sample(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def test_irrelevant_lines_are_counted_per_outcome():
    metrics = Metrics(CollectorRegistry())
    n = Normalizer(NormalizeConfig(), metrics=metrics)
    for i, line in enumerate([
        b"2026-11-28T10:00:00Z mx1 kernel: eth0 link up",
        b"2026-11-28T10:00:00Z mx1 postfix/anvil[3]: statistics: max cache size 3",
        b"2026-11-28T10:00:00Z mx1 postfix/smtpd[4]: disconnect from unknown[192.0.2.1] ehlo=1",
        FAIL.encode(),
        b"garbage from=<",
    ]):
        n.feed(line, i, T0)
    assert _sample(metrics, "smtp_auth_lines_total", dialect="none", outcome="skipped") == 2
    assert _sample(metrics, "smtp_auth_lines_total", dialect="postfix", outcome="parsed") == 2
    assert _sample(metrics, "smtp_auth_rejections_total", stage="decode",
                   reason="no_syslog_header") == 1


def test_rsyslog_repeat_counts_every_copy_and_releases_once():
    n = Normalizer(NormalizeConfig())
    first = n.feed(FAIL.encode(), "a", T0)
    head, _, message = FAIL.partition("smtpd[9]: ")
    folded = n.feed(f"{head}smtpd[9]: message repeated 3 times: [ {message}]".encode(), "b", T0)
    # The 3.x summary agrees (4 attempts failed): nothing more to count.
    summary = n.feed(b"2026-11-28T10:00:01Z mx1 postfix/smtpd[9]: disconnect from "
                     b"unknown[203.0.113.5] auth=0/4", "c", T0)
    assert len(first.events) == 1 and len(folded.events) == 3 and summary.events == []
    assert len({e.event_id for e in first.events + folded.events}) == 4
    assert first.released == folded.released == []  # held by the open connection
    assert sorted(summary.released) == ["a", "b", "c"]


def test_absurd_repeat_count_is_a_dead_letter():
    n = Normalizer(NormalizeConfig())
    head, _, message = FAIL.partition("smtpd[9]: ")
    out = n.feed(f"{head}smtpd[9]: message repeated 999999 times: [ {message}]".encode(), 1, T0)
    assert [r.reason for r in out.rejections] == ["repeat_too_large"] and out.released == [1]


def test_a_parser_bug_becomes_a_dead_letter_and_state_is_flushed(monkeypatch):
    n = Normalizer(NormalizeConfig())
    n.feed(b"2026-11-28T10:00:00Z mx1 postfix/smtpd[7]: Q1234: client=h[192.0.2.1], "
           b"sasl_method=PLAIN, sasl_username=a@example.com", "held", T0)

    def boom(self, line, token):
        raise RuntimeError("bug")

    monkeypatch.setattr(PostfixSessions, "feed", boom)
    out = n.feed(FAIL.encode(), "poison", T0)
    assert [r.reason for r in out.rejections] == ["parser_error"]
    assert [e.sender for e in out.events] == ["a@example.com"]  # flushed with what was known
    assert sorted(out.released) == ["held", "poison"]
    assert n.pending() == 0


def test_absurd_field_values_are_bounded_not_fatal():
    n = Normalizer(NormalizeConfig())
    long_mech = "X" * 500
    out = n.feed(f"2026-11-28T10:00:00Z mx1 sm-mta[5]: AUTH failure ({long_mech}): x, "
                 f"user={'u' * 900}, relay=[192.0.2.1]".encode(), 1, T0)
    assert [r.reason for r in out.rejections] == []
    event = out.events[0]
    assert len(event.auth_mechanism or "") == 32 and len(event.sender or "") == 320
    summary = n.feed(b"2026-11-28T10:00:00Z mx1 postfix/smtpd[9]: disconnect from "
                     b"unknown[203.0.113.5] auth=0/99999999999999", 2, T0)
    assert len(summary.events) == 1000
    huge = n.feed(b"2026-11-28T10:00:00Z mx2 smtpd[1]: 0000000000000001 smtp connected "
                  b"address=192.0.2.9 host=h", 3, T0)
    assert huge.rejections == []


def test_shipper_artefacts_are_taken_off():
    # docker-compose prefixes (tests/realworld/SOURCES.md S22), rsyslog's #011, Exim's own
    # stamp kept inside a syslog message, ISO 8601 with microseconds and Z
    from tests.unit.normalize.dialect_helpers import run
    events, rejections = run([
        "dovecot-mailcow_1    | Jan 13 23:01:39 2359d3e20b39 dovecot: submission-login: "
        "Disconnected (auth failed, 1 attempts in 2 secs): user=<a>, method=PLAIN, "
        "rip=192.0.2.1, lip=10.0.0.1, TLS",
        "mailserver | Nov 28 10:00:05 mx exim[1]: 2026-11-28 10:00:05 #011dovecot_login "
        "authenticator failed for (pc) [203.0.113.9]:5: 535 Incorrect authentication data "
        "(set_id=b)",
        "2026-11-28T10:00:05.123456Z mx postfix/smtpd[1]: warning: unknown[203.0.113.8]: SASL "
        "LOGIN authentication failed: UGFzc3dvcmQ6",
    ])
    assert rejections == []
    assert [(e["source"], e["client_ip"], e["sender"], e["ts"]) for e in events] == [
        ("dovecot", "192.0.2.1", "a", "2026-01-13T23:01:39.000Z"),
        ("exim", "203.0.113.9", "b", "2026-11-28T10:00:05.000Z"),
        ("postfix", "203.0.113.8", None, "2026-11-28T10:00:05.123Z"),
    ]
