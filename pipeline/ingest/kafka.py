"""Kafka connection settings for faust and aiokafka, and topic creation."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import ssl
import time
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import CoordinatorNotAvailableError, TopicAlreadyExistsError
from aiokafka.partitioner import murmur2

from pipeline.settings import Settings

log = logging.getLogger(__name__)


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    if not settings.kafka_security_protocol.endswith("SSL"):
        return None
    context = ssl.create_default_context(
        cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None)
    if settings.kafka_ssl_certfile:
        context.load_cert_chain(str(settings.kafka_ssl_certfile),
                                str(settings.kafka_ssl_keyfile) if settings.kafka_ssl_keyfile
                                else None)
    return context


def client_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for any aiokafka client (consumer, producer, admin)."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "security_protocol": settings.kafka_security_protocol,
    }
    context = ssl_context(settings)
    if context is not None:
        options["ssl_context"] = context
    if settings.kafka_security_protocol.startswith("SASL"):
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism or "PLAIN"
        options["sasl_plain_username"] = settings.kafka_sasl_username
        if settings.kafka_sasl_password is not None:
            options["sasl_plain_password"] = settings.kafka_sasl_password.get_secret_value()
    return options


@functools.lru_cache(maxsize=65_536)  # senders repeat; murmur2 in Python is ~5 µs a key
def key_partition(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner (murmur2, as the Java client and aiokafka
    use) gives a keyed record on a topic of `partitions` partitions."""
    return int(murmur2(key) & 0x7FFFFFFF) % partitions


def committing_consumer(settings: Settings, stage: str, max_records: int
                        ) -> AIOKafkaConsumer:
    """A consumer of group `<app_id>-<stage>` that commits only what the stage says is safe
    (no auto-commit) and starts, without a committed offset, at the oldest record."""
    return AIOKafkaConsumer(
        group_id=f"{settings.app_id}-{stage}", enable_auto_commit=False,
        auto_offset_reset="earliest", max_poll_records=max_records,
        max_poll_interval_ms=600_000, **client_options(settings))


def backlog(consumer: AIOKafkaConsumer | None,
            done: Callable[[TopicPartition, int], int]) -> int | None:
    """Records on a consumer's partitions from `done(tp, highwater)` on, the first offset its
    stage has not finished with (None before an assignment)."""
    if consumer is None or not consumer.assignment():
        return None
    total = 0
    for tp in consumer.assignment():
        highwater = consumer.highwater(tp)
        if highwater is not None:
            total += max(0, highwater - done(tp, highwater))
    return total


def faust_credentials(settings: Settings) -> Any:
    import faust

    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    context = ssl_context(settings)
    if protocol == "SSL":
        return faust.SSLCredentials(context)
    password = settings.kafka_sasl_password.get_secret_value() if (
        settings.kafka_sasl_password) else None
    return faust.SASLCredentials(
        username=settings.kafka_sasl_username, password=password,
        mechanism=settings.kafka_sasl_mechanism or "PLAIN", ssl_context=context)


def topic_names(settings: Settings) -> list[str]:
    return [settings.topic_raw, settings.topic_events, settings.topic_dlq, settings.topic_alerts]


async def ensure_topics(settings: Settings) -> list[str]:
    """Create the pipeline's topics that do not exist yet; return those created. Then wait
    for the broker's group coordinator: a fresh broker creates its offsets topic on the
    first request for one, and each consumer that asks meanwhile logs an error."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [name for name in topic_names(settings) if name not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # another worker won the race
                await admin.create_topics([
                    NewTopic(name, settings.topic_partitions, settings.topic_replication)
                    for name in missing])
            log.info("created topics %s", ", ".join(missing))
        await _coordinator(admin, settings.app_id)
        return missing
    finally:
        await admin.close()


async def _coordinator(admin: AIOKafkaAdminClient, group: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            await admin.find_coordinator(group)
            return
        except CoordinatorNotAvailableError:
            if time.monotonic() > deadline:
                log.warning("the broker has no group coordinator after %.0f s; the "
                            "consumers will keep asking", timeout)
                return
            await asyncio.sleep(0.2)  # the broker is creating its offsets topic
