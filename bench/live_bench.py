"""Benchmark: the live counters path of one worker against a bare aiokafka consumer.

1. Throughput: N canonical events are put on a fresh events topic; a bare aiokafka consumer
   reads them all (the baseline), then a worker (normalize idle, counters, alerts, sink)
   counts them; its sustained rate is taken between 10 % and 90 % of the count.
2. Latency: with the worker caught up, events are produced one by one at a stated rate and
   the time until each is visible in /live/v1/summary is recorded (p50, p99).

Starts its own broker (deploy/kafka/kafka.sh) unless SMTP_AUTH_BENCH_KAFKA is set.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from schemas.event import AuthEvent

ROOT = Path(__file__).resolve().parents[1]
KAFKA = ROOT / "deploy" / "kafka" / "kafka.sh"


def event(n: int, ts: datetime) -> bytes:
    return AuthEvent(event_id=f"b{n}", kind="submission", ts=ts, server="mx1", source="json",
                     sender=f"u{n % 5000}@d{n % 50}.example", sender_domain=f"d{n % 50}.example",
                     tls_version=("TLS1.2", "TLS1.3", "TLS1.0")[n % 3], client_ip="192.0.2.1",
                     recipients=1, size=1000).model_dump_json().encode()


async def produce(bootstrap: str, topic: str, start: int, count: int, rate: float = 0,
                  stamps: dict[int, float] | None = None) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=2)
    await producer.start()
    try:
        now = datetime.now(UTC)
        for i in range(start, start + count):
            value = event(i, now + timedelta(milliseconds=i - start))
            if rate:
                await producer.send_and_wait(topic, value, key=f"u{i % 5000}".encode())
                if stamps is not None:
                    stamps[i] = time.perf_counter()
                await asyncio.sleep(1 / rate)  # the stated input rate
            else:
                await producer.send(topic, value, key=f"u{i % 5000}".encode())
        await producer.flush()
    finally:
        await producer.stop()


async def bare_consumer(bootstrap: str, topic: str, count: int) -> float:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False, group_id=f"bare-{uuid.uuid4().hex}")
    await consumer.start()
    try:
        seen, start = 0, time.perf_counter()
        while seen < count:
            for records in (await consumer.getmany(timeout_ms=500, max_records=5000)).values():
                for record in records:
                    json.loads(record.value)  # the same decoding work the counters must do
                seen += sum(1 for _ in records)
        return count / (time.perf_counter() - start)
    finally:
        await consumer.stop()


async def group_lag(bootstrap: str, group: str) -> int:
    """Messages the worker's consumer group has not committed yet, over all its topics."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await admin.start()
    await consumer.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
        ends = await consumer.end_offsets(list(committed))
        return sum(max(0, ends[tp] - meta.offset) for tp, meta in committed.items())
    finally:
        await consumer.stop()
        await admin.close()


def summary(port: int, path: str = "/live/v1/summary") -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return int(json.loads(r.read())["messages"])
    except OSError:
        return -1


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--samples", type=int, default=300)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-live-"))
    bootstrap = os.environ.get("SMTP_AUTH_BENCH_KAFKA") or subprocess.run(
        ["bash", str(KAFKA), "start", str(work / "kafka")], check=True, capture_output=True,
        text=True).stdout.strip().splitlines()[-1]
    prefix = f"bench{uuid.uuid4().hex[:6]}"
    topic = f"{prefix}.events"

    async def setup() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        await admin.create_topics([NewTopic(f"{prefix}.{t}", 4, 1)
                                   for t in ("raw", "events", "dlq", "alerts")])
        await admin.close()

    asyncio.run(setup())
    asyncio.run(produce(bootstrap, topic, 0, args.events))
    baseline = asyncio.run(bare_consumer(bootstrap, topic, args.events))

    port = 6500 + os.getpid() % 1000
    env = dict(os.environ, SMTP_AUTH_KAFKA_BOOTSTRAP_SERVERS=bootstrap, SMTP_AUTH_APP_ID=prefix,
               SMTP_AUTH_TOPIC_RAW=f"{prefix}.raw", SMTP_AUTH_TOPIC_EVENTS=topic,
               SMTP_AUTH_TOPIC_DLQ=f"{prefix}.dlq", SMTP_AUTH_TOPIC_ALERTS=f"{prefix}.alerts",
               SMTP_AUTH_DATA_DIR=str(work / "worker"), SMTP_AUTH_WEB_PORT=str(port))
    worker = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "worker"], env=env,
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        low, high = args.events // 10, args.events * 9 // 10
        t_low = t_high = None
        deadline = time.monotonic() + 600
        while t_high is None and time.monotonic() < deadline:
            n = summary(port)
            if t_low is None and n >= low:
                t_low, n_low = time.perf_counter(), n
            if n >= high and t_low is not None:
                t_high, n_high = time.perf_counter(), n
            time.sleep(0.05)  # poll
        assert t_low is not None and t_high is not None, "the worker did not catch up"
        counters = (n_high - n_low) / (t_high - t_low)
        # Latency is measured on an idle worker: every agent (the sink too) caught up.
        while summary(port) < args.events or summary(port, "/api/v1/summary") < args.events:
            time.sleep(0.2)  # poll
        while asyncio.run(group_lag(bootstrap, prefix)) > 50:  # the alert agents too
            time.sleep(1.0)  # poll

        stamps: dict[int, float] = {}
        latencies: list[float] = []
        seen = args.events

        async def measure() -> None:
            nonlocal seen
            task = asyncio.create_task(produce(bootstrap, topic, args.events, args.samples,
                                               args.rate, stamps))
            while seen < args.events + args.samples:
                n = await asyncio.to_thread(summary, port)
                now = time.perf_counter()
                for i in range(seen, min(n, args.events + args.samples)):
                    if i in stamps:
                        latencies.append(now - stamps[i])
                seen = max(seen, n)
                await asyncio.sleep(0.01)  # poll
            await task

        asyncio.run(measure())
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=60)
        if not os.environ.get("SMTP_AUTH_BENCH_KAFKA"):
            subprocess.run(["bash", str(KAFKA), "stop", str(work / "kafka")], check=False)
        shutil.rmtree(work, ignore_errors=True)
    latencies.sort()
    p50 = latencies[len(latencies) // 2]
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(f"### Live counters ({time.strftime('%Y-%m-%d')})\n")
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; local KRaft broker; 4 partitions.\n")
    print("| path | events/s |\n|---|---|")
    print(f"| bare aiokafka consumer (read + JSON decode) | {baseline:,.0f} |")
    print(f"| worker: counters path (while also sinking to ClickHouse) | {counters:,.0f} |")
    print(f"\nRatio worker / bare consumer: **{counters / baseline:.2f}** "
          f"({args.events:,} events).\n")
    print(f"Produce-to-visible latency of /live/v1/summary at {args.rate:.0f} events/s "
          f"({len(latencies)} samples): p50 **{p50 * 1000:.0f} ms**, "
          f"p99 **{p99 * 1000:.0f} ms**.\n")


if __name__ == "__main__":
    main()
