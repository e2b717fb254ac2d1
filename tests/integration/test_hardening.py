"""What a hostile probe of a running worker found (issue 16), each through the real broker
and the real ClickHouse engine: the worker must stay up and exact, and keep flowing."""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pipeline.synthetic import LogGenerator
from tests.helpers import create_topics, live_truth, produce, settle_live, wait_for

pytestmark = pytest.mark.integration


def _wave(count: int, seed: int, start: datetime) -> tuple[list[tuple[bytes, bytes]],
                                                           list[dict[str, Any]]]:
    lines, truth = LogGenerator("postfix", seed, accounts=200).log(count, start, spacing=1.5)
    return [(s.encode(), t.encode()) for s, t in lines], truth


def test_old_logs_across_many_prune_and_expiry_periods(kafka, names, worker_factory):
    """Issue 16.1 and 16.5: the prune timer crashed the worker once an entry held ids older
    than the dedup horizon (any replayed log), and sessions expired by the wall clock while
    their lines were still arriving. Both periods are shortened, the log is six hours old."""
    now = datetime.now(UTC).replace(microsecond=0)
    first, truth1 = _wave(1200, 41, now - timedelta(hours=6))
    second, truth2 = _wave(1200, 42, now - timedelta(hours=1, minutes=30))
    raw = names.env["SMTP_AUTH_TOPIC_RAW"]
    create_topics(kafka, [raw], partitions=2)
    produce(kafka, raw, first)
    worker = worker_factory(SMTP_AUTH_PRUNE_INTERVAL_SECONDS="0.5",
                            SMTP_AUTH_SESSION_TIMEOUT_SECONDS="5").start()
    settle_live(worker, live_truth(truth1), "live counters equal to the first wave's truth")
    # The second wave moves event time 4.5 hours on: the first wave's ids leave the dedup
    # memory while the agent prunes, pass after pass.
    # In slices a prune period apart: the agent prunes between two batches, so each slice
    # after a pause meets a pass that is due (the worker counts a whole wave in one batch).
    passes = worker.sample("smtp_auth_counter_prunes_total")
    slices = 6
    for i in range(slices):
        produce(kafka, raw, second[i * len(second) // slices:(i + 1) * len(second) // slices])
        time.sleep(1.0)  # poll interval of the input: one prune period (0.5 s) and more
    expected = live_truth(truth1 + truth2)
    settle_live(worker, expected, "live counters equal to both waves' truth")
    wait_for(lambda: worker.sample("smtp_auth_counter_prunes_total") >= passes + 3, 60,
             "three more pruning passes")
    assert worker.sample("smtp_auth_counter_pruned_entries_total") > 0
    assert worker.alive() and worker.starts == 1
    stored = wait_for(lambda: (s := worker.get("/api/v1/summary"))["messages"]
                      == expected["messages"] and s, 60, "ClickHouse totals")
    assert stored["by_tls"] == expected["by_tls"] == worker.get("/live/v1/summary")["by_tls"]
    assert worker.get("/live/v1/summary") == expected  # still exact after the passes


def _in_live_window(truth: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    """The events the live views count: whole hours of the last 7 days (pipeline/counting)."""
    until = int(now.timestamp()) // 3600 + 1
    return [t for t in truth if until - 168 <= int(datetime.fromisoformat(
        t["ts"]).timestamp()) // 3600 < until]


def test_year_0001_future_stamps_and_300_days_of_history_flow_through(kafka, names,
                                                                      worker_factory):
    """Issue 16.2 and 16.4: a line stamped 0001-01-01 jammed the sink, a year of history in
    one batch spanned too many partitions, and future-dated events moved the watermark so
    later real events left the live view silently. Stamps before 1970 or more than the
    allowed skew ahead are dead letters; the rest flows, and live == ClickHouse == truth."""
    now = datetime.now(UTC).replace(microsecond=0)
    fail = ("{ts} mx9 postfix/submission/smtpd[9]: warning: unknown[203.0.113.5]: SASL LOGIN "
            "authentication failed: UGFzc3dvcmQ6, sasl_username=x@example.com")
    ahead = (now + timedelta(days=400)).isoformat().replace("+00:00", "Z")
    poison = [(b"mx9", fail.format(ts=ts).encode()) for ts in ("0001-01-01T00:00:00Z", ahead)]
    recent, truth2 = _wave(800, 44, now - timedelta(minutes=40))
    # 600 sessions about 11 hours apart from 300 days ago, in time order on one partition.
    lines, truth1 = LogGenerator("postfix", 43, accounts=200).log(
        600, now - timedelta(days=300), spacing=32_000)
    last = max(datetime.fromisoformat(t["ts"]) for t in truth1)
    assert now - timedelta(days=30) < last < now - timedelta(hours=2), last
    history = [(s.encode(), t.encode()) for s, t in lines]
    raw = names.env["SMTP_AUTH_TOPIC_RAW"]
    create_topics(kafka, [raw], partitions=1)
    produce(kafka, raw, [*poison[:1], *history, *poison[1:], *recent])
    worker = worker_factory(SMTP_AUTH_EVENTS_TTL_DAYS="3650",
                            SMTP_AUTH_AGGREGATE_TTL_DAYS="3650").start()
    truth = truth1 + truth2

    def live_equals_truth() -> bool:
        assert worker.alive(), worker.tail()
        return bool(worker.get("/live/v1/summary") == live_truth(
            _in_live_window(truth, datetime.now(UTC))))

    wait_for(live_equals_truth, 180, "live counters equal to the truth of the last 7 days")
    window = (now - timedelta(days=301)).strftime("%Y-%m-%dT%H:00:00Z") + "/P301DT2H"
    subs = [t for t in truth if t["kind"] == "submission"]
    by_tls = Counter(t["tls_version"] for t in subs)

    def stored() -> bool:
        totals = worker.get(f"/api/v1/tls?range={window}")["totals"]
        return {t["tls_version"]: t["messages"] for t in totals if t["messages"]} == by_tls

    wait_for(stored, 120, "ClickHouse to hold all 300 days")
    week = live_truth(_in_live_window(truth, datetime.now(UTC)))
    assert worker.get("/api/v1/summary")["by_tls"] == week["by_tls"]
    from tests.helpers import consume
    dead = [json.loads(r.value) for r in consume(kafka, names.env["SMTP_AUTH_TOPIC_DLQ"], 2, 30)]
    assert sorted(d["reason"] for d in dead) == ["implausible_time", "implausible_time"]
    assert worker.sample("smtp_auth_sink_dead_letters_total", table="events") == 0


def test_a_stalled_or_abandoned_export_frees_clickhouse(kafka, names, worker_factory, tmp_path):
    """Issue 16.3: a client that closed an export after a few hundred bytes left its
    producer blocked holding the only ClickHouse thread: reports timed out, the sink
    stopped, SIGTERM no longer stopped the worker."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time

    from tests.helpers import ROOT, http_json

    data = tmp_path / "data"
    subprocess.run([sys.executable, "bench/reports_bench.py", "--populate", str(data),
                    "--senders", "100000"], cwd=ROOT, check=True, capture_output=True)
    raw = names.env["SMTP_AUTH_TOPIC_RAW"]
    create_topics(kafka, [raw], partitions=1)
    worker = worker_factory(SMTP_AUTH_DATA_DIR=str(data),
                            SMTP_AUTH_EXPORT_WRITE_TIMEOUT_SECONDS="3").start()
    request = (f"GET /api/v1/export.csv?range=90d HTTP/1.1\r\nHost: 127.0.0.1:{worker.port}"
               "\r\nConnection: close\r\n\r\n").encode()

    def download(read: int) -> socket.socket:
        client = socket.create_connection(("127.0.0.1", worker.port), timeout=30)
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        client.sendall(request)
        got = b""
        while len(got) < read:
            got += client.recv(read - len(got))
        assert got.startswith(b"HTTP/1.1 200")
        return client

    def reports_answer() -> None:
        started = time.monotonic()
        assert http_json(worker.url("/api/v1/widget"), timeout=10)["senders"] > 0
        assert http_json(worker.url("/api/v1/tls?range=90d"), timeout=10)["totals"]
        assert time.monotonic() - started < 10

    stalled = download(600)  # stays connected, reads nothing more
    reports_answer()
    # The stalled download is cut off by the server: the socket reaches its end.
    stalled.settimeout(60)
    while stalled.recv(65536):
        pass
    stalled.close()
    for _ in range(3):
        download(600).close()  # abandoned
        reports_answer()
    # The sink still inserts: new lines reach ClickHouse.
    before = worker.get("/api/v1/summary")["messages"]
    lines, truth = _wave(200, 45, datetime.now(UTC) - timedelta(minutes=30))
    produce(kafka, raw, lines)
    added = sum(t["kind"] == "submission" for t in truth)
    wait_for(lambda: worker.get("/api/v1/summary")["messages"] == before + added, 120,
             "the new lines in ClickHouse")
    assert worker.proc is not None
    os.killpg(worker.proc.pid, signal.SIGTERM)
    assert worker.proc.wait(timeout=45) != -signal.SIGKILL


def test_http_surface_only_our_routes_for_allowed_hosts(kafka, names, worker_factory, tmp_path):
    """Issue 16.9-16.12: DNS rebinding (any Host was answered), faust's own views exposed,
    non-ASCII credentials gave a 500, /healthz said ok whatever happened, the report command
    sent no credentials, a settings error printed secrets."""
    import http.client
    import os
    import subprocess
    import sys

    from tests.helpers import ROOT

    token = "t0ken-for-the-api"
    create_topics(kafka, [names.env["SMTP_AUTH_TOPIC_RAW"]], partitions=1)
    worker = worker_factory(SMTP_AUTH_WEB_TOKEN=token).start()
    auth = {"Authorization": f"Bearer {token}"}

    def status(path: str, host: str | None = None, headers: dict[str, Any] | None = None,
               ) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", worker.port, timeout=10)
        try:
            conn.putrequest("GET", path, skip_host=True)
            conn.putheader("Host", host or f"127.0.0.1:{worker.port}")
            for key, value in (auth if headers is None else headers).items():
                conn.putheader(key, value)
            conn.endheaders()
            return conn.getresponse().status
        finally:
            conn.close()

    assert status("/api/v1/widget") == 200
    assert status("/api/v1/widget", host=f"localhost:{worker.port}") == 200
    assert status("/api/v1/widget", host=f"[::1]:{worker.port}") == 200
    for host in (f"attacker.example:{worker.port}", "attacker.example", "127.0.0.1.nip.io"):
        assert status("/api/v1/widget", host=host) == 421, host
        assert status("/live/v1/summary", host=host) == 421, host
    for path in ("/table/sender-counts/alice@example.com/", "/router/", "/graph/",
                 "/stats/", "/performance/"):
        assert status(path) == 404, path
    assert status("/api/v1/widget", headers={"Authorization": b"Bearer \xff\xfe\xe9t"}) == 401
    assert status("/api/v1/widget", headers={}) == 401
    def readiness() -> Any:
        import urllib.error
        try:
            return worker.get("/readyz")
        except urllib.error.HTTPError as exc:
            assert exc.code == 503
            return json.loads(exc.read())

    last: list[Any] = []
    ready = wait_for(lambda: (last.append(readiness()) or last[-1]["status"] == "ready")
                     and last[-1], 60, "the worker to be ready")
    assert ready["clickhouse"]["ok"] and ready["sink"]["ok"] and ready["kafka"]["ok"]
    assert ready["kafka"]["lag"]["sink"] == ready["kafka"]["lag"]["count"] == 0

    env = dict(worker.env)
    done = subprocess.run([sys.executable, "-m", "pipeline.cli", "report", "widget",
                           "--format", "json"], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["senders"] == 0
    secret = "pa55word-that-must-not-show"
    bad = dict(os.environ, SMTP_AUTH_WEB_PASSWORD=secret, SMTP_AUTH_KAFKA_SASL_PASSWORD=secret)
    done = subprocess.run([sys.executable, "-m", "pipeline.cli", "report", "widget"], env=bad,
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "web_user and web_password go together" in done.stderr
    assert secret not in done.stderr + done.stdout
