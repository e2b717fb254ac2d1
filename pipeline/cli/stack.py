"""`smtp-auth run`: the whole local stack in one command.

Starts a single-node Kafka broker (deploy/kafka/kafka.sh, KRaft, loopback) unless the
bootstrap servers point elsewhere, creates the topics, starts the synthetic feed in a child
process, and runs the worker (embedded ClickHouse, API) in the foreground. Ctrl-C stops all.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from pipeline.ingest.kafka import ensure_topics
from pipeline.settings import Settings

KAFKA_SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "kafka" / "kafka.sh"


def start_broker(data_dir: Path, port: int | None = None) -> str:
    """Start (or find running) the local broker in `data_dir`; return its bootstrap address."""
    if not KAFKA_SCRIPT.exists():
        raise SystemExit(f"{KAFKA_SCRIPT} not found: `smtp-auth run` needs a source checkout")
    args = ["bash", str(KAFKA_SCRIPT), "start", str(data_dir)]
    if port:
        args.append(str(port))
    done = subprocess.run(args, check=False, capture_output=True, text=True)  # noqa: S603
    if done.returncode != 0:
        raise SystemExit(f"could not start the Kafka broker:\n{done.stderr.strip()}")
    return done.stdout.strip().splitlines()[-1]


def stop_broker(data_dir: Path) -> None:
    subprocess.run(["bash", str(KAFKA_SCRIPT), "stop", str(data_dir)], check=False)  # noqa: S603, S607


def _local_port(bootstrap: str) -> int | None:
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    return int(port) if host in ("127.0.0.1", "localhost") and port.isdigit() else None


def run_stack(settings: Settings, rate: float, seed: int) -> None:
    port = _local_port(settings.kafka_bootstrap_servers)
    broker_dir = settings.data_dir / "kafka"
    own_broker = port is not None
    if own_broker:
        bootstrap = start_broker(broker_dir, port)
        print(f"Kafka broker on {bootstrap} (data in {broker_dir})", flush=True)
        settings = settings.model_copy(update={"kafka_bootstrap_servers": bootstrap})
    asyncio.run(ensure_topics(settings))  # before the feed, which must not race the worker
    env = dict(os.environ, SMTP_AUTH_KAFKA_BOOTSTRAP_SERVERS=settings.kafka_bootstrap_servers)
    feed = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "pipeline.cli", "feed", "--rate", str(rate), "--seed", str(seed)],
        env=env)
    base = f"http://{settings.web_host}:{settings.web_port}"
    print(f"Dashboard: {base}/   API: {base}/openapi.json", flush=True)
    try:
        from pipeline.worker import run_worker

        run_worker(settings)
    finally:
        feed.terminate()
        feed.wait(timeout=10)
        if own_broker:
            stop_broker(broker_dir)
