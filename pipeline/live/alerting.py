"""Alert wiring: the signals, the `alert` agent, the alert state table, the outputs.

  signals  smtp-auth.events (decoded once, by the count agent) → <app>-alert-signals, keyed
           by what a rule is about (an IP, an account, a domain), so each key's signals meet
           in one partition; plus watermark ticks, so windows close even when no signal comes.
  alert    <app>-alert-signals → decisions (pipeline/live/decide.py) → smtp-auth.alerts (which
           the sink writes to ClickHouse's `alerts` table) and an optional webhook (retried
           with back-off, in the background, never blocking the stream).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import aiohttp
import faust
import orjson

from pipeline.ingest.kafka import key_partition
from pipeline.live.changelog import PartitionStore, TableWriter
from pipeline.live.decide import AlertConfig, AlertEngine, Signal, pending, signals_for
from pipeline.metrics import Metrics
from pipeline.settings import Settings
from schemas.alert import Alert
from schemas.event import CanonicalEvent

log = logging.getLogger(__name__)
TICK_SECONDS = 2.0


def alert_config(s: Settings) -> AlertConfig:
    return AlertConfig(
        grace_seconds=s.alert_grace_seconds, spray_accounts=s.alert_spray_accounts,
        spray_window_seconds=s.alert_spray_window_minutes * 60,
        brute_failures=s.alert_brute_failures,
        brute_window_seconds=s.alert_brute_window_minutes * 60,
        failure_cooldown_seconds=s.alert_failure_cooldown_minutes * 60,
        spike_k=s.alert_spike_k, spike_min_volume=s.alert_spike_min_volume,
        spike_min_history_hours=s.alert_spike_min_history_hours,
        spike_cooldown_hours=s.alert_spike_cooldown_hours)


class Alerting:
    def __init__(self, app: faust.App, settings: Settings, metrics: Metrics,
                 clock: Callable[[], datetime]) -> None:
        self.app = app
        self.settings = settings
        self.metrics = metrics
        self.clock = clock
        self.config = alert_config(settings)
        self.partitions = settings.topic_partitions
        self.signals = app.topic(f"{settings.app_id}-alert-signals", partitions=self.partitions,
                                 internal=True, key_serializer="raw", value_serializer="raw")
        self.alerts_topic = app.topic(settings.topic_alerts, key_serializer="raw",
                                      value_serializer="raw")
        self.table = app.Table("alert-state", default=None, partitions=self.partitions,
                               key_type=str, on_recover=self._on_recovered)
        self.writer = TableWriter(self.table)
        self.engines: dict[int, AlertEngine] = {}
        self._newest: dict[int, float] = {}      # source partition → newest event time
        self._ticked: dict[int, float] = {}      # source partition → wall time of last tick
        self._webhook: asyncio.Queue[Alert] = asyncio.Queue(maxsize=10_000)
        # (source, signal partition) → key → signals
        self._outbox: dict[tuple[int, int], dict[str, list[list[Any]]]] = {}
        self._seen: dict[int, float] = {}  # source partition → newest, not yet flushed
        app.agent(self.signals, name="alert")(self._alert_agent)
        app.timer(TICK_SECONDS, name="alert-ticks")(self._tick)
        if settings.alert_webhook_url:
            app.task(self._webhook_task)

    # ---- signal: events → keyed signals -------------------------------------------------
    # Fed by the count agent (pipeline/live/counters.py), which decodes each event once and
    # hands over only the events it counted, with their offsets.
    def observe(self, event: CanonicalEvent, source: int, offset: int,
                first_legacy: bool) -> None:
        ts = event.ts.timestamp()
        self._seen[source] = max(self._seen.get(source, self._newest.get(source, ts)), ts)
        for signal in signals_for(event):
            if signal.key.startswith("snd:") and not first_legacy:
                continue  # only a sender's first legacy-TLS submission can alert
            keys = self._outbox.setdefault((source, self._partition(signal.key)), {})
            keys.setdefault(signal.key, []).append(
                [signal.ts, signal.account, signal.event_id, offset])

    def _partition(self, key: str) -> int:
        """The signal partition of a key: Kafka's default partitioner, as when each key was
        its own message, so a key's state stays where it was."""
        return key_partition(key.encode(), self.partitions)  # cached there, by key

    async def flush(self) -> None:
        """Hand the batch's signals to the producer before the counters write theirs: one
        message per source and signal partition, each with every key's signals of the
        batch (a hot key, such as every legacy-TLS submission's domain, is one entry)."""
        outbox, self._outbox = self._outbox, {}
        name = self.signals.get_topic_name()
        send = self.app.producer.send
        for (source, partition), keys in outbox.items():
            # The watermark a group carries is what the ticks already said for its source,
            # not the batch's newest: the batch's other keys come after it, and must not be
            # judged late against it. The batch's progress follows in the next tick.
            body = orjson.dumps({"src": source, "max": self._newest.get(source, 0.0),
                                 "keys": keys})
            await send(name, None, body, partition, None, None)
        # Only now may the ticks carry the batch's event times: a tick that overtook the
        # batch's signals would close their windows before they arrive.
        self._newest.update(self._seen)

    async def _tick(self) -> None:
        """Watermark ticks to every signal partition. They are judged by the alert agent
        itself: faust writes a table only from inside the stream of its partition."""
        now = time.monotonic()
        for source, newest in list(self._newest.items()):
            if now - self._ticked.get(source, 0.0) >= TICK_SECONDS:
                self._ticked[source] = now
                body = orjson.dumps({"tick": True, "src": source, "max": newest})
                for partition in range(self.partitions):
                    await self.signals.send(value=body, partition=partition)

    # ---- alert: keyed signals → decisions -----------------------------------------------
    def _engine(self, partition: int) -> AlertEngine:
        engine = self.engines.get(partition)
        if engine is None:
            engine = self.engines[partition] = AlertEngine(
                self.config, PartitionStore(self.writer, partition))
        return engine

    async def _alert_agent(self, stream: Any) -> None:
        async for event in stream.events():
            partition = event.message.partition
            try:
                # orjson: a signal message groups a batch's signals, and stdlib json was
                # an eighth of the worker's loop decoding them.
                record = orjson.loads(event.message.value)
                engine = self._engine(partition)
                source = int(record["src"])
                engine.advance(source, float(record["max"]))
                if record.get("tick"):
                    alerts = engine.tick()
                    await self.writer.flush()
                    await self._publish(alerts)
                    continue
                groups = _groups(record, source)
            except (ValueError, KeyError, TypeError):
                log.warning("unreadable alert signal at %s", event.message.offset)
                continue
            alerts = []
            for key, signals in groups.items():
                alerts += engine.feed_many(key, signals)
                state = self.writer.get(key)
                if state is not None and state.get("p") != partition:
                    state["p"] = partition
                    self.writer.set(key, state, partition)
            await self.writer.flush()
            await self._publish(alerts)

    async def _on_recovered(self) -> None:
        # Keys with open windows must be judged again after a restart or rebalance.
        for key, state in self.table.items():
            if state is not None and pending(state):
                self._engine(int(state.get("p", 0))).recheck(key)

    # ---- outputs ----------------------------------------------------------------------
    async def _publish(self, alerts: list[Alert]) -> None:
        if not alerts:
            return
        # ClickHouse gets them from the alerts topic through the sink, which retries and
        # writes idempotently (alert ids are stable): an outage cannot lose an alert here.
        for alert in alerts:
            # Data, not a fault. An info alert (a sender's first legacy-TLS submission) comes
            # once per such sender, a flood on a first run: the status line counts them.
            log.log(logging.DEBUG if alert.severity == "info" else logging.INFO,
                    "ALERT %s %s: %s", alert.rule, alert.key, alert.message)
            self.metrics.alerts.labels(alert.rule).inc()
            await self.alerts_topic.send(key=alert.alert_id.encode(),
                                         value=alert.model_dump_json().encode())
            if self.settings.alert_webhook_url:
                if self._webhook.full():
                    self.metrics.webhook_failures.labels("queue_full").inc()
                else:
                    self._webhook.put_nowait(alert)

    async def _webhook_task(self) -> None:
        url = self.settings.alert_webhook_url
        assert url is not None
        token = self.settings.alert_webhook_token
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token.get_secret_value()}"
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            while True:
                alert = await self._webhook.get()
                await self._post(session, url, headers, alert)

    async def _post(self, session: aiohttp.ClientSession, url: str, headers: dict[str, str],
                    alert: Alert) -> None:
        delay = 1.0
        for attempt in range(1, 6):
            try:
                async with session.post(url, data=alert.model_dump_json(),
                                        headers=headers) as response:
                    if response.status < 300:
                        return
                    reason = f"HTTP {response.status}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                reason = type(exc).__name__
            self.metrics.webhook_failures.labels("attempt").inc()
            log.warning("webhook attempt %d for alert %s failed: %s", attempt,
                        alert.alert_id, reason)
            await asyncio.sleep(delay)  # back-off between attempts
            delay *= 2
        self.metrics.webhook_failures.labels("gave_up").inc()


def _groups(record: dict[str, Any], source: int) -> dict[str, list[Signal]]:
    """The signals of one message by key: a batch's group (`keys`), or one key's (`k`, as
    written before the groups went by partition), or one signal (before that)."""
    if "keys" in record:
        return {str(key): [Signal(str(key), float(s[0]), str(s[1]), str(s[2]), source,
                                  int(s[3])) for s in signals]
                for key, signals in record["keys"].items()}
    key = str(record["k"])
    if "sigs" in record:
        return {key: [Signal(key, float(ts), str(account), str(event_id))
                      for ts, account, event_id in record["sigs"]]}
    return {key: [Signal(key, float(record["ts"]), record.get("a", ""), record.get("id", ""))]}
