"""aggregate: write events so that the rollups stay exact (see migration 004).

The rollups are materialized views of the events table: each inserted events row is added
once. They stay exact under at-least-once delivery because no stored event is inserted
again: before every insert attempt `unseen` removes the events whose id is already stored.
(The deduplication token alone is not enough: the engine pushes a block that the events
table dropped as a duplicate to the views anyway.) The lookup is by the minute of each
event's time and its id, so its cost follows the batch (the minutes it spans), not what the
hour or the day already holds. Anything that writes events must come through here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pipeline.store.clickhouse import ClickHouse

# Characters of ids per lookup query: the ids are bound as literals, and a query has a size
# limit (256 KiB by default). 5,000 hex ids go in one query (175,000 characters with their
# quotes), not 2,000: each query costs the engine its planning (bench/RESULTS.md).
LOOKUP_CHARS = 180_000


def _minute(ts: datetime) -> datetime:
    return ts.replace(second=0, microsecond=0)


def stored_ids(ch: ClickHouse, keys: Sequence[tuple[datetime, str]]) -> set[str]:
    """Which of these (event time, event id) are stored already."""
    found: set[str] = set()
    for chunk in _chunks(keys):
        rows = ch.query_rows(
            f"SELECT event_id FROM {ch.database}.event_ids"  # noqa: S608 - validated identifier
            " WHERE minute IN {minutes:Array(DateTime('UTC'))}"
            " AND event_id IN {ids:Array(String)}",
            {"minutes": sorted({_minute(ts) for ts, _ in chunk}),
             "ids": [event_id for _, event_id in chunk]})
        found.update(row[0] for row in rows)
    return found


def _chunks(keys: Sequence[tuple[datetime, str]]) -> list[Sequence[tuple[datetime, str]]]:
    if not keys:
        return []
    chunks, start, size = [], 0, 0
    for i, (_, event_id) in enumerate(keys):
        size += len(event_id) + 3  # quotes and comma
        if size > LOOKUP_CHARS and i > start:
            chunks.append(keys[start:i])
            start, size = i, len(event_id) + 3
    chunks.append(keys[start:])
    return chunks


def unseen(ch: ClickHouse, rows: Sequence[Sequence[Any]], id_at: int,
           ts_at: int) -> list[Sequence[Any]]:
    """The rows whose event is not stored yet (rows are distinct by event id already)."""
    if not rows:
        return []
    stored = stored_ids(ch, [(row[ts_at], row[id_at]) for row in rows])
    return [row for row in rows if row[id_at] not in stored] if stored else list(rows)


def store_events(ch: ClickHouse, rows: Sequence[Sequence[Any]], columns: Sequence[str],
                 token: str | None) -> int:
    """Insert the events of `rows` not stored yet (the views add them to the rollups);
    return how many were new. Retrying it with the same token is a no-op once it
    succeeded."""
    fresh = unseen(ch, rows, columns.index("event_id"), columns.index("ts"))
    if fresh:
        ch.insert("events", fresh, columns, token)
    return len(fresh)
