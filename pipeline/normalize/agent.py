"""The `normalize` agent: smtp-auth.raw → smtp-auth.events (key: sender) + smtp-auth.dlq.

Wiring around the pure normalizer. Acks are manual: a raw line is acked when everything it
contributed to has been emitted, and acks leave in offset order (pipeline/normalize/acks.py),
so a restart replays the lines of still-open sessions and rebuilds them. Sessions of a
server that went quiet end by the receive clock, only on a partition read to its end.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import faust

from pipeline.metrics import Metrics
from pipeline.normalize.acks import AckOrder
from pipeline.normalize.dialects.base import NormalizeConfig
from pipeline.normalize.normalizer import Normalizer
from pipeline.normalize.outcome import Origin, Outcome
from pipeline.settings import Settings


class NormalizeAgent:
    def __init__(self, app: faust.App, settings: Settings, raw_topic: Any, events_topic: Any,
                 dlq_topic: Any, metrics: Metrics, clock: Callable[[], datetime]) -> None:
        self.app = app
        self.settings = settings
        self.events_topic = events_topic
        self.dlq_topic = dlq_topic
        self.metrics = metrics
        self.clock = clock
        self.normalizers: dict[int, Normalizer] = {}
        self.acks: AckOrder[Any] = AckOrder()
        self._ack_stream: Any = None
        self._fed: dict[int, int] = {}  # raw partition → offset of the last line fed
        app.agent(raw_topic, name="normalize")(self._agent)
        app.timer(max(1.0, settings.session_timeout_seconds / 10), name="expire-idle")(
            self._expire)
        app.on_partitions_revoked.connect(self._on_revoked)  # type: ignore[arg-type]  # stub

    def _normalizer(self, partition: int) -> Normalizer:
        normalizer = self.normalizers.get(partition)
        if normalizer is None:
            normalizer = self.normalizers[partition] = Normalizer(
                NormalizeConfig.from_settings(self.settings), self.settings.max_line_bytes,
                metrics=self.metrics)
        return normalizer

    async def _agent(self, stream: Any) -> None:
        stream = stream.noack()
        self._ack_stream = stream
        async for event in stream.events():
            message = event.message
            self.acks.fed(message.partition, message.offset)
            self._fed[message.partition] = message.offset
            outcome = self._normalizer(message.partition).feed(
                message.value or b"", event, self.clock(),
                Origin(message.topic, message.partition, message.offset), key=message.key)
            await self._route(outcome, stream)

    async def _route(self, outcome: Outcome, stream: Any) -> None:
        for ev in outcome.events:
            await self.events_topic.send(key=(ev.sender or "").encode(),
                                         value=ev.model_dump_json().encode())
        for rejection in outcome.rejections:
            await self.dlq_topic.send(value=rejection.model_dump_json().encode())
        for done in outcome.released:
            event: Any = done  # the worker's tokens are faust events
            for ready in self.acks.released(event.message.partition, event.message.offset,
                                            event):
                await stream.ack(ready)
        self.metrics.pending.set(sum(n.pending() for n in self.normalizers.values()))

    async def _expire(self) -> None:
        """Sessions of servers that went quiet end by the receive clock. Only on a partition
        read up to its end: lines still waiting in Kafka would show the server is not quiet,
        and a worker behind (a replay, a restart) expires by event time alone."""
        if self._ack_stream is None:
            return
        now = self.clock()
        for partition, normalizer in list(self.normalizers.items()):
            if self._caught_up(partition):
                await self._route(normalizer.expire_quiet(now), self._ack_stream)

    def assigned(self) -> bool:
        return any(tp.topic == self.settings.topic_raw
                   for tp in self.app.assignor.assigned_actives())

    def _highwater(self, partition: int) -> int | None:
        from faust.types import TP

        try:
            highwater = self.app.consumer.highwater(TP(self.settings.topic_raw, partition))
        except Exception:  # no consumer yet, or the partition just left: not known
            return None
        return None if highwater is None else int(highwater)

    def lag(self) -> int | None:
        """Raw lines on the assigned partitions not yet fed (None while unknown)."""
        total = 0
        for partition, fed in list(self._fed.items()):
            highwater = self._highwater(partition)
            if highwater is None:
                return None
            total += max(0, highwater - fed - 1)
        return total

    def _caught_up(self, partition: int) -> bool:
        highwater = self._highwater(partition)
        fed = self._fed.get(partition)
        return highwater is not None and fed is not None and fed + 1 >= highwater

    async def _on_revoked(self, app: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
        revoked = args[0] if args else kwargs.get("revoked", ())
        # The new owner replays the unacked lines of these partitions; forget our copy.
        for tp in revoked:
            if tp.topic == self.settings.topic_raw:
                self.normalizers.pop(tp.partition, None)
                self._fed.pop(tp.partition, None)
                self.acks.forget(tp.partition)
