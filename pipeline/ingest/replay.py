"""`smtp-auth replay`: a log file (or stdin) → the raw topic, keyed by server so each
server's lines stay ordered in one partition, with a progress bar. The same line-reading
rules as `smtp-auth normalize` (line ends stripped; `--keyed` splits `server<TAB>line`)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import BinaryIO

from aiokafka import AIOKafkaProducer
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

from pipeline.ingest.kafka import client_options, ensure_topics
from pipeline.ingest.syslog import parse_syslog
from pipeline.settings import Settings

KAFKA_LIMIT = 900_000  # under the broker's default 1 MB message size, with room for the key


@dataclass(slots=True)
class Replayed:
    lines: int = 0
    cut: int = 0  # longer than Kafka takes: cut, and the worker dead-letters them as too long


def server_of(raw: bytes, host: bytes | None, keyed: bool,
              received: datetime) -> tuple[bytes | None, bytes]:
    """(key, message) for one line: the shipped server, or the syslog header's host."""
    raw = raw.rstrip(b"\r\n")
    if keyed:
        key, _, raw = raw.partition(b"\t")
        return key, raw
    if host is not None:
        return host, raw
    line = parse_syslog(raw[:1024].decode("utf-8", "replace"), received, UTC)
    return (line.host.encode() if line else None), raw


async def replay(settings: Settings, sources: Iterable[tuple[str, BinaryIO, int | None]],
                 host: str | None, keyed: bool, show_progress: bool = True) -> Replayed:
    """Produce every line of every (name, file, size) in order; flushed before returning."""
    await ensure_topics(settings)
    producer = AIOKafkaProducer(acks="all", linger_ms=20, **client_options(settings))
    await producer.start()
    done = Replayed()
    default = host.encode() if host else None
    received = datetime.now(UTC)  # only for year inference, which the key does not need
    try:
        with Progress("{task.description}", BarColumn(), DownloadColumn(),
                      TimeRemainingColumn(), disable=not show_progress) as progress:
            for name, stream, size in sources:
                task = progress.add_task(name, total=size)
                for raw in stream:
                    key, message = server_of(raw, default, keyed, received)
                    if len(message) > KAFKA_LIMIT:
                        message = message[:KAFKA_LIMIT]
                        done.cut += 1
                    await producer.send(settings.topic_raw, message, key=key)
                    done.lines += 1
                    progress.update(task, advance=len(raw))
        await producer.flush()
    finally:
        await producer.stop()
    return done


def run_replay(settings: Settings, sources: Iterable[tuple[str, BinaryIO, int | None]],
               host: str | None, keyed: bool, show_progress: bool) -> Replayed:
    return asyncio.run(replay(settings, sources, host, keyed, show_progress))
