"""Live counters and views: the `count` agent, its table, and the /live/v1 endpoints.

Wiring only; the counting is in pipeline/live/count.py. The table is keyed by sender, like the
events topic, so each worker holds the senders of its partitions. A view asks every worker
that owns partitions (from faust's assignment) for its local part and adds them up, so any
worker gives the same answer; a sender's view is routed to the worker that holds it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

import aiohttp
import faust
from pydantic import ValidationError

from pipeline.live import count
from pipeline.live.changelog import TableWriter
from pipeline.live.count import Aggregates
from pipeline.live.feed import unframe
from pipeline.metrics import Metrics
from pipeline.settings import Settings
from pipeline.web.access import Access
from schemas.event import CanonicalEvent

log = logging.getLogger(__name__)
TOP = 20
FRAMES_PER_TAKE = 16  # frames (each at most one fetch of a partition) counted at a time
MAX_DIRTY = 50_000  # senders changed since the last flush that force the next one


class Observer(Protocol):
    """Another consumer of the counted events (the alert signals): it sees each event the
    counters counted (not a replayed or duplicate copy) with its offset in the events topic,
    and flushes what it derived before the counters write theirs."""

    def observe(self, event: CanonicalEvent, partition: int, offset: int,
                first_legacy: bool) -> None: ...

    async def flush(self) -> None: ...


class LiveCounters:
    def __init__(self, app: faust.App, settings: Settings,
                 clock: Callable[[], datetime], metrics: Metrics,
                 observers: Sequence[Observer] = ()) -> None:
        self.app = app
        self.observers = list(observers)  # the alert signals read the same decoded events
        self.settings = settings
        self.clock = clock
        self.metrics = metrics
        self.lateness_hours = max(0, int(settings.allowed_lateness_seconds // 3600))
        # The events, a fetch per message (pipeline/live/feed.py), same partition numbers.
        self.feed_topic = app.topic(
            f"{settings.app_id}-count-feed", partitions=settings.topic_partitions,
            internal=True, key_serializer="raw", value_serializer="raw")
        self.table = app.Table(
            "sender-counts", default=None, partitions=settings.topic_partitions,
            on_recover=self._on_recovered, key_type=str)
        self.writer = TableWriter(self.table)
        self.aggregates: dict[int, Aggregates] = {}
        self._peer_headers = Access(settings).header()  # credentials for the other workers
        self.watermarks: dict[tuple[int, str], int] = {}  # (partition, server) → newest hour
        self._rebuild = True
        self._prune_due: set[int] = set()  # partitions whose entries the agent must prune
        app.agent(self.feed_topic, name="count")(self._count_agent)
        app.timer(settings.prune_interval_seconds, name="prune-counters")(self._prune_tick)
        app.on_partitions_assigned.connect(self._on_assigned)  # type: ignore[arg-type]
        self._routes()

    # ---- counting ---------------------------------------------------------------------
    async def _count_agent(self, stream: Any) -> None:
        """A few frames at a time (each a fetch of the events topic): each event is decoded
        once (for the counters and the alert signals), each touched sender's entry is
        written once per flush, and the frames are acknowledged only after the signals and
        then the changelog records are with the producer (faust flushes the producer before
        it commits an offset). Signals go first: a crash between the two re-counts the
        events and sends their signals again, which the alert state skips by offset; the
        other order could lose them."""
        stream = stream.noack()
        s = self.settings
        unacked: list[Any] = []
        flushed = time.monotonic()
        async for batch in stream.noack_take(FRAMES_PER_TAKE, s.count_batch_seconds):
            self._ensure_aggregates()
            counted = 0
            for frame in batch:
                message = frame.message
                try:
                    records = list(unframe(message.value))
                except ValueError as exc:  # not ours: nothing in it can be counted
                    log.warning("count: skipped an unreadable frame at %s/%s: %s",
                                message.partition, message.offset, exc)
                    continue
                counted += self._count_records(message.partition, records)
            self.metrics.counted.inc(counted)
            unacked += batch
            if self._prune_due:
                self._prune()
            # The views read the table at once; the flush (and with it the acknowledgement)
            # waits while frames keep coming, so a busy sender is one record per flush
            # rather than one per take. A take that did not fill means the input is idle.
            if (len(batch) < FRAMES_PER_TAKE or self.writer.dirty() >= MAX_DIRTY
                    or time.monotonic() - flushed >= s.count_flush_seconds):
                for observer in self.observers:
                    await observer.flush()
                await self.writer.flush()  # one changelog record per touched sender
                for frame in unacked:
                    await stream.ack(frame)
                unacked, flushed = [], time.monotonic()

    def _count_records(self, partition: int, records: list[tuple[int, bytes, bytes]]) -> int:
        observers = self.observers
        n = 0
        for offset, key, value in records:
            try:
                event = CanonicalEvent.model_validate_json(value)
            except ValidationError:
                continue  # the sink dead-letters it; nothing to count
            applied, first_legacy = self._count(key.decode("utf-8", errors="replace"), event,
                                                partition, offset)
            if applied:
                n += 1
                for observer in observers:
                    observer.observe(event, partition, offset, first_legacy)
        return n

    def _count(self, key: str, event: CanonicalEvent, partition: int,
               offset: int) -> tuple[bool, bool]:
        """Count one event; returns whether it counted, and whether it is the first legacy-
        TLS submission of its sender (the alert signals want only that one)."""
        # Lateness by the source's own clock: each server's lines keep their order (one raw
        # partition), so an event is late only against its server's progress, not against
        # whichever server a backlog replays faster.
        hour = count.hour_of(event.ts)
        source = (partition, event.server)
        watermark = max(self.watermarks.get(source, hour), hour)
        self.watermarks[source] = watermark
        entry = self.writer.get(key)
        if entry is None:
            entry = count.new_entry()
        entry["p"] = partition
        # In place, no copy: the sums take the event's delta and what pruning removed.
        applied = count.apply(entry, event, offset, watermark, self.lateness_hours)
        agg = self.aggregates.get(partition)
        if agg is None:  # not setdefault(): that would build an Aggregates per event
            agg = self.aggregates[partition] = Aggregates()
        if applied.removed is not None:
            agg.add(key, applied.removed, -1)
        if applied.added is not None:
            agg.add(key, applied.added)
        first_legacy = False
        if applied.counted and event.legacy_tls and event.sender and not entry.get("leg"):
            entry["leg"] = 1
            first_legacy = True
        self.writer.set(key, entry, partition)  # the counts, offset and ids: one record
        return applied.counted, first_legacy

    def _ensure_aggregates(self) -> None:
        """After an assignment, rebuild the sums from the recovered table entries."""
        if not self._rebuild or self.app.in_recovery:
            return
        active = self._active()
        by_partition: dict[int, list[tuple[str, Any]]] = {p: [] for p in active}
        for key, entry in self.table.items():
            if entry is not None and entry.get("p") in by_partition:
                by_partition[entry["p"]].append((key, entry))
        self.aggregates = {p: count.rebuild(rows) for p, rows in by_partition.items()}
        self._rebuild = False

    def _active(self) -> set[int]:
        feed = self.feed_topic.get_topic_name()
        return {tp.partition for tp in self.app.assignor.assigned_actives()
                if tp.topic == feed}

    async def _on_assigned(self, app: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
        self._rebuild = True

    async def _on_recovered(self) -> None:
        # The table now holds what its changelog had: the sums must be rebuilt from it.
        self._rebuild = True

    async def _prune_tick(self) -> None:
        """Only marks the partitions due: the count agent prunes between two batches, so
        an entry is never changed by two hands at once, and its changelog record goes to
        its own partition. An idle worker keeps old buckets until its next batch; the views
        skip them by their window."""
        self._prune_due |= self._active()

    def _prune(self) -> None:
        due, self._prune_due = self._prune_due & self._active(), set()
        # Buckets leave by the wall clock (the views' window); ids by the partition's event
        # time, so a replayed old log keeps its dedup memory while it is being replayed.
        window_hour = count.hour_of(self.clock())
        ids_hour = {p: min((w for (q, _), w in self.watermarks.items() if q == p),
                           default=window_hour)  # the slowest source: keep its ids long enough
                    for p in due}
        pruned_entries = 0
        for key, entry in self.writer.items():  # one walk for all due partitions
            partition = entry.get("p") if entry is not None else None
            if partition not in due:
                continue
            removed = count.prune(entry, window_hour, ids_hour[partition])
            if removed is not None:
                agg = self.aggregates.get(partition)
                if agg is not None:
                    agg.add(key, removed, -1)
                self.writer.set(key, entry, partition)
                pruned_entries += 1
        self.metrics.counter_prunes.inc()
        self.metrics.counter_pruned_entries.inc(pruned_entries)

    def recovering(self) -> bool:
        """True until faust has read the tables back once (the worker's web server and the
        sink start before that), while it reads them again (a rebalance), and until the
        sums are rebuilt afterwards."""
        self._ensure_aggregates()
        recovered = self.app.tables.recovery.completed  # type: ignore[attr-defined]
        return not recovered.is_set() or bool(self.app.in_recovery) or self._rebuild

    def _local(self) -> list[Aggregates]:
        self._ensure_aggregates()
        return list(self.aggregates.values())

    # ---- views ------------------------------------------------------------------------
    def local_part(self, view: str, arg: str | None = None) -> Any:
        now = self.clock()
        parts = self._local()
        if view == "summary":
            part = count.merge_summaries(count.summary(a, now) for a in parts)
            # While a table is read back from its changelog (a restart, a rebalance) the
            # sums are partial: say so, rather than show a drop that is not one.
            part["recovering"] = self.recovering()
            return part
        if view == "domain":
            out: dict[str, int] = {}
            for a in parts:
                for tls, n in count.domain_view(a, arg or "", now).items():
                    out[tls] = out.get(tls, 0) + n
            return out
        if view == "sender":
            # Only the owner answers with the entry (a former owner may still hold a stale
            # copy of it); the others answer zeros, so the sum is exact.
            entry = self.table.get(arg or "")
            owned = entry is not None and entry.get("p") in self._active()
            return count.sender_view(entry if owned else None, now)
        if view == "legacy":
            return count.merge_top((count.top_legacy(a, now, TOP) for a in parts), TOP)
        if view == "failures":
            # By IP: complete per worker (one IP's failures span partitions); by account: top.
            return {"by_ip": count.merge_top(
                        (count.top_failures(a.failures_ip, now, 10**9) for a in parts), 10**9),
                    "by_account": count.merge_top(
                        (count.top_failures(a.failures_account, now, TOP) for a in parts),
                        TOP)}
        raise KeyError(view)

    async def gather(self, view: str, arg: str | None = None) -> list[Any]:
        """Every worker's local part (ours directly, the others' over HTTP)."""
        own = str(self.app.conf.canonical_url).rstrip("/")
        hosts = {str(h).rstrip("/") for h in self.app.router.table_metadata(self.table.name)}
        parts = [self.local_part(view, arg)]
        others = sorted(hosts - {own})
        if others:
            params = {"view": view, **({"arg": arg} if arg is not None else {})}
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10),
                                             headers=self._peer_headers) as s:
                parts += await asyncio.gather(*(self._fetch(s, h, params) for h in others))
        return parts

    @staticmethod
    async def _fetch(session: aiohttp.ClientSession, host: str, params: dict[str, str]) -> Any:
        async with session.get(f"{host}/live/v1/local", params=params) as response:
            response.raise_for_status()
            return await response.json()

    async def summary(self) -> dict[str, Any]:
        parts = await self.gather("summary")
        return count.merge_summaries(parts)

    def _routes(self) -> None:
        app = self.app

        @app.page("/live/v1/local", name="live-local")
        async def local(web: Any, request: Any) -> Any:
            view = request.query.get("view", "")
            if view not in ("summary", "domain", "legacy", "failures", "sender"):
                return web.json({"error": f"unknown view {view!r}"}, status=400)
            return web.json(self.local_part(view, request.query.get("arg")))

        @app.page("/live/v1/summary", name="live-summary")
        async def summary(web: Any, request: Any) -> Any:
            return web.json(await self.summary())

        @app.page("/live/v1/domain/{domain}", name="live-domain")
        async def domain(web: Any, request: Any, domain: str) -> Any:
            total: dict[str, int] = {}
            for part in await self.gather("domain", domain.lower()):
                for tls, n in part.items():
                    total[tls] = total.get(tls, 0) + n
            return web.json({"domain": domain.lower(), "messages": sum(total.values()),
                             "by_tls": dict(sorted(total.items()))})

        @app.page("/live/v1/legacy", name="live-legacy")
        async def legacy(web: Any, request: Any) -> Any:
            rows = count.merge_top(await self.gather("legacy"), TOP)
            return web.json([{"sender": s, "messages": n} for s, n in rows])

        @app.page("/live/v1/failures", name="live-failures")
        async def failures(web: Any, request: Any) -> Any:
            parts = await self.gather("failures")
            return web.json({
                key: [{"key": k, "failures": n} for k, n in count.merge_top(
                    (p[key] for p in parts), TOP)] for key in ("by_ip", "by_account")})

        @app.page("/live/v1/sender/{sender}", name="live-sender")
        async def sender(web: Any, request: Any, sender: str) -> Any:
            parts = await self.gather("sender", sender)
            by_tls: dict[str, int] = {}
            for part in parts:
                for tls, n in part["by_tls"].items():
                    by_tls[tls] = by_tls.get(tls, 0) + n
            return web.json({"sender": sender, "messages": sum(by_tls.values()),
                             "by_tls": dict(sorted(by_tls.items())),
                             "auth_failures": sum(p["auth_failures"] for p in parts),
                             "late": sum(p["late"] for p in parts)})

        @app.page("/live/v1/stream", name="live-stream")
        async def stream(web: Any, request: Any) -> Any:
            return await self._sse(request)

    async def _sse(self, request: Any) -> Any:
        """Server-sent events: the merged summary every 2 s while the client listens."""
        from aiohttp import web as aioweb

        response = aioweb.StreamResponse(headers={
            "Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        try:
            while True:
                payload = json.dumps(await self.summary())
                await response.write(f"event: summary\ndata: {payload}\n\n".encode())
                await asyncio.sleep(2.0)  # the push interval, not a wait for a result
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        return response
