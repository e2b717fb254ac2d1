"""`normalize --stats`: per dialect, lines seen, relevant, events, dead letters by reason and
the masked shapes of the relevant lines not understood."""

from __future__ import annotations

import subprocess
import sys

from pipeline.metrics import Metrics
from pipeline.normalize.dialects.base import NormalizeConfig
from pipeline.normalize.normalizer import Normalizer
from pipeline.normalize.stats import Stats, shape
from tests.helpers import ROOT
from tests.unit.normalize.dialect_helpers import RECEIVED

LINES = [
    "Nov 28 10:00:00 mx1 postfix/smtpd[9]: connect from unknown[203.0.113.9]",
    "Nov 28 10:00:01 mx1 postfix/smtpd[9]: warning: unknown[203.0.113.9]: SASL LOGIN "
    "authentication failed: UGFzc3dvcmQ6",
    "Nov 28 10:00:02 mx1 dovecot: submission-login: Disconnected (auth weirdness, 3 tries): "
    "user=<bob@example.com>, method=PLAIN, rip=203.0.113.10, lip=10.0.0.5",
    "Nov 28 10:00:03 mx1 dovecot: submission-login: Disconnected (auth weirdness, 4 tries): "
    "user=<eve@example.com>, method=PLAIN, rip=203.0.113.11, lip=10.0.0.5",
    "Nov 28 10:00:04 mx1 dovecot: imap-login: Login: user=<a>, method=PLAIN, rip=192.0.2.1",
    "not a log line at all",
]


def test_shapes_mask_digits_and_addresses():
    assert shape("user=<bob@example.com>, rip=203.0.113.10, lip=2001:db8::1, 3 tries") == (
        "user=<<addr>>, rip=<ip>, lip=<ip>, # tries")


def test_tally_per_dialect():
    tally, metrics = Stats(), Metrics()
    normalizer = Normalizer(NormalizeConfig(), stats=tally, metrics=metrics)
    normalizer.feed_batch([(n, None, line.encode()) for n, line in enumerate(LINES)], RECEIVED)
    normalizer.expire(None)
    postfix, dovecot = tally.by["postfix"], tally.by["dovecot"]
    assert (postfix.seen, postfix.relevant, postfix.events, sum(postfix.dead.values())) == (
        2, 1, 1, 0)
    assert (dovecot.seen, dovecot.relevant, dovecot.events) == (3, 2, 0)
    assert dovecot.dead == {"dovecot_auth_unrecognized": 2}
    assert list(dovecot.shapes.items()) == [(
        "submission-login: Disconnected (auth weirdness, # tries): user=<<addr>>, "
        "method=PLAIN, rip=<ip>, lip=<ip>", 2)]
    assert tally.by["unknown"].seen == 1
    dead = metrics.registry.get_sample_value(
        "smtp_auth_dead_letters_total", {"dialect": "dovecot",
                                         "reason": "dovecot_auth_unrecognized"})
    assert dead == 2


def _normalize(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "normalize",
         "--rejects", "/dev/null", *args], input="\n".join(LINES) + "\n", text=True,
        capture_output=True, cwd=ROOT, check=True, timeout=60)


def test_cli_writes_the_tally_to_stderr_and_the_same_events():
    plain, result = _normalize(), _normalize("--stats")
    assert result.stdout == plain.stdout and result.stdout.count("\n") == 1
    assert "dead letter dovecot_auth_unrecognized: 2" in result.stderr
    assert "2x submission-login: Disconnected (auth weirdness, # tries)" in result.stderr
