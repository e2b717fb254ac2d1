"""Helpers shared by the tests: polling with a deadline, HTTP, Kafka produce/consume."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

ROOT = Path(__file__).resolve().parents[1]
KAFKA_SCRIPT = ROOT / "deploy" / "kafka" / "kafka.sh"
ARTIFACTS = ROOT / "test-artifacts"
T = TypeVar("T")


def wait_for(probe: Callable[[], T | None], timeout: float, what: str,
             interval: float = 0.2) -> T:
    """Poll `probe` until it returns something truthy, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)  # poll
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_json(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())



def create_topics(bootstrap: str, topics: Sequence[str], partitions: int = 1) -> None:
    async def go() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(t, partitions, 1) for t in topics])
        finally:
            await admin.close()

    asyncio.run(go())


def produce(bootstrap: str, topic: str, items: Sequence[tuple[bytes | None, bytes]]) -> None:
    """Send every (key, value) and wait until the broker has them all."""
    async def go() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        await producer.start()
        try:
            for key, value in items:
                await producer.send(topic, value, key=key)
            await producer.flush()
        finally:
            await producer.stop()

    asyncio.run(go())


def consume(bootstrap: str, topic: str, expected: int, timeout: float) -> list[Any]:
    """Read a topic from the beginning until `expected` records arrived (or the deadline);
    then keep reading briefly so that extra records (duplicates) would show up too."""
    async def go() -> list[Any]:
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap,
                                    auto_offset_reset="earliest", enable_auto_commit=False)
        await consumer.start()
        records: list[Any] = []
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and len(records) < expected:
                batch = await consumer.getmany(timeout_ms=500)
                for part in batch.values():
                    records.extend(part)
            for _ in range(3):  # a short tail: a duplicate would arrive with the rest
                for part in (await consumer.getmany(timeout_ms=300)).values():
                    records.extend(part)
        finally:
            await consumer.stop()
        return records

    return asyncio.run(go())


def json_lines(records: Sequence[Any]) -> list[dict[str, Any]]:
    return [json.loads(r.value) for r in records]


LEGACY = {"TLS1.0", "TLS1.1", "SSL3"}


def live_truth(truth: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """What /live/v1/summary must say for these ground-truth events."""
    from collections import Counter

    subs = [t for t in truth if t["kind"] == "submission"]
    by_tls = dict(sorted(Counter(t["tls_version"] for t in subs).items()))
    legacy = sum(n for tls, n in by_tls.items() if tls in LEGACY)
    return {"messages": len(subs), "by_tls": by_tls,
            "senders": len({t["sender"] for t in subs}),
            "auth_failures": len(truth) - len(subs),
            "legacy_share": round(legacy / len(subs), 6), "late": 0, "recovering": False}


def settle_live(worker: Any, expected: dict[str, Any], what: str, timeout: float = 180) -> Any:
    """Poll the live summary until it equals `expected`; fail with the last answer (and
    at once if the worker exited). Returns that answer."""
    last: list[Any] = []

    def equal() -> bool:
        assert worker.alive(), f"the worker exited:\n{worker.tail()}"
        last.append(worker.get("/live/v1/summary"))
        return bool(last[-1] == expected)

    try:
        wait_for(equal, timeout, what)
    finally:
        assert last and last[-1] == expected
    return last[-1]
