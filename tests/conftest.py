"""Fixtures in one place: the real local Kafka broker, fresh topics, worker processes, polling."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings

from tests import backends
from tests.helpers import KAFKA_SCRIPT, ROOT, free_port, http_json, wait_for

# CI explores a fixed sequence of inputs (reproducible); a developer's run explores new ones.
hypothesis_settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real single-node Apache Kafka broker (KRaft) on loopback, for the whole session
    (from testcontainers with SMTP_AUTH_TEST_CONTAINERS=1: tests/backends.py)."""
    if backends.CONTAINERS:
        yield from backends.container_kafka()
        return
    external = os.environ.get("SMTP_AUTH_TEST_KAFKA")
    if external:
        yield external
        return
    directory = tmp_path_factory.mktemp("kafka")
    done = subprocess.run(["bash", str(KAFKA_SCRIPT), "start", str(directory)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.fail(f"Kafka broker did not start:\n{done.stderr}")
    bootstrap = done.stdout.strip().splitlines()[-1]
    yield bootstrap
    subprocess.run(["bash", str(KAFKA_SCRIPT), "stop", str(directory)], check=False)


@pytest.fixture(scope="session")
def clickhouse_server() -> Iterator[backends.ClickHouseServer]:
    """A ClickHouse server (testcontainers); without SMTP_AUTH_TEST_CONTAINERS=1, a skip."""
    if not backends.CONTAINERS:
        pytest.skip(backends.NO_SERVER)
    yield from backends.container_clickhouse()


@pytest.fixture
def clickhouse_env(request: pytest.FixtureRequest, names: Names) -> dict[str, str]:
    """The worker's ClickHouse: the embedded engine in its data dir (no settings), or, with
    containers, the server with a fresh database per test."""
    if not backends.CONTAINERS:
        return {}
    server: backends.ClickHouseServer = request.getfixturevalue("clickhouse_server")
    return {"CLICKHOUSE_URL": server.url(f"db_{names.prefix}"),
            "SMTP_AUTH_CLICKHOUSE_PASSWORD": server.password}


@dataclass
class Names:
    """A fresh set of topic names and a consumer group for one test."""

    prefix: str

    @property
    def env(self) -> dict[str, str]:
        p = self.prefix
        return {
            "SMTP_AUTH_APP_ID": p,
            "SMTP_AUTH_TOPIC_RAW": f"{p}.raw",
            "SMTP_AUTH_TOPIC_EVENTS": f"{p}.events",
            "SMTP_AUTH_TOPIC_DLQ": f"{p}.dlq",
            "SMTP_AUTH_TOPIC_ALERTS": f"{p}.alerts",
        }


@pytest.fixture
def names() -> Names:
    return Names(f"t{uuid.uuid4().hex[:10]}")


@dataclass
class WorkerProcess:
    env: dict[str, str]
    log: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None
    starts: int = field(default=0)
    module: str = "pipeline.cli"  # tests.failpoints: the same worker with a failpoint armed

    def start(self) -> WorkerProcess:
        self.starts += 1
        handle = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", self.module, "worker"], env=self.env, cwd=ROOT,
            stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(self._healthy, 90, f"worker on port {self.port} (log {self.log})")
        return self

    def _healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"worker exited with {self.proc.returncode}:\n{self.tail()}")
        try:
            return bool(http_json(self.url("/healthz"), timeout=1)["status"] == "ok")
        except OSError:
            return False

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path: str) -> Any:
        return http_json(self.url(path))

    def metrics(self) -> str:
        with urllib.request.urlopen(self.url("/metrics"), timeout=5) as response:
            return str(response.read().decode())

    def sample(self, name: str, **labels: str) -> float:
        """The value of one sample on /metrics (0 when absent)."""
        from prometheus_client.parser import text_string_to_metric_families

        for family in text_string_to_metric_families(self.metrics()):
            for sample in family.samples:
                if sample.name == name and sample.labels == labels:
                    return float(sample.value)
        return 0.0

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no final commit."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture
def worker_factory(kafka: str, names: Names, tmp_path: Path,
                   clickhouse_env: dict[str, str]) -> Iterator[Callable[..., WorkerProcess]]:
    made: list[WorkerProcess] = []

    def make(**overrides: str) -> WorkerProcess:
        port = free_port()
        env = dict(os.environ, **names.env,
                   SMTP_AUTH_KAFKA_BOOTSTRAP_SERVERS=kafka,
                   SMTP_AUTH_DATA_DIR=str(tmp_path / f"worker{len(made)}"),
                   SMTP_AUTH_WEB_PORT=str(port),
                   SMTP_AUTH_SINK_BATCH_SECONDS="0.3")
        env.pop("CLICKHOUSE_URL", None)
        env.update(clickhouse_env)
        env.update(overrides)
        worker = WorkerProcess(env, tmp_path / f"worker{len(made)}.log", port)
        made.append(worker)
        return worker

    yield make
    for worker in made:
        worker.stop()


def corpus_worker(kafka: str, tmp: Path, tag: str, **overrides: str) -> tuple[
        WorkerProcess, list[dict[str, Any]]]:
    """A worker on fresh topics fed the generated 12-day report corpus, waited for until the
    API serves all of it. Returns the worker and the ground truth."""
    from datetime import UTC, datetime

    from tests import report_oracle as oracle
    from tests.helpers import create_topics, produce
    from tests.integration.test_reports import corpus

    names = Names(tag + datetime.now(UTC).strftime("%H%M%S%f"))
    lines, truth = corpus(datetime.now(UTC))
    create_topics(kafka, [names.env["SMTP_AUTH_TOPIC_RAW"]], partitions=2)
    produce(kafka, names.env["SMTP_AUTH_TOPIC_RAW"],
            [(s.encode(), t.encode()) for s, t in lines])
    port = free_port()
    env = dict(os.environ, **names.env, SMTP_AUTH_KAFKA_BOOTSTRAP_SERVERS=kafka,
               SMTP_AUTH_DATA_DIR=str(tmp / "data"), SMTP_AUTH_WEB_PORT=str(port),
               SMTP_AUTH_SINK_BATCH_SECONDS="0.3")
    env.pop("CLICKHOUSE_URL", None)
    env.update(overrides)
    worker = WorkerProcess(env, tmp / "worker.log", port).start()
    headers = {}
    if "SMTP_AUTH_WEB_TOKEN" in overrides:
        headers["Authorization"] = "Bearer " + overrides["SMTP_AUTH_WEB_TOKEN"]

    def get(path: str) -> Any:
        request = urllib.request.Request(worker.url(path), headers=headers)
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def served_all() -> bool:
        # The volume rows and the widget: the widget's rollup is written by a view chained
        # on the volume's, the last to commit of an insert.
        now = datetime.now(UTC)
        widget = get("/api/v1/widget")
        return bool(get("/api/v1/volume?range=30d&page_size=1000")["rows"]
                    == oracle.volume(truth, now, "30d")["rows"]
                    and (widget["senders"], widget["previous_senders"])
                    == oracle.widget(truth, now))

    wait_for(served_all, 240, "the API to serve the whole corpus")
    return worker, truth
