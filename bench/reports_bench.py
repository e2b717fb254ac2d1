"""Benchmark: report latency on two estates, export rows/s, and the sink's cost per batch as
the current hour fills; embedded engine, each report beside the same answer computed from
the raw events table in the same run (and checked equal).

Estates, generated inside ClickHouse (INSERT … SELECT FROM numbers, through the events
table, so the rollups are written by the same views the sink feeds):
- quiet: 1M senders, 3 messages each on average over 90 days (a third from the busiest 1%);
- busy: 10,000 senders x 1,000 messages over 90 days (10M events).
Every table is merged (OPTIMIZE … FINAL) before timing: the steady state of a database
that has been running, and the best case for the raw baseline's FINAL too. Report and raw
baseline alternate, --runs times each; p50 reported.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
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
from pipeline.store.aggregate import store_events
from pipeline.store.clickhouse import ClickHouse, connect, migrate
from pipeline.store.reports import ReportQuery
from pipeline.store.sink import EVENT_COLUMNS
from schemas.event import LEGACY_TLS, OAUTH_MECHANISMS

# The current hour, not a fixed date: the tables' 90-day TTL would otherwise expire the
# oldest generated days unevenly in the tables being compared.
NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
TABLES = ("events", "event_ids", "hourly", "daily", "domain_hourly", "domain_daily",
          "senders_hourly", "senders_daily", "legacy_ips", "export_daily", "daily_by_sender",
          "tls_hourly", "sender_weeks")

# sid: the sender of event `number`; each account keeps one mechanism and TLS version.
_EVENTS = (
    "INSERT INTO {db}.events SELECT"
    " concat({prefix:String}, toString(number)), if(number % 50 = 0, 'auth_failure', 'submission'),"
    " {start:DateTime64(3)} + toIntervalMillisecond(cityHash64(number, 1) % {span_ms:UInt64}),"
    " concat('mx', toString(number % 4)), 'postfix',"
    " concat('user', toString({sid} AS sid), '@d', toString(sid % 500), '.example'),"
    " concat('d', toString(sid % 500), '.example'),"
    " NULL, ['PLAIN', 'LOGIN', 'XOAUTH2'][1 + sid % 3],"
    " concat('10.', toString(sid % 250), '.', toString(number % 7), '.1'),"
    " NULL, ['TLS1.3', 'TLS1.2', 'TLS1.2', 'TLS1.3', 'TLS1.1', 'TLS1.0', 'TLS1.3'][1 + sid % 7],"
    " 'TLS_AES_256_GCM_SHA384', concat('q', toString(number)), 1 + number % 4,"
    " 1000 + number % 50000 FROM numbers({offset:UInt64}, {events:UInt64})")
# A third of the mail from the busiest 1% (scanners, apps), the rest from a long tail.
QUIET_SID = ("if(number % 3 = 0, cityHash64(number, 3) % intDiv({senders:UInt64}, 100),"
             " cityHash64(number, 2) % {senders:UInt64})")
BUSY_SID = "number % {senders:UInt64}"


def generate(ch: ClickHouse, sid: str, senders: int, events: int, start: datetime,
             span: timedelta, prefix: str = "b", offset: int = 0) -> int:
    ch.command(_EVENTS.replace("{db}", ch.database).replace("{sid}", sid),
               {"start": start, "senders": senders, "events": events, "prefix": prefix,
                "offset": offset, "span_ms": int(span.total_seconds() * 1000)})
    return events


def populate(ch: ClickHouse, senders: int, now: datetime = NOW) -> int:
    """The quiet estate (the dashboard test fills a worker's engine with it)."""
    return generate(ch, QUIET_SID, senders, senders * 3, now - timedelta(days=90),
                    timedelta(days=90))


def merged(ch: ClickHouse) -> None:
    for table in TABLES:
        ch.command(f"OPTIMIZE TABLE {ch.database}.{table} FINAL")


# ---- the same answers from the raw events table ------------------------------------------

def _raw(ch: ClickHouse, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in ch.query_rows(sql.replace("{db}", ch.database), params)]


SUB = "FROM {db}.events FINAL WHERE kind = 'submission'"
WIN = " AND ts >= {s:DateTime('UTC')} AND ts < {u:DateTime('UTC')}"


def raw_widget(ch: ClickHouse) -> tuple[Any, ...]:
    before, since, until = reports.two_weeks(NOW)
    return _raw(ch, "SELECT uniqExactIf(sender, ts >= {m:DateTime('UTC')}),"
                f" uniqExactIf(sender, ts < {{m:DateTime('UTC')}}) {SUB} AND sender IS NOT NULL"
                f"{WIN}", {"s": before, "m": since, "u": until})[0]


def raw_flyout(ch: ClickHouse) -> tuple[Any, ...]:
    s, u = ReportQuery(range="7d").window(NOW)
    tls = _raw(ch, f"SELECT tls_version, count() {SUB}{WIN} GROUP BY 1 ORDER BY 1",
               {"s": s, "u": u})
    daily = _raw(ch, f"SELECT toString(toDate(ts)) AS d, count() {SUB}{WIN} GROUP BY d"
                 " ORDER BY d", {"s": s, "u": u})
    return tuple(tls), tuple(daily)


def raw_volume(ch: ClickHouse, q: ReportQuery) -> tuple[Any, ...]:
    s, u = q.window(NOW)
    p = {"s": s, "u": u, "oauth": sorted(OAUTH_MECHANISMS)}
    chart = _raw(ch, f"SELECT toString(toDate(ts)) AS d, ifNull(sender_domain, '') AS dom,"
                 f" count() {SUB}{WIN} GROUP BY d, dom ORDER BY d, dom", p)
    rows = _raw(ch, "SELECT *, count() OVER () FROM (SELECT sender, any(sender_domain) AS dom,"
                " count() AS n, round(countIf(tls_version = 'TLS1.0') / n, 6),"
                " round(countIf(tls_version = 'TLS1.1') / n, 6),"
                " round(countIf(tls_version = 'TLS1.2') / n, 6),"
                " round(countIf(tls_version = 'TLS1.3') / n, 6),"
                " arrayStringConcat(arraySort(groupUniqArray(if(ifNull(auth_mechanism, '') IN"
                " {oauth:Array(String)}, 'OAuth', 'Basic'))), '+')"
                f" {SUB} AND sender IS NOT NULL{WIN} GROUP BY sender)"
                " ORDER BY n DESC, sender LIMIT 50", p)
    return tuple(chart), tuple(rows)


def raw_tls(ch: ClickHouse, q: ReportQuery) -> tuple[Any, ...]:
    s, u = q.window(NOW)
    p = {"s": s, "u": u}
    totals = _raw(ch, f"SELECT tls_version, count() {SUB}{WIN} GROUP BY 1 ORDER BY 1", p)
    chart = _raw(ch, f"SELECT toString(toDate(ts)) AS d, tls_version, count() {SUB}{WIN}"
                 " GROUP BY d, tls_version ORDER BY d, tls_version", p)
    rows = _raw(ch, "SELECT *, count() OVER () FROM (SELECT sender, any(sender_domain) AS dom,"
                f" tls_version, count() AS n {SUB} AND sender IS NOT NULL{WIN}"
                " GROUP BY sender, tls_version) ORDER BY n DESC, sender, tls_version LIMIT 50", p)
    return tuple(totals), tuple(chart), tuple(rows)


def raw_remediation(ch: ClickHouse, q: ReportQuery) -> tuple[Any, ...]:
    s, u = q.window(NOW)
    return tuple(_raw(
        ch, "SELECT *, count() OVER () FROM (SELECT sender, any(sender_domain) AS dom,"
        " count() AS n, arraySort(groupUniqArray(tls_version)),"
        " arraySort(groupUniqArray(50)(client_ip)), max(ts) AS seen"
        f" {SUB} AND sender IS NOT NULL AND tls_version IN {{legacy:Array(String)}}{WIN}"
        " GROUP BY sender) ORDER BY n DESC, sender LIMIT 50",
        {"s": s, "u": u, "legacy": sorted(LEGACY_TLS)}))


# ---- the report answers, in the raw answers' shape ------------------------------------------

def shaped_widget(w: reports.Widget) -> tuple[Any, ...]:
    return (w.senders, w.previous_senders)


def shaped_flyout(f: reports.Flyout) -> tuple[Any, ...]:
    return (tuple(sorted((t.tls_version, t.messages) for t in f.tls)),
            tuple((d.day, d.messages) for d in f.daily if d.messages))


def shaped_volume(v: reports.VolumeReport) -> tuple[Any, ...]:
    return (tuple((c["day"], c["domain"], c["messages"]) for c in v.chart),
            tuple((r.sender, r.domain, r.messages, r.tls10, r.tls11, r.tls12, r.tls13,
                   r.protocol, v.page.total) for r in v.rows))


def shaped_tls(t: reports.TlsReport) -> tuple[Any, ...]:
    return (tuple(sorted((x.tls_version, x.messages) for x in t.totals)),
            tuple((c["day"], c["tls_version"], c["messages"]) for c in t.chart),
            tuple((r.sender, r.domain, r.tls_version, r.messages, t.page.total)
                  for r in t.rows))


def shaped_remediation(r: reports.Remediation) -> tuple[Any, ...]:
    return tuple((x.sender, x.domain, x.messages, x.tls_versions, x.client_ips,
                  x.last_seen.replace(tzinfo=None), r.page.total) for x in r.rows)


def _naive(rows: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple((*row[:5], row[5].replace(tzinfo=None), row[6]) for row in rows)


def interleaved(a: Callable[[], Any], b: Callable[[], Any], runs: int) -> tuple[
        float, float, Any, Any]:
    ta, tb, ra, rb = [], [], None, None
    for _ in range(runs):
        t = time.perf_counter()
        ra = a()
        ta.append(time.perf_counter() - t)
        t = time.perf_counter()
        rb = b()
        tb.append(time.perf_counter() - t)
    return statistics.median(ta), statistics.median(tb), ra, rb


def report_table(ch: ClickHouse, runs: int) -> list[tuple[str, float, float, bool]]:
    q90 = ReportQuery(range="90d")
    cases: list[tuple[str, Callable[[], Any], Callable[[], Any]]] = [
        ("widget (7 d vs 7 d)", lambda: shaped_widget(reports.widget(ch, NOW)),
         lambda: raw_widget(ch)),
        ("flyout (7 d)", lambda: shaped_flyout(reports.flyout(ch, NOW)),
         lambda: raw_flyout(ch)),
        ("sending volume, 90 d, chart + top 50", lambda: shaped_volume(
            reports.volume(ch, q90, NOW)), lambda: raw_volume(ch, q90)),
        ("TLS usage, 90 d, totals + chart + top 50", lambda: shaped_tls(
            reports.tls_usage(ch, q90, NOW)), lambda: raw_tls(ch, q90)),
        ("remediation, 90 d, top 50", lambda: shaped_remediation(
            reports.remediation(ch, q90, NOW)), lambda: _naive(raw_remediation(ch, q90))),
    ]
    out = []
    for name, fn, raw in cases:
        p50, r50, got, want = interleaved(fn, raw, runs)
        out.append((name, p50, r50, _same(got, want)))
    return out


def _same(got: Any, want: Any) -> bool:
    if got == want:
        return True
    print(f"<!-- MISMATCH\n{str(got)[:600]}\n{str(want)[:600]}\n-->")
    return False


def export_rate(ch: ClickHouse) -> tuple[int, float, float]:
    """(rows, seconds, longest single call): the export as the web route streams it."""
    q90 = ReportQuery(range="90d")
    rows, longest = 0, 0.0
    header: tuple[str, ...] | None = reports.EXPORT_COLUMNS
    t0 = time.perf_counter()
    for since, until in reports.export_slices(q90, NOW):
        t = time.perf_counter()
        body = reports.export_csv(ch, q90, since, until, header)
        longest = max(longest, time.perf_counter() - t)
        rows += body.count(b"\r\n") - (1 if header else 0)
        header = None
    return rows, time.perf_counter() - t0, longest


# ---- the sink's cost per batch as the hour fills --------------------------------------------

def batch_rows(n: int, start: datetime, first: int, senders: int) -> list[list[Any]]:
    return [[f"k{first + i}", "submission", start + timedelta(milliseconds=i * 7), "mx1",
             "postfix", f"user{(first + i) * 7919 % senders}@d{i % 500}.example",
             f"d{i % 500}.example", None, "PLAIN", f"10.1.{i % 250}.1", None, "TLS1.2",
             None, None, 1, 1000] for i in range(n)]


OLD_RECOMPUTE = (  # 002's per-batch recompute of the touched hours, for comparison only
    "SELECT toStartOfHour(ts) AS hour, ifNull(sender, '') AS s, ifNull(sender_domain, '') AS d,"
    " tls_version, ifNull(auth_mechanism, '') AS m, countIf(kind = 'submission'),"
    " sumIf(ifNull(recipients, 0), kind = 'submission'), sumIf(ifNull(size, 0),"
    " kind = 'submission'), countIf(kind = 'auth_failure'),"
    " uniqExactStateIf(ifNull(client_ip, ''), client_ip IS NOT NULL), min(ts), max(ts)"
    " FROM {db}.events FINAL WHERE toStartOfHour(ts) IN {hours:Array(DateTime('UTC'))}"
    " GROUP BY hour, s, d, tls_version, m FORMAT Null")


def sink_costs(client: Any, runs: int) -> list[tuple[int, float, float, float, bool]]:
    """Per hour fill: (events already in the hour, p50 ms of a fresh 5,000-event batch, p50 ms
    of a replayed one, p50 ms of 002's recompute, replay left the rollups unchanged)."""
    out = []
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    for fill in (10_000, 100_000, 1_000_000):
        ch = ClickHouse(client, f"sink_{uuid.uuid4().hex[:6]}")
        migrate(ch, 3650)
        # Already in the hour: `fill` events over its first 51 minutes (the batches land in
        # minute 50, beside fill / 51 of them), from 100k senders.
        generate(ch, BUSY_SID, 100_000, fill, hour, timedelta(minutes=51), prefix="f")
        fresh, replay, old = [], [], []
        unchanged = True
        for run in range(runs):
            rows = batch_rows(5000, hour + timedelta(minutes=50, seconds=run), run * 5000,
                              100_000)
            t = time.perf_counter()
            assert store_events(ch, rows, EVENT_COLUMNS, f"bench:0:{run}") == 5000
            fresh.append(time.perf_counter() - t)
            before = ch.query_rows(f"SELECT sum(messages) FROM {ch.database}.hourly")[0][0]
            t = time.perf_counter()
            new = store_events(ch, rows, EVENT_COLUMNS, f"bench:1:{run}")  # other bounds
            replay.append(time.perf_counter() - t)
            after = ch.query_rows(f"SELECT sum(messages) FROM {ch.database}.hourly")[0][0]
            unchanged = unchanged and new == 0 and before == after
            t = time.perf_counter()
            ch.command(OLD_RECOMPUTE.replace("{db}", ch.database), {"hours": [hour]})
            old.append(time.perf_counter() - t)
        out.append((fill, statistics.median(fresh) * 1000, statistics.median(replay) * 1000,
                    statistics.median(old) * 1000, unchanged))
        ch.command(f"DROP DATABASE {ch.database}")
    return out


# ---- main -------------------------------------------------------------------------------------

def run_estate(client: Any, side: Any, name: str, sid: str, senders: int, per_sender: int,
               runs: int) -> None:
    db = f"bench_{uuid.uuid4().hex[:6]}"
    ch = ClickHouse(client, db, side=ClickHouse(side, db))  # as `connect` gives the reports
    # Ten years for the rollups too: with their 90 days, a run that crosses the hour after
    # NOW expires the window's first hour from the rollups (at the merge) but not from the
    # events, and the answers differ by that hour.
    migrate(ch, 3650, 3650)
    t = time.perf_counter()
    events = 0
    total = senders * per_sender
    for offset in range(0, total, 2_000_000):  # blocks of 2M keep the views' memory bounded
        events += generate(ch, sid, senders, min(2_000_000, total - offset),
                           NOW - timedelta(days=90), timedelta(days=90), offset=offset)
    merged(ch)
    load = time.perf_counter() - t
    counts = {table: ch.query_rows(f"SELECT count() FROM {ch.database}.{table}")[0][0]
              for table in ("hourly", "daily", "domain_daily")}
    print(f"#### {name}: {senders:,} senders, {events:,} events over 90 days\n")
    print(f"Load average at the start of the timings: {os.getloadavg()[0]:.1f} "
          f"({os.cpu_count()} cores).\n")
    print(f"Rollup rows: hourly {counts['hourly']:,}, daily {counts['daily']:,}, "
          f"domain_daily {counts['domain_daily']:,} (generated, rolled up by the views and "
          f"merged in {load:.0f} s).\n")
    print("| report | p50 ms | raw-events p50 ms | raw / report | same answer |")
    print("|---|---|---|---|---|")
    for report, p50, r50, same in report_table(ch, runs):
        print(f"| {report} | {p50 * 1000:.0f} | {r50 * 1000:.0f} | {r50 / p50:.1f}x | "
              f"{'yes' if same else 'NO'} |")
    rows, seconds, longest = export_rate(ch)
    print(f"\nExport (90 d, rendered by ClickHouse, a {reports.SLICE_DAYS}-day slice per call):"
          f" {rows:,} CSV rows in {seconds:.1f} s = **{rows / seconds:,.0f} rows/s**; "
          f"longest single call {longest:.2f} s.\n")
    ch.command(f"DROP DATABASE {ch.database}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--estates", nargs="+", default=["quiet", "busy", "sink"],
                        choices=["quiet", "busy", "sink"])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--senders", type=int, nargs="+", default=[1_000_000],
                        help="With --populate: the quiet estate's sender count.")
    parser.add_argument("--populate", metavar="DATA_DIR", type=Path,
                        help="Only fill a worker's embedded engine (DATA_DIR/clickhouse) with "
                             "the quiet estate of the first --senders count, ending now (the "
                             "dashboard test).")
    args = parser.parse_args()
    if args.populate:
        settings = Settings(data_dir=args.populate)
        ch = connect(settings)
        migrate(ch, settings.events_ttl_days, settings.aggregate_ttl_days)
        print(populate(ch, args.senders[0], datetime.now(UTC)))
        ch.close()
        return
    data = tempfile.mkdtemp(prefix="bench-ch-")  # gigabytes: removed at the end
    try:
        run_all(args, clickhouse_connect.get_client(dsn=f"chdb://{data}"),
                clickhouse_connect.get_client(dsn=f"chdb://{data}"))
    finally:
        shutil.rmtree(data, ignore_errors=True)


def run_all(args: argparse.Namespace, client: Any, side: Any) -> None:
    print(f"### Reports, export and sink on the embedded engine ({time.strftime('%Y-%m-%d')})\n")
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores (shared with other jobs), "
          f"Python {platform.python_version()}, chDB {client.command('SELECT version()')}. "
          f"p50 of {args.runs} runs, report and raw baseline interleaved; the baseline "
          "computes the same answer from `events FINAL` in the same run.\n")
    if "quiet" in args.estates:
        run_estate(client, side, "Many quiet senders", QUIET_SID, 1_000_000, 3, args.runs)
    if "busy" in args.estates:
        run_estate(client, side, "Busy estate", BUSY_SID, 10_000, 1_000, args.runs)
    if "sink" in args.estates:
        print("#### Sink: one 5,000-event batch as the current hour fills\n")
        print("| events already in the hour | fresh batch p50 ms | replayed batch p50 ms | "
              "002's recompute of the hour p50 ms | replay changed nothing |")
        print("|---|---|---|---|---|")
        costs = sink_costs(client, args.runs)
        for fill, fresh, replay, old, unchanged in costs:
            print(f"| {fill:,} | {fresh:.0f} | {replay:.0f} | {old:.0f} | "
                  f"{'yes' if unchanged else 'NO'} |")
        spread = max(c[1] for c in costs) / min(c[1] for c in costs)
        print(f"\nFresh batch, largest / smallest across the three: **{spread:.2f}x** "
              "(goal ≤ 1.5x). 002's recompute is what the old sink added to every batch.\n")
    side.close()
    client.close()


if __name__ == "__main__":
    main()
