"""Synthetic MTA logs with their ground truth, reproducible by seed, for every dialect.

The generator decides each session (who, from where, which TLS and mechanism, how big) and a
per-dialect renderer writes it as that MTA logs it; the truth is written from the decision,
never by running our parser. Around submissions: failed logins, unauthenticated mail, other
programs' lines, rsyslog repeat folding.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from types import ModuleType
from typing import Any

from pipeline.synthetic import dovecot, exchange, exim, opensmtpd, postfix, sendmail
from pipeline.synthetic.base import Failure, Rendered, Submission, iso

RENDERERS: dict[str, ModuleType] = {
    "postfix": postfix, "exim": exim, "sendmail": sendmail, "exchange": exchange,
    "dovecot": dovecot, "opensmtpd": opensmtpd,
}
DOMAINS = ("example.com", "contoso.org", "fabrikam.net", "northwind.io")
SERVERS = ("mx1.example.net", "mx2.example.net")
TLS_MIX = (("TLS1.3", 50), ("TLS1.2", 35), ("TLS1.1", 6), ("TLS1.0", 6), ("none", 3))
MECHANISMS = (("PLAIN", 60), ("LOGIN", 35), ("XOAUTH2", 5))
ACCOUNTS = ("scanner", "printer", "crm", "alerts", "noreply", "billing", "alice", "bob", "carol")


class LogGenerator:
    def __init__(self, dialect: str = "postfix", seed: int = 1, accounts: int = 40,
                 repeats: bool = True, noise: bool = True, rfc3164: bool = False) -> None:
        """`noise=False`: only authenticated submissions (for comparisons with pflogsumm);
        `rfc3164`: classic year-less syslog stamps instead of RFC 3339."""
        self.dialect = dialect
        self.render = RENDERERS[dialect]
        self.rng = random.Random(seed)  # noqa: S311 - synthetic data, not security
        self.repeats = repeats
        self.noise_share = 0.2 if noise else 0.0
        self.rfc3164 = rfc3164
        self._qid = 0
        self._pid = 4000
        self.accounts = [self._account(i) for i in range(accounts)]

    def _account(self, i: int) -> tuple[str, tuple[str, ...], str, str]:
        rng = self.rng
        name = f"{ACCOUNTS[i % len(ACCOUNTS)]}{i:02d}@{DOMAINS[i % len(DOMAINS)]}"
        ips = tuple(
            str(ipaddress.ip_address(f"2001:db8:{i:x}::{k + 1:x}")) if rng.random() < 0.15
            else f"198.51.{i % 250}.{k + 10}" for k in range(rng.randint(1, 3)))
        tls = rng.choices([t for t, _ in TLS_MIX], [w for _, w in TLS_MIX])[0]
        mech = rng.choices([m for m, _ in MECHANISMS], [w for _, w in MECHANISMS])[0]
        return name, ips, tls, mech

    def _ids(self) -> tuple[int, str]:
        self._qid += 1
        self._pid += self.rng.randint(1, 7)
        return self._pid, f"{0x4A0000 + self._qid:X}{self.rng.randrange(16):X}"

    def submission(self, ts: datetime) -> Rendered:
        rng = self.rng
        # Skewed: a few busy accounts (scanners, apps), a long tail seen rarely, so the number
        # of distinct senders keeps growing for a while, as in a real estate.
        name, ips, tls, mech = self.accounts[int(len(self.accounts) * rng.random() ** 2)]
        ip = rng.choice(ips)
        host = None if rng.random() < 0.5 else f"client{ip.replace(':', '-').replace('.', '-')}.lan"
        pid, qid = self._ids()
        return self._rendered(self.render.submission, Submission(
            rng.choice(SERVERS), ts, pid, qid, name, ip, host, tls, mech,
            rng.randint(800, 2_000_000), rng.randint(1, 5)))

    @staticmethod
    def _rendered(render: Any, spec: Submission | Failure) -> Rendered:
        out: Rendered = render(spec)
        out.server = spec.server
        return out

    def failure(self, ts: datetime) -> Rendered:
        rng = self.rng
        pid, qid = self._ids()
        user = rng.choice(self.accounts)[0] if rng.random() < 0.5 else None
        return self._rendered(self.render.failure, Failure(
            rng.choice(SERVERS), ts, pid, qid, f"203.0.113.{rng.randint(1, 254)}",
            rng.choice(("LOGIN", "PLAIN")), user))

    def noise(self, ts: datetime) -> Rendered:
        pid, qid = self._ids()
        name, ips, tls, mech = self.rng.choice(self.accounts)
        return self._rendered(self.render.noise, Submission(
            self.rng.choice(SERVERS), ts, pid, qid, name, ips[0], None, tls, mech, 1, 1))

    def sessions(self, count: int, start: datetime, spacing: float = 0.5) -> Iterator[Rendered]:
        """`count` submissions (plus failures and noise), `spacing` seconds apart on average."""
        t = start
        made = 0
        while made < count:
            t += timedelta(milliseconds=int(self.rng.expovariate(1 / spacing) * 1000) + 1)
            roll = self.rng.random()
            if roll < 0.4 * self.noise_share:
                yield self._maybe_repeated(self.failure(t))
            elif roll < self.noise_share:
                yield self.noise(t)
            else:
                made += 1
                yield self.submission(t)

    def _maybe_repeated(self, failure: Rendered) -> Rendered:
        """rsyslog folds identical consecutive messages: the same failure N more times."""
        if not self.repeats or self.rng.random() > 0.2:
            return failure
        lines = [line for line in failure.lines if line[2]]
        if len(failure.truth) != 1 or not lines or self.dialect in ("postfix", "opensmtpd"):
            return failure  # their failure sessions span several lines (summary, session id)
        ts, text, _ = next(line for line in failure.lines if line[2] and line[0] == lines[-1][0])
        n = self.rng.randint(2, 4)
        head, _, message = text.partition(": ")
        failure.add(ts + timedelta(seconds=30), f"{head}: message repeated {n} times: "
                                                f"[ {message}]")
        failure.truth += [dict(failure.truth[0], ts=iso(ts + timedelta(seconds=30)))
                          for _ in range(n)]
        return failure

    def log(self, count: int, start: datetime, spacing: float = 0.5) -> tuple[
            list[tuple[str, str]], list[dict[str, Any]]]:
        """A whole log as (server, line) in time order, and its ground truth."""
        stamped: list[tuple[datetime, int, str, str]] = []
        truth: list[dict[str, Any]] = []
        for session in self.sessions(count, start, spacing):
            for ts, text, syslog in session.lines:
                line = f"{self._stamp(ts)} {text}" if syslog else text
                stamped.append((ts, len(stamped), session.server, line))
            truth.extend(session.truth)
        stamped.sort()
        return [(server, line) for _, _, server, line in stamped], truth

    def _stamp(self, ts: datetime) -> str:
        if self.rfc3164:
            return ts.strftime("%b %e %H:%M:%S")
        return iso(ts)

