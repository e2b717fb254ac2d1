"""Synthetic Postfix logs with their ground truth, reproducible by seed.

Each submission is a real-looking session (connect, TLS, client=/sasl, cleanup, qmgr,
disconnect); around them: unauthenticated inbound mail, outbound deliveries, failed AUTH
attempts, and noise from other programs. The truth is written by the generator from what it
chose, never by running our parser.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

DOMAINS = ("example.com", "contoso.org", "fabrikam.net", "northwind.io")
SERVERS = ("mx1.example.net", "mx2.example.net")
TLS_MIX = (("TLSv1.3", "TLS1.3", 50), ("TLSv1.2", "TLS1.2", 35), ("TLSv1.1", "TLS1.1", 6),
           ("TLSv1", "TLS1.0", 6), (None, "unknown", 3))
CIPHERS = {"TLSv1.3": "TLS_AES_256_GCM_SHA384", "TLSv1.2": "ECDHE-RSA-AES256-GCM-SHA384",
           "TLSv1.1": "ECDHE-RSA-AES128-SHA", "TLSv1": "AES128-SHA"}
MECHANISMS = (("PLAIN", 60), ("LOGIN", 35), ("XOAUTH2", 5))
ACCOUNTS = ("scanner", "printer", "crm", "alerts", "noreply", "billing", "alice", "bob", "carol")


@dataclass(slots=True)
class Session:
    lines: list[tuple[datetime, str]] = field(default_factory=list)
    truth: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class _Account:
    name: str
    ips: tuple[str, ...]
    tls: tuple[str | None, str]
    mechanism: str


def _weighted(rng: random.Random, table: Any) -> Any:
    return rng.choices([row[:-1] if len(row) > 2 else row[0] for row in table],
                       weights=[row[-1] for row in table])[0]


class PostfixGenerator:
    def __init__(self, seed: int = 1, accounts: int = 40) -> None:
        self.rng = random.Random(seed)  # noqa: S311 - synthetic data, not security
        self._qid = 0
        self._pid = 4000
        self.accounts = [self._account(i) for i in range(accounts)]

    def _account(self, i: int) -> _Account:
        rng = self.rng
        domain = DOMAINS[i % len(DOMAINS)]
        name = f"{ACCOUNTS[i % len(ACCOUNTS)]}{i:02d}@{domain}"
        ips = tuple(
            str(ipaddress.ip_address(f"2001:db8:{i:x}::{k + 1:x}")) if rng.random() < 0.15
            else f"198.51.{i % 250}.{k + 10}"
            for k in range(rng.randint(1, 3))
        )
        return _Account(name, ips, _weighted(rng, TLS_MIX), _weighted(rng, MECHANISMS))

    def _next_qid(self) -> str:
        self._qid += 1
        return f"{0x4A0000 + self._qid:X}{self.rng.randrange(16):X}"

    def _next_pid(self) -> int:
        self._pid += self.rng.randint(1, 7)
        return self._pid

    def submission(self, start: datetime) -> Session:
        rng = self.rng
        # Skewed: a few busy accounts (scanners, apps), a long tail seen rarely, so the number
        # of distinct senders keeps growing for a while, as in a real estate.
        acct = self.accounts[int(len(self.accounts) * rng.random() ** 2)]
        server = rng.choice(SERVERS)
        ip = rng.choice(acct.ips)
        host = "unknown" if rng.random() < 0.5 else (
            f"client{ip.replace(':', '-').replace('.', '-')}.lan")
        pid, qid = self._next_pid(), self._next_qid()
        size, rcpt = rng.randint(800, 2_000_000), rng.randint(1, 5)
        label, tls = acct.tls
        session = Session()
        t = start
        smtpd = f"{server} postfix/submission/smtpd[{pid}]:"

        def add(delay: float, text: str) -> None:
            nonlocal t
            t += timedelta(milliseconds=int(delay * 1000))
            session.lines.append((t, text))

        add(0, f"{smtpd} connect from {host}[{ip}]")
        if label is not None:
            add(0.05, f"{smtpd} Anonymous TLS connection established from {host}[{ip}]: "
                      f"{label} with cipher {CIPHERS[label]} (256/256 bits)")
        add(0.2, f"{smtpd} {qid}: client={host}[{ip}], sasl_method={acct.mechanism}, "
                 f"sasl_username={acct.name}")
        submitted = t
        add(0.01, f"{server} postfix/cleanup[{pid + 1}]: {qid}: message-id=<{qid}.{pid}@{server}>")
        add(0.02, f"{server} postfix/qmgr[812]: {qid}: from=<{acct.name}>, size={size}, "
                  f"nrcpt={rcpt} (queue active)")
        add(0.3, f"{server} postfix/smtp[{pid + 2}]: {qid}: to=<r{rcpt}@remote.example>, "
                 f"relay=remote.example[203.0.113.5]:25, delay=0.4, status=sent (250 ok)")
        add(0.05, f"{smtpd} disconnect from {host}[{ip}] ehlo=2 starttls=1 auth=1 mail=1 "
                  f"rcpt={rcpt} data=1 quit=1 commands={6 + rcpt}")
        add(0.01, f"{server} postfix/qmgr[812]: {qid}: removed")
        session.truth = {
            "kind": "submission", "ts": _iso(submitted), "server": server, "source": "postfix",
            "sender": acct.name, "sender_domain": acct.name.rpartition("@")[2],
            "envelope_from": acct.name, "auth_mechanism": acct.mechanism,
            "client_ip": ip, "client_host": None if host == "unknown" else host,
            "tls_version": tls, "tls_cipher": CIPHERS.get(label or ""),
            "message_id": qid, "recipients": rcpt, "size": size,
        }
        return session

    def failure(self, start: datetime) -> Session:
        rng = self.rng
        server, pid = rng.choice(SERVERS), self._next_pid()
        ip = f"203.0.113.{rng.randint(1, 254)}"
        mech = rng.choice(("LOGIN", "PLAIN"))
        smtpd = f"{server} postfix/submission/smtpd[{pid}]:"
        t2 = start + timedelta(milliseconds=300)
        session = Session([(start, f"{smtpd} connect from unknown[{ip}]"),
                           (t2, f"{smtpd} warning: unknown[{ip}]: SASL {mech} authentication "
                                f"failed: UGFzc3dvcmQ6")])
        session.lines.append((t2 + timedelta(milliseconds=5), f"{smtpd} disconnect from "
                              f"unknown[{ip}] ehlo=1 auth=0/1 commands=1/2"))
        session.truth = {
            "kind": "auth_failure", "ts": _iso(t2), "server": server, "source": "postfix",
            "sender": None, "sender_domain": None, "envelope_from": None,
            "auth_mechanism": mech, "client_ip": ip, "client_host": None,
            "tls_version": "unknown", "tls_cipher": None, "message_id": None,
            "recipients": None, "size": None,
        }
        return session

    def noise(self, start: datetime) -> Session:
        """Inbound unauthenticated mail and other programs: never events."""
        rng = self.rng
        server, pid, qid = rng.choice(SERVERS), self._next_pid(), self._next_qid()
        smtpd = f"{server} postfix/smtpd[{pid}]:"
        ip = f"192.0.2.{rng.randint(1, 254)}"
        lines = [
            f"{smtpd} connect from mail{pid}.remote.example[{ip}]",
            f"{smtpd} {qid}: client=mail{pid}.remote.example[{ip}]",
            f"{server} postfix/qmgr[812]: {qid}: from=<news@remote.example>, size=5120, "
            f"nrcpt=1 (queue active)",
            f"{server} postfix/local[{pid + 1}]: {qid}: to=<alice@example.com>, status=sent",
            f"{smtpd} disconnect from mail{pid}.remote.example[{ip}] ehlo=1 mail=1 rcpt=1 data=1",
            f"{server} dovecot: imap-login: Login: user=<bob@example.com>, method=PLAIN",
        ]
        return Session([(start + timedelta(milliseconds=50 * i), text)
                        for i, text in enumerate(lines)])

    def sessions(self, count: int, start: datetime, spacing: float = 0.5) -> Iterator[Session]:
        """`count` submissions (plus failures and noise), `spacing` seconds apart on average."""
        t = start
        made = 0
        while made < count:
            t += timedelta(milliseconds=int(self.rng.expovariate(1 / spacing) * 1000) + 1)
            roll = self.rng.random()
            if roll < 0.08:
                yield self.failure(t)
            elif roll < 0.2:
                yield self.noise(t)
            else:
                made += 1
                yield self.submission(t)

    def log(self, count: int, start: datetime) -> tuple[list[str], list[dict[str, Any]]]:
        """A whole log, lines interleaved in time order, with its ground truth."""
        stamped: list[tuple[datetime, int, str]] = []
        truth: list[dict[str, Any]] = []
        for session in self.sessions(count, start):
            stamped.extend((ts, len(stamped), text) for ts, text in session.lines)
            if session.truth is not None:
                truth.append(session.truth)
        stamped.sort()
        return [f"{_iso(ts)} {text}" for ts, _, text in stamped], truth


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
