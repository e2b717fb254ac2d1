"""Where the integration tests get Kafka and ClickHouse: the one place that chooses.

Default: the local broker (deploy/kafka/kafka.sh) and the embedded engine (chDB), as
processes of this machine. With SMTP_AUTH_TEST_CONTAINERS=1: Kafka and a ClickHouse *server*
from testcontainers, so the workers take the HTTP path of pipeline/store/clickhouse.py. Without a
Docker engine that choice skips the tests that need them, saying why.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

CONTAINERS = os.environ.get("SMTP_AUTH_TEST_CONTAINERS") == "1"
# Pinned as in deploy/compose/docker-compose.yml; cp-kafka because testcontainers' Kafka
# module drives that image (KRaft mode below).
KAFKA_IMAGE = "confluentinc/cp-kafka:7.6.0"
CLICKHOUSE_IMAGE = "clickhouse/clickhouse-server:25.8.26.11"
NO_SERVER = ("needs a ClickHouse server: run with SMTP_AUTH_TEST_CONTAINERS=1 where a Docker"
             " engine is (testcontainers starts one)")


def docker_or_skip() -> None:
    """Skip (not fail) when containers were asked for and no engine answers."""
    try:
        import docker
    except ImportError as exc:
        pytest.skip(f"SMTP_AUTH_TEST_CONTAINERS=1 but testcontainers/docker is not installed:"
                    f" {exc} (pip install -e '.[dev]')")
    try:
        client = docker.from_env(timeout=5)
        client.ping()
        client.close()
    except Exception as exc:  # the SDK raises several kinds for "no engine"
        pytest.skip(f"SMTP_AUTH_TEST_CONTAINERS=1 but no Docker engine answers"
                    f" ({type(exc).__name__}: {exc}); unset it to use the local broker and chDB")


def container_kafka() -> Iterator[str]:
    docker_or_skip()
    from testcontainers.kafka import KafkaContainer

    with KafkaContainer(KAFKA_IMAGE).with_kraft() as kafka:
        yield kafka.get_bootstrap_server()


@dataclass(frozen=True)
class ClickHouseServer:
    host: str
    port: int
    user: str
    password: str

    def url(self, database: str) -> str:
        """CLICKHOUSE_URL for one test's own database (the password goes separately)."""
        return f"http://{self.user}@{self.host}:{self.port}/{database}"


def container_clickhouse() -> Iterator[ClickHouseServer]:
    docker_or_skip()
    from testcontainers.clickhouse import ClickHouseContainer

    with ClickHouseContainer(CLICKHOUSE_IMAGE, username="smtp_auth",
                             password="smtp-auth-test") as ch:
        yield ClickHouseServer(ch.get_container_host_ip(), int(ch.get_exposed_port(8123)),
                               ch.username, ch.password)
