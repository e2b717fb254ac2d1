"""A synthetic Postfix feed for `make run`: realistic sessions produced to the raw topic in
real time, keyed by server so each server's lines stay ordered in one partition."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer

from pipeline.ingest.kafka import client_options
from pipeline.settings import Settings
from pipeline.synthetic import LogGenerator
from pipeline.synthetic.base import iso

log = logging.getLogger(__name__)


async def produce_synthetic(settings: Settings, rate: float, count: int | None,
                            seed: int) -> int:
    """Produce `count` submissions (None: until cancelled) at `rate` per second."""
    producer = AIOKafkaProducer(acks="all", linger_ms=5, **client_options(settings))
    await producer.start()
    sent = 0
    try:
        gen = LogGenerator("postfix", seed, accounts=2000)
        spacing = 1.0 / rate if rate > 0 else 0.001
        start_wall, start = time.monotonic(), datetime.now(UTC)
        for session in gen.sessions(count if count is not None else 2**62, start, spacing):
            first = min(ts for ts, _, _ in session.lines)
            if rate > 0:
                delay = (first - start).total_seconds() - (time.monotonic() - start_wall)
                if delay > 0:
                    await asyncio.sleep(delay)
            for ts, text, syslog in sorted(session.lines):
                line = f"{iso(ts)} {text}" if syslog else text
                await producer.send(settings.topic_raw, line.encode(),
                                    key=session.server.encode())
            sent += sum(t["kind"] == "submission" for t in session.truth)
        await producer.flush()
    finally:
        await producer.stop()
    return sent
