"""Benchmark: the live path end to end, each figure beside its baseline from the same run.

1. Generated Postfix lines (pipeline.synthetic, two servers) go to a file and onto a fresh
   4-partition raw topic keyed by server, as the feed and `smtp-auth replay` key them; the
   generator's truth (totals, per-sender counts) is kept.
2. The same lines, rounds interleaved: (a) a bare aiokafka consumer reads the raw topic;
   (b) `smtp-auth normalize --jobs 1` reads the file; (c) chDB's Kafka table engine with a
   materialized view doing a SQL regex extraction of the SASL lines into a MergeTree, and the
   same SQL over the file; (d) the worker (a subprocess) drains the backlog: raw topic →
   events → live counters → ClickHouse, timed until /api/v1/summary equals the truth; then
   /live/v1/summary, /api/v1/summary and the truth are compared, also per sender.
3. Canonical events → live counters (bench/live_bench.py's method, same broker).
4. Produce-to-visible latency at half (d)'s sustained rate: live Postfix traffic plus probe
   sessions, each with a sender of its own, polled on /live/v1/sender/{sender} (live) and on
   /api/v1/volume?search=<run tag> (ClickHouse, one request sees every probe).
5. With N active senders in the live table (canonical events straight onto the events
   topic): worker RSS, and restart-to-answering time after SIGTERM; an empty worker beside.
   Filling is given --memory-budget seconds; past it the figures are taken at what was
   reached (today's worker counts a few hundred new senders a second).

The worker is a black box: `python -m pipeline.cli worker`, settings from SMTP_AUTH_* only.
Starts its own broker (deploy/kafka/kafka.sh) unless SMTP_AUTH_BENCH_KAFKA is set.
Prints a Markdown section for bench/RESULTS.md on stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import live_bench
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from pipeline.ingest.kafka import key_partition
from pipeline.synthetic import SERVERS, LogGenerator
from pipeline.synthetic import postfix as postfix_render
from pipeline.synthetic.base import Submission, iso

ROOT = Path(__file__).resolve().parents[1]
KAFKA = ROOT / "deploy" / "kafka" / "kafka.sh"
PARTITIONS = 4
# The ClickHouse-native route: one regex over the Postfix line that names the SASL login
# (Postfix logs it once per submitted message); the content filter's re-injection
# (`orig_queue_id=` before `sasl_method=`) does not match, so it is not counted twice.
SASL_REGEX = (r"^(\S+) (\S+) postfix/[a-z/]*smtpd\[\d+\]: ([0-9A-F]+): "
              r"client=[^\[]*\[([^\]]+)\], sasl_method=(\w+), sasl_username=(\S+)$")


LOADS: list[float] = []  # the 1-minute load average at each progress line: the noise


def log(message: str) -> None:
    LOADS.append(os.getloadavg()[0])
    print(f"[e2e {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---- 1. input and truth --------------------------------------------------------------

@dataclass
class Truth:
    messages: int = 0
    auth_failures: int = 0
    by_tls: Counter[str] = field(default_factory=Counter)
    per_sender: Counter[str] = field(default_factory=Counter)

    @property
    def senders(self) -> int:
        return len(self.per_sender)

    def summary(self) -> dict[str, Any]:
        return {"messages": self.messages, "senders": self.senders,
                "auth_failures": self.auth_failures, "by_tls": dict(sorted(self.by_tls.items()))}


def generate(path: Path, submissions: int, accounts: int, seed: int) -> tuple[
        list[tuple[str, str]], Truth]:
    """The whole log as (server, line), ending a few minutes before now (inside every window
    and within the lateness bound of the live counters), and its truth."""
    sessions = submissions / 0.8  # the generator's noise share is 0.2
    span = timedelta(seconds=sessions * 0.5 * 1.05)
    start = datetime.now(UTC).replace(microsecond=0) - span - timedelta(minutes=10)
    lines, rows = LogGenerator("postfix", seed, accounts).log(submissions, start)
    truth = Truth()
    for row in rows:
        if row["kind"] == "submission":
            truth.messages += 1
            truth.by_tls[row["tls_version"]] += 1
            truth.per_sender[row["sender"]] += 1
        else:
            truth.auth_failures += 1
    last = max(row["ts"] for row in rows)
    assert last < iso(datetime.now(UTC)), "generated events must all lie in the past"
    with path.open("w", encoding="utf-8") as out:
        out.writelines(line + "\n" for _, line in lines)
    return lines, truth


async def create_topics(bootstrap: str, names: list[str]) -> None:
    """Create the topics and return once every partition has a leader (a producer that
    starts earlier gets NotLeaderForPartition and retries, which would be timed)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(n, PARTITIONS, 1) for n in names])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            described = await admin.describe_topics(names)
            if all(t["error_code"] == 0 and len(t["partitions"]) == PARTITIONS
                   and all(p["leader"] >= 0 and p["error_code"] == 0 for p in t["partitions"])
                   for t in described):
                return
            await asyncio.sleep(0.1)  # the controller elects the leaders
        raise TimeoutError(f"topics {names} have no leaders after 60 s")
    finally:
        await admin.close()


async def produce_lines(bootstrap: str, topic: str, lines: list[tuple[str, str]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20,
                                max_batch_size=256 * 1024)
    await producer.start()
    try:
        for server, line in lines:
            await producer.send(topic, line.encode(), key=server.encode())
        await producer.flush()
    finally:
        await producer.stop()


async def partition_sizes(bootstrap: str, topic: str) -> list[int]:
    from aiokafka import TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        ends = await consumer.end_offsets(tps)
        return [ends[tp] for tp in tps]
    finally:
        await consumer.stop()


# ---- 2a. bare consumer -----------------------------------------------------------------

async def bare_raw_consumer(bootstrap: str, topic: str, count: int) -> float:
    """Lines/s of a plain aiokafka consumer that reads every raw line (no decoding: a raw
    line is bytes), from start() to the last record."""
    start = time.perf_counter()
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False, group_id=f"bare-{uuid.uuid4().hex}")
    await consumer.start()
    try:
        seen = 0
        while seen < count:
            for records in (await consumer.getmany(timeout_ms=500, max_records=10000)).values():
                seen += len(records)
        return count / (time.perf_counter() - start)
    finally:
        await consumer.stop()


# ---- 2b. offline normalize -------------------------------------------------------------

def normalize_file(path: Path, out: Path) -> tuple[float, int]:
    """(lines/s, submissions written) of `smtp-auth normalize --jobs 1` over the file."""
    lines = sum(1 for _ in path.open("rb"))
    with path.open("rb") as stdin, out.open("wb") as stdout:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pipeline.cli", "normalize", "--jobs", "1"],
                       stdin=stdin, stdout=stdout, stderr=subprocess.DEVNULL, check=True,
                       cwd=ROOT)
        seconds = time.perf_counter() - start
    with out.open("rb") as events:
        submissions = sum(1 for row in events if b'"kind":"submission"' in row)
    return lines / seconds, submissions


# ---- 2c. chDB: the Kafka table engine, and the same SQL over the file --------------------

def chdb_child(mode: str, workdir: str, source: str, bootstrap: str, expected: int) -> None:
    """Runs in its own process (one embedded engine per process). Prints one JSON object."""
    import chdb

    conn = chdb.connect(f"file:{workdir}")  # type: ignore[no-untyped-call]
    regex = SASL_REGEX.replace("\\", "\\\\")
    conn.query("CREATE DATABASE IF NOT EXISTS b")
    conn.query("CREATE TABLE IF NOT EXISTS b.sasl (ts DateTime64(3), server String, qid String,"
               " ip String, mech String, sender String) ENGINE = MergeTree ORDER BY (server, ts)")
    select = ("SELECT parseDateTime64BestEffort(m[1], 3) AS ts, m[2] AS server, m[3] AS qid,"
              " m[4] AS ip, m[5] AS mech, lower(m[6]) AS sender"
              f" FROM (SELECT extractGroups(line, '{regex}') AS m FROM {{src}}) WHERE length(m) = 6")
    version = conn.query("SELECT version()", "CSV").bytes().decode().strip().strip('"')
    result: dict[str, Any] = {"mode": mode, "version": version}
    if mode == "file":
        start = time.perf_counter()
        conn.query("INSERT INTO b.sasl " + select.format(
            src=f"file('{source}', 'LineAsString', 'line String')"))
        result["seconds"] = time.perf_counter() - start
    else:
        engines = conn.query("SELECT name FROM system.table_engines WHERE name = 'Kafka'",
                             "CSV").bytes().decode().strip()
        pool = conn.query("SELECT value FROM system.server_settings WHERE name ="
                          " 'background_message_broker_schedule_pool_size'",
                          "CSV").bytes().decode().strip().strip('"')
        result.update(engine_registered=bool(engines), broker_pool_size=pool)
        ddl = ("CREATE TABLE b.raw_kafka (line String) ENGINE = Kafka SETTINGS"
               f" kafka_broker_list = '{bootstrap}', kafka_topic_list = '{source}',"
               f" kafka_group_name = 'chdb-{uuid.uuid4().hex[:8]}',"
               " kafka_format = 'LineAsString', kafka_num_consumers = 1")
        start = time.perf_counter()
        try:
            conn.query(ddl)
            conn.query("CREATE MATERIALIZED VIEW b.mv TO b.sasl AS "
                       + select.format(src="b.raw_kafka"))
        except Exception as exc:  # the answer we report, not a failure of the bench
            result["error"] = " ".join(str(exc).split())[:300]
            # The project's own route to the engine (clickhouse-connect's chdb interface).
            import clickhouse_connect

            try:
                clickhouse_connect.get_client(dsn=f"chdb://{workdir}").command(
                    ddl.replace("b.raw_kafka", "b.raw_kafka2"))
                result["via_clickhouse_connect"] = "created"
            except Exception as exc2:  # reported as well
                result["via_clickhouse_connect"] = " ".join(str(exc2).split())[:300]
            print(json.dumps(result))
            return
        last, last_change = -1, time.perf_counter()
        while time.perf_counter() - last_change < 60:
            n = int(conn.query("SELECT count() FROM b.sasl", "CSV").bytes())
            if n >= expected:
                break
            if n != last:
                last, last_change = n, time.perf_counter()
            time.sleep(0.2)  # poll the MergeTree the view fills
        result["seconds"] = time.perf_counter() - start
    rows = conn.query("SELECT sender, count() FROM b.sasl GROUP BY sender", "JSONCompact")
    result["per_sender"] = {s: int(n) for s, n in json.loads(rows.bytes())["data"]}
    print(json.dumps(result))


def run_chdb(mode: str, work: Path, source: str, bootstrap: str, expected: int) -> dict[str, Any]:
    workdir = work / f"chdb-{mode}-{uuid.uuid4().hex[:6]}"
    proc = subprocess.run([sys.executable, __file__, "--chdb-child", mode, str(workdir), source,
                           bootstrap, str(expected)], capture_output=True, text=True,
                          cwd=ROOT, timeout=900, check=False)
    shutil.rmtree(workdir, ignore_errors=True)
    try:
        out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        out = {"mode": mode, "error": f"child failed: {' '.join(proc.stderr.split())[-300:]}"}
    return out


# ---- the worker, as a subprocess -------------------------------------------------------

class Worker:
    """One `smtp-auth worker` process on its own topics, consumer group and data dir."""

    def __init__(self, bootstrap: str, work: Path, prefix: str, raw_topic: str | None = None,
                 extra: dict[str, str] | None = None) -> None:
        self.prefix = prefix
        self.port = free_port()
        self.data = work / f"worker-{prefix}"
        self.log_path = work / f"worker-{prefix}.log"
        self.env = dict(
            os.environ, SMTP_AUTH_KAFKA_BOOTSTRAP_SERVERS=bootstrap, SMTP_AUTH_APP_ID=prefix,
            SMTP_AUTH_TOPIC_RAW=raw_topic or f"{prefix}.raw",
            SMTP_AUTH_TOPIC_EVENTS=f"{prefix}.events", SMTP_AUTH_TOPIC_DLQ=f"{prefix}.dlq",
            SMTP_AUTH_TOPIC_ALERTS=f"{prefix}.alerts", SMTP_AUTH_DATA_DIR=str(self.data),
            SMTP_AUTH_WEB_PORT=str(self.port), SMTP_AUTH_TOPIC_PARTITIONS=str(PARTITIONS),
            **(extra or {}))
        self.proc: subprocess.Popen[bytes] | None = None
        self.started = 0.0

    def start(self) -> float:
        with self.log_path.open("ab") as out:
            self.started = time.perf_counter()
            self.proc = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "worker"],
                                         env=self.env, cwd=ROOT, stdout=out, stderr=out,
                                         start_new_session=True)
        return self.started

    def stop(self, timeout: float = 120) -> float:
        """SIGTERM to the worker's process group; seconds until it exited."""
        if self.proc is None or self.proc.poll() is not None:
            return 0.0
        start = time.perf_counter()
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        return time.perf_counter() - start

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def rss_mb(self) -> tuple[float, float]:
        """(VmRSS, VmHWM) of the worker process in MB, from /proc/<pid>/status."""
        assert self.proc is not None
        fields: dict[str, float] = {}
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                fields[name] = int(value.split()[0]) / 1024
        return fields["VmRSS"], fields["VmHWM"]

    def get(self, path: str, timeout: float = 10) -> Any:
        """The JSON answer, or None when the worker does not answer (yet) or answers an error."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}",
                                        timeout=timeout) as r:
                return json.loads(r.read())
        except (OSError, ValueError):
            return None

    def wait_for(self, check: Any, timeout: float, what: str, poll: float = 0.1) -> float:
        """perf_counter() when check() first held; raises on timeout or a dead worker. Polls
        no faster than twice the check's own duration: a view that costs the worker's loop
        time (the live summary at many senders) must not slow down what it measures."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            asked = time.perf_counter()
            if check():
                return time.perf_counter()
            if not self.alive():
                raise RuntimeError(f"worker exited while waiting for {what}; see {self.log_path}")
            time.sleep(max(poll, 2 * (time.perf_counter() - asked)))  # poll the HTTP views
        raise TimeoutError(f"{what}: not within {timeout:.0f} s; see {self.log_path}")

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=5) as r:
                return bool(r.status == 200)
        except (OSError, urllib.error.HTTPError):
            return False


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def comparable(summary: Any) -> dict[str, Any] | None:
    if not isinstance(summary, dict):
        return None
    return {k: summary.get(k) for k in ("messages", "senders", "auth_failures", "by_tls")}


# ---- 2d. the worker over the backlog ---------------------------------------------------

@dataclass
class WorkerRun:
    lines_per_s: float  # from process start to /api/v1/summary == truth
    ready_lines_per_s: float | None  # from the first /readyz 200 to the same moment
    # From the first poll that found events in ClickHouse to the same moment, over the lines
    # left then (the share of the truth's messages not stored yet): the rate once flowing.
    # The sink stores before /readyz, so the rate from /readyz overstates it.
    flowing_lines_per_s: float | None
    startup_s: float | None
    seconds: float
    live_seconds: float | None  # start → /live/v1/summary == truth
    exact: bool
    per_sender_api: bool | None
    per_sender_live: bool | None
    final: dict[str, Any]
    log: str


def worker_backlog(bootstrap: str, work: Path, raw_topic: str, lines: int, truth: Truth,
                   stall: float, check_senders: bool) -> WorkerRun:
    prefix = f"e2e{uuid.uuid4().hex[:6]}"
    worker = Worker(bootstrap, work, prefix, raw_topic=raw_topic)
    want = truth.summary()
    start = worker.start()
    t_ready: float | None = None
    t_live: float | None = None
    t_api: float | None = None
    t_first: float | None = None
    stored_first = 0
    last_progress, last_count = time.perf_counter(), -1
    api: Any = None
    live: Any = None
    try:
        while t_api is None or t_live is None:
            now = time.perf_counter()
            if t_ready is None and worker.ready():
                t_ready = now
            live = worker.get("/live/v1/summary")
            if t_live is None and comparable(live) == want:
                t_live = now
            api = worker.get("/api/v1/summary")
            if t_first is None and (api or {}).get("messages", 0) > 0:
                t_first, stored_first = now, api["messages"]
            if t_api is None and comparable(api) == want:
                t_api = now
            count = (api or {}).get("messages", -1) + (live or {}).get("messages", -1)
            if count != last_count:
                last_progress, last_count = now, count
            elif now - last_progress > stall:
                log(f"worker: no progress for {stall:.0f} s; stopping the wait")
                break
            if not worker.alive():
                raise RuntimeError(f"worker exited; see {worker.log_path}")
            time.sleep(0.25)  # poll
        final = {"live": comparable(worker.get("/live/v1/summary")),
                 "api": comparable(worker.get("/api/v1/summary")), "truth": want}
        exact = final["live"] == final["api"] == want
        if not exact:  # the work directory goes at the end: say what the worker said
            tail = worker.log_path.read_text(errors="replace").splitlines()[-40:]
            log("worker not exact; its log ends:\n" + "\n".join(tail))
        per_api = per_live = None
        if check_senders:
            per_api = api_per_sender(worker) == dict(truth.per_sender)
            per_live = all((worker.get(f"/live/v1/sender/{urllib.parse.quote(s)}") or {}).get(
                "messages") == n for s, n in truth.per_sender.items())
    finally:
        worker.stop()
    end = t_api if t_api is not None else time.perf_counter()
    ready_rate = lines / (end - t_ready) if t_ready is not None and end > t_ready else None
    flowing = (lines * (1 - stored_first / want["messages"]) / (end - t_first)
               if t_first is not None and end > t_first and want["messages"] else None)
    return WorkerRun(
        lines_per_s=lines / (end - start) if t_api is not None else 0.0,
        ready_lines_per_s=ready_rate if t_api is not None else None,
        flowing_lines_per_s=flowing if t_api is not None else None,
        startup_s=t_ready - start if t_ready is not None else None, seconds=end - start,
        live_seconds=t_live - start if t_live is not None else None, exact=exact,
        per_sender_api=per_api, per_sender_live=per_live, final=final, log=str(worker.log_path))


@dataclass
class LongReplay:
    lines: int
    submissions: int
    bare: list[float]
    run: WorkerRun

    def report(self) -> list[str]:
        best = max(self.bare)
        r = self.run
        ready, flowing = r.ready_lines_per_s, r.flowing_lines_per_s
        return [
            "#### A long replay: the same path where start-up weighs little", "",
            f"{self.lines:,} generated Postfix lines ({self.submissions:,} submissions, two "
            f"servers) on a fresh raw topic. Bare consumer "
            f"rounds before and after the worker run; the worker once, timed as above.", "",
            "| path, same lines, same run | lines/s | worker / bare, best |", "|---|---|---|",
            f"| (a) bare aiokafka consumer, best of {len(self.bare)} "
            f"({', '.join(fmt(b) for b in self.bare)}) | {fmt(best)} | - |",
            f"| (d) the worker, process start → /api/v1/summary = truth | **{fmt(r.lines_per_s)}**"
            f" | **{r.lines_per_s / best:.3f}x** |",
            f"| (d) the same run, from the first /readyz 200 | {fmt(ready)} | "
            + (f"{ready / best:.3f}x |" if ready else "- |"),
            f"| (d) the same run, once flowing (from the first events in ClickHouse) | "
            f"{fmt(flowing)} | " + (f"{flowing / best:.3f}x |" if flowing else "- |"),
            "", f"Start-up to /readyz {fmt(r.startup_s, 1)} s of {r.seconds:.0f} s; at the end "
            f"live = /api/v1 = truth: {yes(r.exact)}.", ""]


def long_replay(bootstrap: str, work: Path, submissions: int, accounts: int, seed: int,
                stall: float) -> LongReplay:
    path = work / "long.log"
    lines, truth = generate(path, submissions, accounts, seed)
    topic = f"e2e{uuid.uuid4().hex[:6]}.long"
    asyncio.run(create_topics(bootstrap, [topic]))
    asyncio.run(produce_lines(bootstrap, topic, lines))
    log(f"long replay: {len(lines):,} lines on {topic}")
    bare = [asyncio.run(bare_raw_consumer(bootstrap, topic, len(lines)))]
    run = worker_backlog(bootstrap, work, topic, len(lines), truth, stall, check_senders=False)
    bare.append(asyncio.run(bare_raw_consumer(bootstrap, topic, len(lines))))
    log(f"long replay: bare {', '.join(fmt(b) for b in bare)}; worker {run.lines_per_s:,.0f} "
        f"lines/s from start ({fmt(run.ready_lines_per_s)} from ready), exact {run.exact}")
    path.unlink()
    return LongReplay(len(lines), submissions, bare, run)


def api_per_sender(worker: Worker, search: str | None = None) -> dict[str, int]:
    out: dict[str, int] = {}
    page = 1
    while True:
        query = {"range": "7d", "page": str(page), "page_size": "1000",
                 **({"search": search} if search else {})}
        answer = worker.get("/api/v1/volume?" + urllib.parse.urlencode(query), timeout=30)
        rows = (answer or {}).get("rows") or []
        out.update({r["sender"]: r["messages"] for r in rows})
        if len(rows) < 1000:
            return out
        page += 1


# ---- 3. canonical events → live counters ----------------------------------------------

def events_to_counters(bootstrap: str, work: Path, events: int) -> tuple[float, float]:
    """(bare consumer events/s, worker counters events/s): live_bench.py's method."""
    prefix = f"ev{uuid.uuid4().hex[:6]}"
    topic = f"{prefix}.events"
    asyncio.run(create_topics(bootstrap, [f"{prefix}.{t}" for t in ("raw", "events", "dlq",
                                                                      "alerts")]))
    asyncio.run(live_bench.produce(bootstrap, topic, 0, events))
    baseline = asyncio.run(live_bench.bare_consumer(bootstrap, topic, events))
    worker = Worker(bootstrap, work, prefix)
    worker.start()
    try:
        low, high = events // 10, events * 9 // 10

        def n() -> int:
            return int((worker.get("/live/v1/summary") or {}).get("messages", -1))

        t_low = worker.wait_for(lambda: n() >= low, 900, "10 % of the events", poll=0.05)
        n_low = n()
        t_high = worker.wait_for(lambda: n() >= high, 900, "90 % of the events", poll=0.05)
        n_high = n()
    finally:
        worker.stop()
    return baseline, (n_high - n_low) / (t_high - t_low)


# ---- 4. produce-to-visible latency -------------------------------------------------------

def probe_lines(tag: str, i: int, ts: datetime) -> tuple[str, list[str]]:
    """One submission session whose sender nobody else has; pid and queue id from ranges the
    generator never reaches, so its correlation cannot mix with the load's sessions."""
    sender = f"{tag}-{i}@{tag}.probe.example"
    rendered = postfix_render.submission(Submission(
        SERVERS[i % len(SERVERS)], ts, 900_000 + 4 * i, f"F{0x100000 + i:X}", sender,
        "192.0.2.77", None, "TLS1.2", "PLAIN", 1000, 1))
    return sender, [f"{iso(t)} {text}" for t, text, _ in sorted(rendered.lines)]


@dataclass
class Latency:
    rate: float
    sent_rate: float  # what the load producer achieved, probes included
    seconds: float
    probes: int
    live: list[float]
    clickhouse: list[float]


async def latency_run(bootstrap: str, worker: Worker, topic: str, rate: float, probes: int,
                      probe_interval: float, avg_lines: float, seed: int) -> Latency:
    import aiohttp

    tag = f"p{uuid.uuid4().hex[:8]}"
    sent: dict[str, float] = {}
    live_seen: dict[str, float] = {}
    ch_seen: dict[str, float] = {}
    done = asyncio.Event()
    produced = {"lines": 0, "seconds": 0.0}
    base = f"http://127.0.0.1:{worker.port}"

    # The load is rendered before it starts, in event time running `stretch` times faster
    # than the wall clock and ending about now: the generator spaces sessions by whole
    # milliseconds plus one, so asked for 0.4 ms it gave about 1.2 ms (7,284 lines/s sent
    # when 23,963 were asked, in every run before this one).
    gen = LogGenerator("postfix", seed, accounts=2000)
    spacing = avg_lines / rate  # wall seconds between sessions for `rate` lines/s
    stretch = max(1.0, 0.02 / spacing)  # sessions ≥ 20 ms apart in event time
    plan_seconds = 3.0 + probes * probe_interval + 5.0
    ts0 = datetime.now(UTC) - timedelta(seconds=plan_seconds * stretch)
    plan: list[tuple[float, bytes, bytes]] = []  # (wall seconds after the start, key, line)
    for session in gen.sessions(2**62, ts0, spacing * stretch):
        at = (min(ts for ts, _, _ in session.lines) - ts0).total_seconds() / stretch
        if at > plan_seconds:
            break
        key = session.server.encode()
        plan += [(at, key, f"{iso(ts)} {text}".encode()) for ts, text, _ in sorted(session.lines)]

    async def load() -> None:
        # Sent as record batches, one per partition every few milliseconds: a send per line
        # would cost this process about as much CPU as the worker spends on the line, on the
        # same 2 cores (a shipper such as rsyslog batches in C).
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
        await producer.start()
        try:
            parts = sorted(await producer.partitions_for(topic))
            batches: dict[int, Any] = {}

            def add(key: bytes, value: bytes) -> bool:
                partition = parts[key_partition(key, len(parts))]
                batch = batches.setdefault(partition, producer.create_batch())
                return batch.append(key=key, value=value, timestamp=None) is not None

            async def flush() -> None:
                for partition, batch in batches.items():
                    batch.close()
                    await producer.send_batch(batch, topic, partition=partition)
                batches.clear()

            wall0 = time.monotonic()
            next_probe, made = wall0 + 3.0, 0  # 3 s of load before the first probe
            for at, key, line in plan:
                if done.is_set():
                    break
                delay = at - (time.monotonic() - wall0)
                if delay > 0.003:  # the stated input rate: what is due goes, then a pause
                    await flush()
                    await asyncio.sleep(delay)
                if not add(key, line):  # a full batch
                    await flush()
                    add(key, line)
                produced["lines"] += 1
                if made < probes and time.monotonic() >= next_probe:
                    # Stamped in the load's event time: not ahead of the lines around it.
                    now = ts0 + timedelta(seconds=(time.monotonic() - wall0) * stretch)
                    sender, lines = probe_lines(tag, made, now)
                    server = SERVERS[made % len(SERVERS)].encode()
                    for text in lines:
                        if not add(server, text.encode()):
                            await flush()
                            add(server, text.encode())
                    await flush()  # the probe leaves now: its clock starts here
                    produced["lines"] += len(lines)
                    sent[sender] = time.perf_counter()
                    made += 1
                    next_probe += probe_interval
            await flush()
            await producer.flush()
            produced["seconds"] = time.monotonic() - wall0
        finally:
            await producer.stop()

    async def poll_live(session: aiohttp.ClientSession) -> None:
        # One request per cycle (the probes' own domain); only when its count moves are the
        # waiting probes asked one by one, each stamped when its own answer arrives (an upper
        # bound), so the polling does not load the worker it measures.
        seen = 0
        while not done.is_set():
            answer = await fetch(session, f"/live/v1/domain/{tag}.probe.example")
            count = (answer or {}).get("messages", 0)
            if count > seen:
                waiting = [s for s in sent if s not in live_seen]
                for s, found in zip(waiting, await asyncio.gather(
                        *(found_live(session, s) for s in waiting)), strict=True):
                    if found is not None:
                        live_seen[s] = found
                seen = len(live_seen)
            await asyncio.sleep(0.02)  # poll

    async def found_live(session: aiohttp.ClientSession, sender: str) -> float | None:
        answer = await fetch(session, f"/live/v1/sender/{sender}")
        return time.perf_counter() if answer and answer.get("messages", 0) >= 1 else None

    async def poll_clickhouse(session: aiohttp.ClientSession) -> None:
        query = urllib.parse.urlencode({"range": "24h", "search": tag, "page_size": "1000"})
        while not done.is_set():
            answer = await fetch(session, f"/api/v1/volume?{query}")
            now = time.perf_counter()
            for row in (answer or {}).get("rows") or []:
                if row["sender"] in sent and row["sender"] not in ch_seen:
                    ch_seen[row["sender"]] = now
            await asyncio.sleep(0.1)  # poll

    async def fetch(session: aiohttp.ClientSession, path: str) -> Any:
        try:
            async with session.get(base + path) as r:
                return await r.json() if r.status == 200 else None
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return None

    async def until_done(started: float) -> None:
        deadline = started + 3.0 + probes * probe_interval + 60  # then stragglers are missing
        while time.perf_counter() < deadline:
            if len(sent) == probes and len(live_seen) == len(ch_seen) == probes:
                break
            await asyncio.sleep(0.1)
        done.set()

    started = time.perf_counter()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        await asyncio.gather(load(), poll_live(session), poll_clickhouse(session),
                             until_done(started))
    return Latency(rate, produced["lines"] / (produced["seconds"] or 1),
                   time.perf_counter() - started, len(sent),
                   sorted(live_seen[s] - sent[s] for s in live_seen),
                   sorted(ch_seen[s] - sent[s] for s in ch_seen))


def latency(bootstrap: str, work: Path, rate: float, probes: int, probe_interval: float,
            avg_lines: float, seed: int) -> Latency:
    prefix = f"lat{uuid.uuid4().hex[:6]}"
    asyncio.run(create_topics(bootstrap, [f"{prefix}.{t}" for t in ("raw", "events", "dlq",
                                                                      "alerts")]))
    worker = Worker(bootstrap, work, prefix)
    worker.start()
    try:
        worker.wait_for(worker.ready, 300, "the latency worker's /readyz")
        return asyncio.run(latency_run(bootstrap, worker, f"{prefix}.raw", rate, probes,
                                       probe_interval, avg_lines, seed))
    finally:
        worker.stop()


# ---- 5. memory and restart with many active senders --------------------------------------

def canonical_events(count: int) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) of `count` submissions, one sender each, stamped over the last ~50 min
    in order (every partition's clock moves forward; nothing is late)."""
    base = datetime.now(UTC) - timedelta(minutes=50)
    step = min(3.0, 45 * 60_000 / max(count, 1))  # ms between events
    tls = ("TLS1.2", "TLS1.3", "TLS1.0")
    for i in range(count):
        sender = f"s{i}@d{i % 100}.example"
        value = (f'{{"event_id":"m{i}","kind":"submission","ts":"{iso(base + timedelta(milliseconds=i * step))}",'
                 f'"server":"mx1","source":"json","sender":"{sender}","sender_domain":"d{i % 100}.example",'
                 f'"envelope_from":null,"auth_mechanism":"PLAIN","client_ip":"192.0.2.{i % 250 + 1}",'
                 f'"client_host":null,"tls_version":"{tls[i % 3]}","tls_cipher":null,'
                 f'"message_id":null,"recipients":1,"size":1000}}')
        yield sender.encode(), value.encode()


async def produce_events(bootstrap: str, topic: str, count: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20,
                                max_batch_size=256 * 1024)
    await producer.start()
    try:
        for key, value in canonical_events(count):
            await producer.send(topic, value, key=key)
        await producer.flush()
    finally:
        await producer.stop()


@dataclass
class Memory:
    senders: int
    reached: int  # senders in the live table when the fill ended (= senders unless out of time)
    idle_rss: float
    idle_answer_s: float
    idle_summary_ms: float
    ingest_events_per_s: float
    rss: float
    hwm: float
    summary_ms: float
    stop_s: float | None = None
    answer_s: float | None = None
    right_s: float | None = None
    restart_rss: float | None = None
    exact: bool | None = None


def memory_restart(bootstrap: str, work: Path, senders: int, budget: float) -> Memory:
    """Fill the live table with `senders` senders (given up after `budget` seconds: then the
    figures at what was reached, and no restart), then SIGTERM and start again."""
    from schemas.event import AuthEvent

    AuthEvent.model_validate_json(next(canonical_events(1))[1])  # the fast template is valid
    prefix = f"mem{uuid.uuid4().hex[:6]}"
    asyncio.run(create_topics(bootstrap, [f"{prefix}.{t}" for t in ("raw", "events", "dlq",
                                                                      "alerts")]))
    worker = Worker(bootstrap, work, prefix)

    def summary() -> dict[str, Any]:
        return worker.get("/live/v1/summary", timeout=60) or {}

    def right() -> bool:
        s = summary()
        return s.get("messages") == senders and s.get("senders") == senders

    def timed_summary() -> float:
        asked = time.perf_counter()
        summary()
        return (time.perf_counter() - asked) * 1000

    start = worker.start()
    try:
        idle_answer = worker.wait_for(lambda: summary().get("messages") == 0, 300,
                                      "the empty worker's live summary") - start
        worker.wait_for(worker.ready, 300, "the empty worker's /readyz")
        idle_rss, _ = worker.rss_mb()
        idle_summary_ms = timed_summary()
        t0 = time.perf_counter()
        asyncio.run(produce_events(bootstrap, f"{prefix}.events", senders))
        log(f"memory: {senders:,} events produced in {time.perf_counter() - t0:.0f} s")
        try:
            t1 = worker.wait_for(right, max(1.0, budget - (time.perf_counter() - t0)),
                                 f"{senders:,} senders in the live table", poll=0.5)
        except TimeoutError:
            t1 = time.perf_counter()
        reached = int(summary().get("senders", 0))
        rss, hwm = worker.rss_mb()
        mem = Memory(senders, reached, idle_rss, idle_answer, idle_summary_ms,
                     reached / (t1 - t0), rss, hwm,
                     statistics.median(timed_summary() for _ in range(5)))
        if reached != senders:
            log(f"memory: {reached:,} of {senders:,} senders within {budget:.0f} s; no restart")
            return mem
        mem.stop_s = worker.stop()
        restart = worker.start()
        mem.answer_s = worker.wait_for(lambda: bool(summary()), 3600,
                                       "the restarted worker's answer", poll=0.05) - restart
        mem.right_s = worker.wait_for(right, 3600, "the restarted worker's right totals",
                                      poll=0.05) - restart
        mem.restart_rss, _ = worker.rss_mb()
        mem.exact = right()
        return mem
    finally:
        worker.stop()


# ---- the report -------------------------------------------------------------------------

def fmt(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def best_median(values: list[float]) -> tuple[float | None, float | None]:
    values = [v for v in values if v]
    if not values:
        return None, None
    return max(values), statistics.median(values)


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return values[min(len(values) - 1, int(len(values) * q))]


def machine_line(chdb_version: str, load_start: float) -> str:
    load = os.getloadavg()
    head = subprocess.run(["git", "log", "-1", "--format=%h", "--", "pipeline", "schemas"],
                          capture_output=True, text=True, cwd=ROOT,
                          check=False).stdout.strip() or "?"
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "pipeline", "schemas"],
                           capture_output=True, text=True, cwd=ROOT, check=False).stdout.strip()
    kafka = subprocess.run(["sed", "-n", "s:.*<kafka.version>\\(.*\\)</kafka.version>.*:\\1:p",
                            str(ROOT / "deploy/kafka/pom.xml")], capture_output=True, text=True,
                           check=False).stdout.strip()
    return (f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
            f"{platform.python_version()}, {platform.platform()}; load average "
            f"{load_start:.1f} at the start, {load[0]:.1f} at the end, "
            f"{max(LOADS, default=load[0]):.1f} at most (other work on the machine); local KRaft broker (Apache Kafka {kafka}), "
            f"{PARTITIONS} partitions; chDB {chdb_version}; worker code (pipeline/, schemas/) "
            f"at {head}"
            f"{' (uncommitted changes)' if dirty else ''}.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a few minutes")
    parser.add_argument("--submissions", type=int, help="generated Postfix submissions "
                        "(default 20,000: ~190k lines; --quick 2,000)")
    parser.add_argument("--accounts", type=int, default=2000, help="distinct senders to draw from")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rounds", type=int, help="rounds of the baselines (default 3)")
    parser.add_argument("--worker-rounds", type=int, help="worker backlog runs (default 2; "
                        "--quick 1), interleaved with the baselines' rounds")
    parser.add_argument("--stall", type=float, default=60.0,
                        help="give up on the worker after this long without progress (s)")
    parser.add_argument("--events", type=int, help="canonical events for events → counters "
                        "(default 50,000; --quick 10,000)")
    parser.add_argument("--latency-rate", type=float,
                        help="lines/s of the latency load (default: half of the worker's "
                             "best sustained lines/s in this run)")
    parser.add_argument("--probes", type=int, help="latency probes (default 200; --quick 40)")
    parser.add_argument("--probe-interval", type=float, default=0.25, help="seconds")
    parser.add_argument("--senders", type=int, help="active senders for memory and restart "
                        "(default 1,000,000; --quick 20,000)")
    parser.add_argument("--memory-budget", type=float, default=600.0,
                        help="seconds to fill the live table with --senders before the memory "
                             "figures are taken at what was reached (no restart then)")
    parser.add_argument("--long-submissions", type=int,
                        help="submissions of the long replay, where start-up weighs little "
                             "(default 100,000: ~950k lines; --quick skips it)")
    parser.add_argument("--skip", default="", help="comma list of parts to skip: "
                        "backlog,long,events,latency,memory")
    parser.add_argument("--chdb-child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.chdb_child:
        mode, workdir, source, bootstrap, expected = args.chdb_child
        chdb_child(mode, workdir, source, bootstrap, int(expected))
        return
    quick = args.quick
    submissions = args.submissions or (2000 if quick else 20000)
    rounds = args.rounds or (2 if quick else 3)
    worker_rounds = args.worker_rounds or (1 if quick else 2)
    n_events = args.events or (10_000 if quick else 50_000)
    probes = args.probes or (40 if quick else 200)
    senders = args.senders or (20_000 if quick else 1_000_000)
    skip = set(filter(None, args.skip.split(",")))
    long_submissions = args.long_submissions or (0 if quick else 100_000)
    if not long_submissions:
        skip.add("long")

    work = Path(tempfile.mkdtemp(prefix="bench-e2e-"))
    own_broker = not os.environ.get("SMTP_AUTH_BENCH_KAFKA")
    bootstrap = os.environ.get("SMTP_AUTH_BENCH_KAFKA") or subprocess.run(
        ["bash", str(KAFKA), "start", str(work / "kafka")], check=True, capture_output=True,
        text=True).stdout.strip().splitlines()[-1]
    began = time.perf_counter()
    load_start = os.getloadavg()[0]
    out: list[str] = []
    try:
        path = work / "postfix.log"
        lines, truth = generate(path, submissions, args.accounts, args.seed)
        avg_lines = len(lines) / (submissions / 0.8)
        raw_topic = f"e2e{uuid.uuid4().hex[:6]}.raw"
        asyncio.run(create_topics(bootstrap, [raw_topic]))
        asyncio.run(produce_lines(bootstrap, raw_topic, lines))
        sizes = asyncio.run(partition_sizes(bootstrap, raw_topic))
        log(f"{len(lines):,} lines on {raw_topic} (per partition {sizes}); truth "
            f"{truth.summary()}")

        bare: list[float] = []
        offline: list[float] = []
        sql_file: list[float] = []
        runs: list[WorkerRun] = []
        kafka_engine: dict[str, Any] = {}
        file_sql: dict[str, Any] = {}
        normalized_ok = True
        for r in range(max(rounds, worker_rounds if "backlog" not in skip else 0)):
            if r < rounds:
                bare.append(asyncio.run(bare_raw_consumer(bootstrap, raw_topic, len(lines))))
                rate, subs = normalize_file(path, work / "normalized.jsonl")
                offline.append(rate)
                normalized_ok &= subs == truth.messages
                file_sql = run_chdb("file", work, str(path), bootstrap, truth.messages)
                if "seconds" in file_sql:
                    sql_file.append(len(lines) / file_sql["seconds"])
                if r == 0:
                    kafka_engine = run_chdb("kafka", work, raw_topic, bootstrap, truth.messages)
                log(f"round {r + 1}: bare {bare[-1]:,.0f}, normalize {offline[-1]:,.0f}, "
                    f"chDB SQL on the file {fmt(sql_file[-1] if sql_file else None)} lines/s; "
                    f"Kafka engine: {kafka_engine.get('error') or 'ran'}")
            if r < worker_rounds and "backlog" not in skip:
                run = worker_backlog(bootstrap, work, raw_topic, len(lines), truth, args.stall,
                                     check_senders=r == 0)
                runs.append(run)
                log(f"round {r + 1}: worker {run.lines_per_s:,.0f} lines/s from start "
                    f"({fmt(run.ready_lines_per_s)} from ready), {run.seconds:.0f} s, "
                    f"exact {run.exact}")

        failed: list[str] = []  # a part that fails is reported, and the others still run

        def attempt(part: str, run: Any) -> Any:
            try:
                return run()
            except (RuntimeError, TimeoutError, OSError, AssertionError) as exc:
                log(f"{part} failed: {exc}")
                failed.append(f"{part}: {exc}")
                return None

        long_run = None
        if "long" not in skip:
            long_run = attempt("long replay", lambda: long_replay(
                bootstrap, work, long_submissions, args.accounts, args.seed + 2, args.stall))

        ev_bare = ev_worker = None
        if "events" not in skip:
            both = attempt("events → counters",
                           lambda: events_to_counters(bootstrap, work, n_events))
            if both is not None:
                ev_bare, ev_worker = both
                log(f"events → counters: bare {ev_bare:,.0f}, worker {ev_worker:,.0f} events/s")

        sustained = max((r.flowing_lines_per_s or 0 for r in runs), default=0)
        lat = None
        lat_rate = args.latency_rate or sustained / 2
        if "latency" not in skip and lat_rate > 0:
            lat = attempt("latency", lambda: latency(bootstrap, work, lat_rate, probes,
                                                     args.probe_interval, avg_lines,
                                                     args.seed + 1))
            if lat is not None:
                log(f"latency at {lat_rate:,.0f} lines/s: live p99 {pct(lat.live, 0.99)}, "
                    f"ClickHouse p99 {pct(lat.clickhouse, 0.99)}")
        mem = None
        if "memory" not in skip:
            mem = attempt("memory", lambda: memory_restart(bootstrap, work, senders,
                                                            args.memory_budget))
            log(f"memory: {mem}")

        version = (file_sql.get("version") or kafka_engine.get("version") or "?")
        out += report(lines, sizes, truth, submissions, args, bare, offline, sql_file, file_sql,
                      kafka_engine, normalized_ok, runs, ev_bare, ev_worker, n_events, lat, mem,
                      sustained, time.perf_counter() - began)
        if long_run is not None:
            out += long_run.report()
        out += [f"**Failed:** {f}\n" for f in failed]
        out.insert(2, machine_line(version, load_start) + "\n")
    finally:
        if own_broker:
            subprocess.run(["bash", str(KAFKA), "stop", str(work / "kafka")], check=False,
                           capture_output=True)
        if not os.environ.get("SMTP_AUTH_BENCH_KEEP"):
            shutil.rmtree(work, ignore_errors=True)
    print("\n".join(out))


def report(lines: list[tuple[str, str]], sizes: list[int], truth: Truth, submissions: int,
           args: argparse.Namespace, bare: list[float], offline: list[float],
           sql_file: list[float], file_sql: dict[str, Any], kafka_engine: dict[str, Any],
           normalized_ok: bool, runs: list[WorkerRun], ev_bare: float | None,
           ev_worker: float | None, n_events: int, lat: Latency | None, mem: Memory | None,
           sustained: float, elapsed: float) -> list[str]:
    out = [f"### End to end: raw lines → one worker → live counters and ClickHouse "
           f"({time.strftime('%Y-%m-%d')})", ""]
    b_best, b_med = best_median(bare)
    n_best, n_med = best_median(offline)
    s_best, s_med = best_median(sql_file)
    w_best, w_med = best_median([r.lines_per_s for r in runs])
    wr_best, wr_med = best_median([r.ready_lines_per_s or 0 for r in runs])
    wf_best, wf_med = best_median([r.flowing_lines_per_s or 0 for r in runs])
    out += [f"Input: {len(lines):,} generated Postfix lines ({submissions:,} submissions, "
            f"{truth.auth_failures:,} failed logins, {truth.senders:,} senders, servers "
            f"{', '.join(SERVERS)}, seed {args.seed}) in one file and on one fresh "
            f"{PARTITIONS}-partition raw topic keyed by server (lines per partition: "
            f"{', '.join(f'{n:,}' for n in sizes)}). Baseline rounds: {len(bare)}, worker "
            f"runs: {len(runs)}, interleaved; best and median. Total bench time "
            f"{elapsed / 60:.1f} min.", "",
            "| path, same lines, same run | lines/s best | lines/s median | worker (from start) "
            "/ this, best |", "|---|---|---|---|"]

    def ratio(base: float | None) -> str:
        return f"{w_best / base:.3f}x" if w_best and base else "-"

    out.append(f"| (a) bare aiokafka consumer reading the raw topic | {fmt(b_best)} | "
               f"{fmt(b_med)} | {ratio(b_best)} |")
    out.append(f"| (b) `smtp-auth normalize --jobs 1` over the file, offline | {fmt(n_best)} | "
               f"{fmt(n_med)} | {ratio(n_best)} |")
    if "error" in kafka_engine:
        out.append(f"| (c) chDB Kafka table engine → materialized view (SQL regex) → MergeTree "
                   f"| does not run: `{kafka_engine['error']}` | - | - |")
    else:
        k_rate = len(lines) / kafka_engine["seconds"] if kafka_engine.get("seconds") else None
        out.append(f"| (c) chDB Kafka table engine → materialized view (SQL regex) → MergeTree "
                   f"| {fmt(k_rate)} | - | {ratio(k_rate)} |")
    out.append(f"| (c') the same SQL regex in chDB over the file (`file()`, LineAsString) → "
               f"MergeTree, no Kafka | {fmt(s_best)} | {fmt(s_med)} | {ratio(s_best)} |")
    out.append(f"| **(d) the worker: raw topic → events → live → ClickHouse, process start → "
               f"/api/v1/summary = truth** | **{fmt(w_best)}** | {fmt(w_med)} | 1x |")
    out.append(f"| (d) the same runs, from the first /readyz 200 | {fmt(wr_best)} | "
               f"{fmt(wr_med)} | - |")
    out.append(f"| (d) the same runs, once flowing (from the first events in ClickHouse, over "
               f"the lines left then) | {fmt(wf_best)} | {fmt(wf_med)} | - |")
    out.append("")
    if runs:
        r0 = runs[0]
        startups = ", ".join(fmt(r.startup_s, 1) for r in runs)
        out.append(f"Worker / bare consumer: **{ratio(b_best)}** (issue 12: ≥ 0.1x; spec: ≥ "
                   f"0.25x); worker / `normalize --jobs 1`: **{ratio(n_best)}**. Worker start-up "
                   f"to /readyz: {startups} s; whole runs: "
                   f"{', '.join(f'{r.seconds:.0f}' for r in runs)} s; live summary = truth "
                   f"after {', '.join(fmt(r.live_seconds, 0) for r in runs)} s.")
        out.append("")
        verdict = "**yes**" if all(r.exact for r in runs) else "**no**"
        out.append(f"At the end, /live/v1/summary = /api/v1/summary = the generator's truth "
                   f"(messages, senders, auth failures, per TLS version): {verdict}"
                   + ("" if all(r.exact for r in runs) else
                      " — " + "; ".join(f"run {i + 1}: live {r.final['live']}, api "
                                        f"{r.final['api']}" for i, r in enumerate(runs)
                                        if not r.exact) + f"; truth {truth.summary()}")
                   + f". Per-sender counts ({truth.senders:,} senders, first run): "
                     f"/api/v1/volume {yes(r0.per_sender_api)}, /live/v1/sender "
                     f"{yes(r0.per_sender_live)}.")
        out.append("")
    sql_ok = file_sql.get("per_sender") == dict(truth.per_sender)
    note = (f"`normalize` wrote {truth.messages:,} submissions: {yes(normalized_ok)}. The SQL "
            f"route's per-sender counts equal the truth: {yes(sql_ok)} (it counts submissions "
            f"only: TLS version and size sit on other lines of the session, which one regex "
            f"per line cannot join).")
    if "error" in kafka_engine:
        note += (f" chDB lists the Kafka engine in system.table_engines "
                 f"({yes(kafka_engine.get('engine_registered'))}), but CREATE TABLE … ENGINE = "
                 f"Kafka fails, through chdb.connect and through clickhouse-connect's chdb "
                 f"interface alike (`{kafka_engine.get('via_clickhouse_connect')}`); its "
                 f"background_message_broker_schedule_pool_size, the pool the engine's "
                 f"consumers run on, is {kafka_engine.get('broker_pool_size')}.")
    out += [note, ""]
    if ev_worker is not None and ev_bare is not None:
        out += ["#### Canonical events → live counters", "",
                "| path, same events, same run | events/s |", "|---|---|",
                f"| bare aiokafka consumer (read + JSON decode) | {ev_bare:,.0f} |",
                f"| worker: counters path (while also sinking to ClickHouse) | "
                f"**{ev_worker:,.0f}** |", "",
                f"Ratio {ev_worker / ev_bare:.2f}x ({n_events:,} events, 5,000 senders, rate "
                f"between 10 % and 90 % of the count); issue 12: ≥ 20,000 events/s: "
                f"{yes(ev_worker >= 20_000)}.", ""]
    if lat is not None:
        out += ["#### Produce-to-visible latency at half the sustained rate", "",
                f"Live Postfix traffic at {lat.rate:,.0f} lines/s ("
                + (f"half of the worker's best {sustained:,.0f} lines/s once flowing above"
                   if not args.latency_rate else "given by --latency-rate")
                + f"; the producer sent {lat.sent_rate:,.0f} lines/s) for {lat.seconds:.0f} s, "
                f"with "
                f"{lat.probes} probe sessions every {args.probe_interval} s, each with a sender "
                f"of its own. Time from the producer's send of a probe's last line until "
                f"/live/v1/sender/{{sender}} counts it (the probes' domain view polled every 20 ms, "
                f"the waiting probes asked when it moves) and until "
                f"/api/v1/volume?search=<run tag> lists it (one request sees every probe; "
                f"polled every 100 ms, which adds up to 0.1 s).", "",
                "| view | seen | p50 ms | p99 ms | max ms | issue 12 goal (p99) |",
                "|---|---|---|---|---|---|"]
        for name, values, goal in (("live (/live/v1)", lat.live, 1.0),
                                   ("ClickHouse (/api/v1)", lat.clickhouse, 5.0)):
            p99 = pct(values, 0.99)
            out.append(f"| {name} | {len(values)}/{lat.probes} | "
                       f"{fmt(ms(pct(values, 0.5)))} | {fmt(ms(p99))} | "
                       f"{fmt(ms(values[-1] if values else None))} | ≤ {goal:.0f} s: "
                       f"{yes(p99 is not None and p99 <= goal and len(values) == lat.probes)} |")
        out.append("")
    if mem is not None:
        filled = mem.reached == mem.senders
        out += [f"#### Worker memory and restart with {mem.senders:,} active senders", "",
                "Canonical events straight onto the events topic, one per sender, while the "
                "worker runs; RSS from /proc/<pid>/status. Beside each figure: the same "
                "worker with an empty table, in the same run."
                + ("" if filled else
                   f" **The table held {mem.reached:,} of {mem.senders:,} senders when the "
                   f"time budget ({args.memory_budget:.0f} s) ran out: the figures are at "
                   f"{mem.reached:,}, and the restart was not timed.**"), "",
                f"| figure | empty table | {mem.reached:,} senders |", "|---|---|---|",
                f"| RSS (VmRSS), MB | {mem.idle_rss:,.0f} | {mem.rss:,.0f} (peak VmHWM "
                f"{mem.hwm:,.0f}) |",
                f"| process start → /live/v1/summary answers right totals, s | "
                f"{mem.idle_answer_s:.1f} (first start) | {fmt(mem.right_s, 1)} (after "
                f"SIGTERM; first answer at {fmt(mem.answer_s, 1)}) |",
                f"| SIGTERM → exit, s | - | {fmt(mem.stop_s, 1)} |",
                f"| RSS after the restart, MB | - | {fmt(mem.restart_rss)} |",
                f"| one /live/v1/summary request, ms (median of 5) | {mem.idle_summary_ms:,.0f} "
                f"| {mem.summary_ms:,.0f} |",
                f"| events → live table while filling it, events/s | - | "
                f"{mem.ingest_events_per_s:,.0f} |", ""]
        if filled:
            out += [f"After the restart the totals equal {mem.senders:,} messages and senders: "
                    f"{yes(mem.exact)}.", ""]
    return out


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


def yes(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "no")


if __name__ == "__main__":
    main()
