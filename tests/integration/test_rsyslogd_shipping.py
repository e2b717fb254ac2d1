"""deploy/rsyslog/ for real: Debian's rsyslogd (imfile, imuxsock, omkafka) → Kafka → worker →
reports, against the generator's ground truth.

Each mail server runs its own rsyslogd with the shipped files; the test substitutes only the
site values (brokers, topic, file paths) and gives each instance its own work directory, socket
and host name, so nothing touches a system rsyslog.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pipeline.synthetic import LogGenerator
from tests import report_oracle as oracle
from tests.helpers import ROOT, consume, create_topics, wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("rsyslogd") is None,
                       reason="rsyslogd not installed (make test installs rsyslog, rsyslog-kafka)"),
]

CONF = ROOT / "deploy" / "rsyslog"
SITE = {"kafka1.example.net:9092", "smtp-auth.raw", "/var/log/exim4/mainlog",
        "/var/log/postfix.log"}


class Rsyslogd:
    """One server's rsyslogd in the foreground, with the shipped configuration."""

    def __init__(self, root: Path, host: str, bootstrap: str, topic: str) -> None:
        self.dir = root / host
        self.dir.mkdir()
        self.host = host
        self.postfix_log = self.dir / "postfix.log"
        self.exim_log = self.dir / "mainlog"
        self.socket = self.dir / "log"
        values = {"kafka1.example.net:9092": bootstrap, "smtp-auth.raw": topic,
                  "/var/log/exim4/mainlog": str(self.exim_log),
                  "/var/log/postfix.log": str(self.postfix_log)}
        includes = []
        for name in ("smtp-auth-kafka.conf", "smtp-auth-mail-facility.conf",
                     "smtp-auth-files.conf"):
            text = (CONF / name).read_text()
            for old, new in values.items():
                text = text.replace(old, new)
            (self.dir / name).write_text(text)
            includes.append(f'include(file="{self.dir / name}")')
        rendered = "".join((self.dir / n).read_text() for n in (
            "smtp-auth-kafka.conf", "smtp-auth-files.conf"))
        assert not any(site in rendered for site in SITE), "a site value was not substituted"
        main = self.dir / "rsyslog.conf"
        main.write_text("\n".join([
            f'global(workDirectory="{self.dir}" localHostname="{host}")',
            # The test's own socket instead of /dev/log (Debian's rsyslog.conf loads imuxsock).
            'module(load="imuxsock" SysSock.Use="off")',
            # The sender's stamp, not the time of receipt (the system socket's default), so
            # that lines of the past can be compared with their truth.
            f'input(type="imuxsock" Socket="{self.socket}" IgnoreTimestamp="off")',
            *includes, ""]))
        self.log = self.dir / "rsyslogd.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                ["rsyslogd", "-n", "-f", str(main), "-i", str(self.dir / "rsyslogd.pid")],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(self._listening, 30, f"rsyslogd for {host} (log {self.log})")

    def _listening(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"rsyslogd exited {self.proc.returncode}: "
                                 f"{self.log.read_text()}")
        return self.socket.exists()

    def append(self, path: Path, lines: list[str]) -> None:
        with path.open("a") as f:
            f.writelines(line + "\n" for line in lines)

    def syslog(self, lines: list[str]) -> None:
        """What syslog(3) sends to /dev/log: priority, a year-less local stamp to the second,
        tag, message; no host name."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            for line in lines:
                stamp, host, rest = line.split(" ", 2)
                assert host == self.host
                local = datetime.fromisoformat(stamp).astimezone().strftime("%b %e %H:%M:%S")
                s.sendto(f"<22>{local} {rest}".encode(), str(self.socket))  # mail.info

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)


@pytest.fixture
def rsyslogd(kafka: str, names: Any, tmp_path: Path) -> Iterator[Any]:
    made: list[Rsyslogd] = []
    create_topics(kafka, [names.env["SMTP_AUTH_TOPIC_RAW"]], partitions=2)

    def start(host: str) -> Rsyslogd:
        made.append(Rsyslogd(tmp_path, host, kafka, names.env["SMTP_AUTH_TOPIC_RAW"]))
        return made[-1]

    yield start
    for r in made:
        r.stop()


def _one_server(dialect: str, server: str, count: int, seed: int) -> tuple[
        list[str], list[dict[str, Any]]]:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    lines, truth = LogGenerator(dialect, seed).log(count, start)
    return ([line for s, line in lines if s == server],
            [t for t in truth if t["server"] == server])


def _assert_reports_equal_truth(worker: Any, truth: list[dict[str, Any]]) -> None:
    submissions = [t for t in truth if t["kind"] == "submission"]
    summary = wait_for(lambda: (s := worker.get("/api/v1/summary"))["messages"]
                       + s["auth_failures"] >= len(truth) and s, 180,
                       "the worker to report every shipped event")
    # The summary reads the events table; the reports below its rollups, which the views
    # commit after the events' part (and the reports' connection is not the sink's).
    wait_for(lambda: sum(t["messages"] for t in worker.get("/api/v1/tls?range=7d")["totals"])
             >= summary["messages"], 30, "the rollups to hold the stored events")
    assert summary["messages"] == len(submissions)
    assert summary["auth_failures"] == len(truth) - len(submissions)
    now = datetime.now(UTC)
    volume = worker.get("/api/v1/volume?range=7d&page_size=1000")
    assert volume["rows"] == oracle.volume(truth, now, "7d")["rows"]
    failures = worker.get("/api/v1/failures?range=7d")
    want = oracle.failures(truth, now, "7d")
    assert [(r["key"], r["failures"]) for r in failures["by_ip"]] == [
        (r["key"], r["failures"]) for r in want["by_ip"]]


def _shipped(kafka: str, topic: str, expected: int) -> dict[str, list[dict[str, Any]]]:
    """The raw topic per key, in partition order."""
    per_key: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in consume(kafka, topic, expected, 120):
        per_key[record.key.decode()].append(json.loads(record.value))
    return per_key


def test_rsyslogd_ships_postfix_and_exim_files(kafka, names, rsyslogd, worker_factory):
    # Two servers: mx1 runs Postfix writing its own log (postlogd's maillog_file), mx2 Exim.
    postfix, postfix_truth = _one_server("postfix", "mx1.example.net", 300, seed=21)
    exim, exim_truth = _one_server("exim", "mx2.example.net", 300, seed=22)
    mx1, mx2 = rsyslogd("mx1.example.net"), rsyslogd("mx2.example.net")
    worker = worker_factory().start()
    # Appended while everything runs, in a few writes, as an MTA does.
    for i in range(0, max(len(postfix), len(exim)), 200):
        mx1.append(mx1.postfix_log, postfix[i:i + 200])
        mx2.append(mx2.exim_log, exim[i:i + 200])
    print(f"rsyslogd shipped {len(postfix)} Postfix lines (mx1) and {len(exim)} Exim lines"
          f" (mx2): {len(postfix_truth)} + {len(exim_truth)} events in the truth")

    _assert_reports_equal_truth(worker, postfix_truth + exim_truth)
    # Every line once, each server's lines in its own order, keyed by the server.
    shipped = _shipped(kafka, names.env["SMTP_AUTH_TOPIC_RAW"], len(postfix) + len(exim))
    assert sorted(shipped) == ["mx1.example.net", "mx2.example.net"]
    assert [e["message"] for e in shipped["mx1.example.net"]] == postfix
    assert [e["message"] for e in shipped["mx2.example.net"]] == exim
    assert {e["host"] for e in shipped["mx2.example.net"]} == {"mx2.example.net"}
    dead = consume(kafka, names.env["SMTP_AUTH_TOPIC_DLQ"], 0, 5)
    assert dead == []


def test_rsyslogd_ships_the_local_mail_facility(kafka, names, rsyslogd, worker_factory):
    # Postfix logging through syslog(3): the lines reach rsyslog without a host name.
    postfix, truth = _one_server("postfix", "mx1.example.net", 150, seed=23)
    mx1 = rsyslogd("mx1.example.net")
    worker = worker_factory().start()
    mx1.syslog(postfix)
    print(f"rsyslogd shipped {len(postfix)} Postfix lines from the mail facility (mx1):"
          f" {len(truth)} events in the truth")

    shipped = _shipped(kafka, names.env["SMTP_AUTH_TOPIC_RAW"], len(postfix))
    assert list(shipped) == ["mx1.example.net"]
    assert len(shipped["mx1.example.net"]) == len(postfix), shipped["mx1.example.net"][:2]
    _assert_reports_equal_truth(worker, truth)
