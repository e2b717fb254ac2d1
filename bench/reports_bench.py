"""Benchmark: report query latency at 100k and 1M distinct senders over 90 days, on the
embedded engine, each beside the same answer computed from the raw events table.

Events are generated inside ClickHouse (INSERT … SELECT FROM numbers) — 3 per sender on
average, a third of them from the busiest 1%, spread over 90 days, each account with its own
mechanism and TLS version — then the hourly aggregates are
recomputed by the pipeline's own function. Each query runs --runs times; p50/p95 reported.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import clickhouse_connect

from pipeline.settings import Settings
from pipeline.store import reports
from pipeline.store.aggregate import recompute_hours
from pipeline.store.clickhouse import ClickHouse, connect, migrate
from pipeline.store.reports import ReportQuery

# The current hour, not a fixed date: the tables' 90-day TTL would otherwise expire the
# oldest generated days unevenly in the two tables being compared.
NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def populate(ch: ClickHouse, senders: int, now: datetime = NOW) -> int:
    events = senders * 3
    start = now - timedelta(days=90)
    ch.command(
        f"INSERT INTO {ch.database}.events SELECT"
        " concat('b', toString(number)), if(number % 50 = 0, 'auth_failure', 'submission'),"
        " {start:DateTime64(3)} + toIntervalSecond(cityHash64(number, 1) % (90 * 86400)),"
        " concat('mx', toString(number % 4)), 'postfix',"
        # A third of the mail comes from the busiest 1% (scanners, apps), the rest from
        # a long tail: every sender id below `senders` is drawn.
        " concat('user', toString(if(number % 3 = 0, cityHash64(number, 3) % intDiv({senders:UInt64}, 100),"
        "        cityHash64(number, 2) % {senders:UInt64}) AS sid), '@d', toString(sid % 500), '.example'),"
        " concat('d', toString(sid % 500), '.example'),"
        # Each account keeps its client's mechanism and TLS version, as real ones do.
        " NULL, ['PLAIN', 'LOGIN', 'XOAUTH2'][1 + sid % 3],"
        " concat('10.', toString(number % 250), '.', toString(intDiv(number, 250) % 250), '.1'),"
        " NULL, ['TLS1.3', 'TLS1.2', 'TLS1.2', 'TLS1.3', 'TLS1.1', 'TLS1.0', 'TLS1.3'][1 + sid % 7],"
        " 'TLS_AES_256_GCM_SHA384', concat('q', toString(number)), 1 + number % 4,"
        " 1000 + number % 50000 FROM numbers({events:UInt64})",
        {"start": start, "senders": senders, "events": events})
    hours = [start.replace(minute=0, second=0, microsecond=0) + timedelta(hours=h)
             for h in range(90 * 24 + 2)]
    for i in range(0, len(hours), 240):
        recompute_hours(ch, hours[i:i + 240])
    return events


def timed(fn: Callable[[], Any], runs: int) -> tuple[float, float, Any]:
    times, result = [], None
    for _ in range(runs):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    return statistics.median(times), p95, result


def raw_widget(ch: ClickHouse) -> int:
    until = NOW.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    return ch.query_rows(
        f"SELECT uniqExact(sender) FROM {ch.database}.events FINAL WHERE kind = 'submission'"
        " AND ts >= {s:DateTime('UTC')} AND ts < {u:DateTime('UTC')}",
        {"s": until - timedelta(days=7), "u": until})[0][0]


def raw_volume_top(ch: ClickHouse, q: ReportQuery) -> list[tuple[str, int]]:
    since, until = q.window(NOW)
    return [tuple(r) for r in ch.query_rows(
        f"SELECT sender, count() AS n FROM {ch.database}.events FINAL WHERE kind = 'submission'"
        " AND ts >= {s:DateTime('UTC')} AND ts < {u:DateTime('UTC')}"
        " GROUP BY sender ORDER BY n DESC, sender LIMIT 50", {"s": since, "u": until})]


def raw_tls(ch: ClickHouse, q: ReportQuery) -> list[tuple[str, int]]:
    since, until = q.window(NOW)
    return sorted(tuple(r) for r in ch.query_rows(
        f"SELECT tls_version, count() FROM {ch.database}.events FINAL WHERE kind = 'submission'"
        " AND ts >= {s:DateTime('UTC')} AND ts < {u:DateTime('UTC')} GROUP BY tls_version",
        {"s": since, "u": until}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--senders", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--populate", metavar="DATA_DIR", type=Path,
                        help="Only fill a worker's embedded engine (DATA_DIR/clickhouse) with "
                             "the first --senders count, ending now (the dashboard test).")
    args = parser.parse_args()
    if args.populate:
        settings = Settings(data_dir=args.populate)
        ch = connect(settings)
        migrate(ch, settings.events_ttl_days, settings.aggregate_ttl_days)
        print(populate(ch, args.senders[0], datetime.now(UTC)))
        ch.close()
        return
    client = clickhouse_connect.get_client(dsn=f"chdb://{tempfile.mkdtemp(prefix='bench-ch-')}")
    print(f"### Report queries on the embedded engine ({time.strftime('%Y-%m-%d')})\n")
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, chDB {client.command('SELECT version()')}. "
          f"p50/p95 of {args.runs} runs; the baseline computes the same answer from the raw "
          "events table in the same run.\n")
    for senders in args.senders:
        run_one(ClickHouse(client, f"bench_{uuid.uuid4().hex[:6]}"), senders, args.runs)
    client.close()


def run_one(ch: ClickHouse, senders: int, runs: int) -> None:
    q90 = ReportQuery(range="90d")
    migrate(ch, 3650)
    t = time.perf_counter()
    events = populate(ch, senders)
    load = time.perf_counter() - t
    hourly = ch.query_rows(f"SELECT count() FROM {ch.database}.hourly FINAL")[0][0]
    print(f"#### {senders:,} senders: {events:,} events, {hourly:,} hourly rows "
          f"(generated and aggregated in {load:.0f} s)\n")
    print("| report | p50 ms | p95 ms | raw-events p50 ms | raw / report | same answer |")
    print("|---|---|---|---|---|---|")
    cases: list[tuple[str, Callable[[], Any], Callable[[], Any] | None,
                      Callable[[Any, Any], bool]]] = [
        ("widget (7 d)", lambda: reports.widget(ch, NOW), lambda: raw_widget(ch),
         lambda a, b: a.senders == b),
        ("sending volume, 90 d, top 50", lambda: reports.volume(ch, q90, NOW),
         lambda: raw_volume_top(ch, q90),
         lambda a, b: [(r.sender, r.messages) for r in a.rows] == b),
        ("TLS usage, 90 d", lambda: reports.tls_usage(ch, q90, NOW),
         lambda: raw_tls(ch, q90),
         lambda a, b: sorted((t.tls_version, t.messages) for t in a.totals) == b),
        ("flyout", lambda: reports.flyout(ch, NOW), None, lambda a, b: True),
        ("remediation, 90 d", lambda: reports.remediation(ch, q90, NOW), None,
         lambda a, b: True),
        ("failures, 90 d", lambda: reports.failures(ch, q90, NOW), None,
         lambda a, b: True),
    ]
    for name, fn, raw, same in cases:
        p50, p95, result = timed(fn, runs)
        if raw is None:
            print(f"| {name} | {p50 * 1000:.0f} | {p95 * 1000:.0f} | - | - | - |")
            continue
        r50, _, raw_result = timed(raw, runs)
        print(f"| {name} | {p50 * 1000:.0f} | {p95 * 1000:.0f} | {r50 * 1000:.0f} | "
              f"{r50 / p50:.1f}x | {'yes' if same(result, raw_result) else 'NO'} |")
    t = time.perf_counter()
    rows = sum(1 for _ in reports.csv_chunks(reports.export_rows(ch, q90, NOW),
                                         reports.EXPORT_COLUMNS))
    export_s = time.perf_counter() - t
    n_rows = ch.query_rows(
        f"SELECT count() FROM (SELECT 1 FROM {ch.database}.events FINAL WHERE kind ="
        " 'submission' GROUP BY toDate(ts), sender, auth_mechanism, client_ip, tls_version,"
        " tls_cipher)")[0][0]
    print(f"\nExport (90 d): {n_rows:,} CSV rows in {rows} chunks, {export_s:.1f} s "
          f"({n_rows / export_s:,.0f} rows/s).\n")


if __name__ == "__main__":
    main()
