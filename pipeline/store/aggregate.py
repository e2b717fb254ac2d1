"""aggregate: recompute the hourly aggregates of the hours a batch touched (see migration 002).

Exact and idempotent: the hour is recomputed from `events FINAL`, so replayed copies of an
event count once, and running it twice gives the same rows (a newer version of them).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from pipeline.store.clickhouse import ClickHouse


def touched_hours(timestamps: Iterable[datetime]) -> list[datetime]:
    return sorted({ts.replace(minute=0, second=0, microsecond=0) for ts in timestamps})


def month_chunks(hours: list[datetime], months: int = 12) -> list[list[datetime]]:
    """Sorted hours in groups spanning at most `months` monthly partitions of the hourly
    table, so one recompute never inserts into too many partitions at once."""
    chunks: list[list[datetime]] = []
    seen: list[tuple[int, int]] = []
    for hour in hours:
        month = (hour.year, hour.month)
        if not seen or month != seen[-1]:
            if len(seen) == months:
                seen = []
            if not seen:
                chunks.append([])
            seen.append(month)
        chunks[-1].append(hour)
    return chunks


def recompute_hours(ch: ClickHouse, hours: list[datetime]) -> None:
    if not hours:
        return
    db = ch.database
    # Parameterized: the hours are bound as an array, never formatted into the SQL.
    ch.command(
        f"INSERT INTO {db}.hourly SELECT"  # noqa: S608 - validated identifier only
        " toStartOfHour(ts) AS hour,"
        " ifNull(sender, '') AS s, ifNull(sender_domain, '') AS d, tls_version,"
        " ifNull(auth_mechanism, '') AS m,"
        " countIf(kind = 'submission'), sumIf(ifNull(recipients, 0), kind = 'submission'),"
        " sumIf(ifNull(size, 0), kind = 'submission'), countIf(kind = 'auth_failure'),"
        " uniqExactStateIf(ifNull(client_ip, ''), client_ip IS NOT NULL),"
        " min(ts), max(ts), now64(6)"
        f" FROM {db}.events FINAL"
        " WHERE toStartOfHour(ts) IN {hours:Array(DateTime('UTC'))}"
        " GROUP BY hour, s, d, tls_version, m",
        {"hours": hours})
