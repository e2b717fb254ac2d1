"""Every report equals the ground truth on the real embedded engine (functions level).

A generated 12-day corpus (Postfix and Exim) goes through the real normalizer and the
sink's insert + aggregate path into a fresh database; each report is compared with the
oracle computed in plain Python from the generator's truth."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import clickhouse_connect
import pytest

from pipeline.normalize.dialects.base import NormalizeConfig
from pipeline.normalize.normalizer import Normalizer, normalize_lines
from pipeline.store import reports
from pipeline.store.aggregate import store_events
from pipeline.store.clickhouse import ClickHouse, migrate, migrations
from pipeline.store.reports import ReportQuery
from pipeline.store.sink import EVENT_COLUMNS, event_row
from pipeline.synthetic import LogGenerator
from schemas.event import AuthEvent
from tests import report_oracle as oracle

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 28, 12, 34, tzinfo=UTC)


def corpus(now: datetime, days: int = 12, per_dialect: int = 1500) -> tuple[
        list[tuple[str, str]], list[dict[str, Any]]]:
    start = now - timedelta(days=days)
    spacing = (days * 86400 - 3600) / (per_dialect * 1.25)
    lines, truth = [], []
    for dialect, seed in (("postfix", 21), ("exim", 22)):
        more, expected = LogGenerator(dialect, seed, accounts=120).log(per_dialect, start,
                                                                      spacing)
        lines += more
        truth += expected
    return lines, truth


def load(ch: ClickHouse, lines: list[tuple[str, str]]) -> int:
    normalizer = Normalizer(NormalizeConfig())
    events = [e for out in normalize_lines(((s.encode(), t.encode()) for s, t in lines),
                                           normalizer, NOW) for e in out.events]
    rows = [event_row(e) for e in events]
    for i in range(0, len(rows), 700):  # several batches, as the sink writes them
        batch = rows[i:i + 700]
        store_events(ch, batch, EVENT_COLUMNS, token=f"t:0:{i}")
    return len(rows)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ClickHouse, list]]:
    path: Path = tmp_path_factory.mktemp("reports") / "ch"
    db = f"r_{uuid.uuid4().hex[:8]}"
    # With a side connection, as `connect` gives the reports: charts run beside rankings.
    ch = ClickHouse(clickhouse_connect.get_client(dsn=f"chdb://{path}"), db, side=ClickHouse(
        clickhouse_connect.get_client(dsn=f"chdb://{path}"), db))
    migrate(ch, 90)
    lines, truth = corpus(NOW)
    assert load(ch, lines) == len(truth)
    yield ch, truth
    ch.close()


def test_widget_and_flyout(loaded):
    ch, truth = loaded
    w = reports.widget(ch, NOW)
    assert (w.senders, w.previous_senders) == oracle.widget(truth, NOW)
    assert w.senders > 50 and w.previous_senders > 50
    f = reports.flyout(ch, NOW).model_dump(mode="json")
    assert {"tls": f["tls"], "daily": f["daily"]} == oracle.flyout(truth, NOW)


@pytest.mark.parametrize("preset", ["24h", "7d", "30d"])
def test_sending_volume(loaded, preset):
    ch, truth = loaded
    got = reports.volume(ch, ReportQuery(range=preset, page_size=1000), NOW)
    want = oracle.volume(truth, NOW, preset)
    assert got.chart == want["chart"]
    assert [r.model_dump() for r in got.rows] == want["rows"]
    assert got.page.total == len(want["rows"])


def test_volume_filters_sort_and_paging(loaded):
    ch, truth = loaded
    domain = "contoso.org"
    want = oracle.volume(truth, NOW, "30d", domain)["rows"]
    page2 = reports.volume(ch, ReportQuery(range="30d", domain=domain, page=2, page_size=7), NOW)
    assert [r.sender for r in page2.rows] == [r["sender"] for r in want[7:14]]
    assert page2.page.total == len(want)
    by_name = reports.volume(ch, ReportQuery(range="30d", sort="sender", order="asc",
                                             page_size=1000), NOW)
    assert [r.sender for r in by_name.rows] == sorted(r["sender"] for r in
                                                      oracle.volume(truth, NOW, "30d")["rows"])
    found = reports.volume(ch, ReportQuery(range="30d", search="SCANNER", page_size=1000), NOW)
    assert {r.sender for r in found.rows} == {
        r["sender"] for r in oracle.volume(truth, NOW, "30d")["rows"] if "scanner" in r["sender"]}
    assert found.rows


def test_custom_range_equals_the_preset_it_spells(loaded):
    ch, _ = loaded
    since, until = ReportQuery(range="7d").window(NOW)
    custom = ReportQuery(range=f"{since:%Y-%m-%dT%H:%M:%SZ}/P7D", page_size=1000)
    assert custom.window(NOW + 30 * reports.WEEK) == (since, until)
    assert reports.volume(ch, custom, NOW).rows == reports.volume(
        ch, ReportQuery(range="7d", page_size=1000), NOW).rows


def test_tls_usage(loaded):
    ch, truth = loaded
    got = reports.tls_usage(ch, ReportQuery(range="30d", page_size=1000), NOW)
    want = oracle.tls_usage(truth, NOW, "30d")
    assert [t.model_dump() for t in got.totals] == want["totals"]
    assert got.chart == want["chart"]
    assert [r.model_dump() for r in got.rows] == want["rows"]


def test_remediation_and_failures(loaded):
    ch, truth = loaded
    got = reports.remediation(ch, ReportQuery(range="30d", page_size=1000), NOW)
    assert [r.model_dump() for r in got.rows] == oracle.remediation(truth, NOW, "30d")
    assert got.rows, "the corpus has a legacy-TLS tail"
    fails = reports.failures(ch, ReportQuery(range="30d"), NOW)
    want = oracle.failures(truth, NOW, "30d")
    assert [r.model_dump() for r in fails.by_account] == want["by_account"]
    assert [r.model_dump() for r in fails.by_ip] == want["by_ip"]


def test_export_csv_rows(loaded):
    ch, truth = loaded
    body = b"".join(reports.csv_chunks(reports.export_rows(ch, ReportQuery(range="30d"), NOW),
                                   reports.EXPORT_COLUMNS, rows_per_chunk=100))
    rows = list(csv.reader(io.StringIO(body.decode())))
    assert rows[0] == list(reports.EXPORT_COLUMNS)
    assert rows[1:] == oracle.export(truth, NOW, "30d")


def test_reports_do_not_change_when_a_batch_is_replayed(loaded):
    ch, _ = loaded
    before = [reports.volume(ch, ReportQuery(range="30d", page_size=1000), NOW),
              reports.tls_usage(ch, ReportQuery(range="30d", page_size=1000), NOW),
              reports.widget(ch, NOW)]
    rows = ch.query_rows(f"SELECT {', '.join(EVENT_COLUMNS)} FROM {ch.database}.events FINAL"
                         " ORDER BY ts LIMIT 500")
    assert store_events(ch, [list(r) for r in rows], EVENT_COLUMNS,
                        token="replay:other-bounds") == 0
    after = [reports.volume(ch, ReportQuery(range="30d", page_size=1000), NOW),
             reports.tls_usage(ch, ReportQuery(range="30d", page_size=1000), NOW),
             reports.widget(ch, NOW)]
    assert [b.model_dump() for b in before] == [a.model_dump() for a in after]


def test_export_rendered_by_clickhouse_is_the_same_csv(loaded):
    ch, truth = loaded
    q = ReportQuery(range="30d")
    header: tuple[str, ...] | None = reports.EXPORT_COLUMNS
    fast, slow = [], []
    for since, until in reports.export_slices(q, NOW):
        fast.append(reports.export_csv(ch, q, since, until, header))
        slow.append(b"".join(reports.csv_chunks(reports.export_slice(ch, q, since, until),
                                                header)))
        header = None
    assert b"".join(fast) == b"".join(slow)
    rows = list(csv.reader(io.StringIO(b"".join(fast).decode())))
    assert rows[1:] == oracle.export(truth, NOW, "30d")


@pytest.mark.parametrize("ties", [
    (4, 50_000, True),  # as shipped
    (0, 50_000, True),  # every edge run ordered by name first
    (0, 50_000, False),  # ... and no names found (expired): the details of the whole run
    (4, 3, True),  # edge runs longer than the cap: the details pass groups the whole run
])
@pytest.mark.parametrize("report", ["volume", "tls", "remediation"])
def test_every_page_in_turn_is_the_whole_table(loaded, report, ties, monkeypatch):
    """Small pages sorted by messages: the two-pass ranking, and its ways through a page
    edge that falls inside a run of equal counts, give the oracle's table page by page."""
    from pipeline.store.reports import query

    names, cap, found = ties
    monkeypatch.setattr(query, "TIE_NAMES", names)
    monkeypatch.setattr(query, "TIE_CAP", cap)
    answered: list[bool] = []  # each run's names found, none collided: no slower path
    if found:
        by_name = query._by_name

        def recorded(*args: Any) -> Any:
            named, collided = by_name(*args)
            answered.append(named is not None and not collided)
            return named, collided

        monkeypatch.setattr(query, "_by_name", recorded)
    else:
        monkeypatch.setattr(query, "_by_name", lambda *args: (None, False))
    ch, truth = loaded
    run, want = _report_and_oracle(report, truth, "30d")
    got, pages = _every_page(ch, run, "30d", 9, len(want))
    assert got == want and pages >= 3
    assert all(answered) and (answered or not found or names > 0)


def _report_and_oracle(report: str, truth: list[dict[str, Any]], preset: str) -> tuple[
        Any, list[dict[str, Any]]]:
    return {
        "volume": (reports.volume, oracle.volume(truth, NOW, preset)["rows"]),
        "tls": (reports.tls_usage, oracle.tls_usage(truth, NOW, preset)["rows"]),
        "remediation": (reports.remediation, oracle.remediation(truth, NOW, preset)),
    }[report]


def _every_page(ch: ClickHouse, run: Any, preset: str, size: int, total: int) -> tuple[
        list[dict[str, Any]], int]:
    """The rows of every page in turn, up to the first empty one (each page counting
    `total` rows), and how many pages had rows."""
    got, page = [], 1
    while True:
        answer = run(ch, ReportQuery(range=preset, page=page, page_size=size), NOW)
        assert answer.page.total == total
        if not answer.rows:
            return got, page - 1
        got += [r.model_dump() for r in answer.rows]
        page += 1


HOUR_ = timedelta(hours=1)


def _edge_events(now: datetime) -> list[dict[str, Any]]:
    """One sender per instant around each window bound (an hour before, the last
    millisecond before, the bound, its hour's last second, an hour after), a sender in
    three weeks, one with failed logins only, one an hour after the current window."""
    before, since, until = reports.two_weeks(now)
    out: list[tuple[str, str, datetime]] = []
    for name, bound in (("b", before), ("s", since), ("u", until)):
        for i, delta in enumerate((-HOUR_, -timedelta(milliseconds=1), timedelta(0),
                                   timedelta(minutes=59, seconds=59), HOUR_)):
            out.append((f"{name}{i}@edge.example", "submission", bound + delta))
    for day in (1, 8, 13):
        out.append(("often@edge.example", "submission", before + timedelta(days=day)))
    out.append(("failing@edge.example", "auth_failure", since + timedelta(days=2)))
    out.append(("later@edge.example", "submission", until + HOUR_))
    return [{"event_id": f"edge-{i}", "kind": kind, "ts": ts.isoformat(), "sender": sender,
             "sender_domain": "edge.example"} for i, (sender, kind, ts) in enumerate(out)]


def _rows(events: list[dict[str, Any]]) -> list[list[Any]]:
    return [[e["event_id"], e["kind"], datetime.fromisoformat(e["ts"]), "mx1", "postfix",
             e["sender"], e["sender_domain"], None, "PLAIN", "10.0.0.1", None, "TLS1.2", None,
             None, 1, 100] for e in events]


def _widget(ch: ClickHouse, now: datetime) -> tuple[int, int]:
    w = reports.widget(ch, now)
    return w.senders, w.previous_senders


@pytest.mark.parametrize("now", [
    datetime(2026, 11, 29, 23, 59, tzinfo=UTC),  # Sunday's last hour: both windows whole weeks
    datetime(2026, 11, 30, 0, 5, tzinfo=UTC),  # Monday's first: a week's tail + one hour
    datetime(2026, 11, 26, 13, 30, tzinfo=UTC),  # mid-week
])
def test_widget_counts_the_senders_at_its_windows_edges(loaded, now):
    """007's weeks decide each window from first and last hours: exact at every bound,
    whether the windows are whole weeks or cross a Monday; replays, a second fill of the
    table (as an upgrade racing a sink writes it) and 007 applied to a filled database
    leave the answer the oracle's."""
    ch = ClickHouse(loaded[0].client, f"w_{uuid.uuid4().hex[:8]}")
    migrate(ch, 3650, 3650)
    truth = _edge_events(now)
    assert store_events(ch, _rows(truth), EVENT_COLUMNS, token="edge:0") == len(truth)
    want = oracle.widget(truth, now)
    assert want[0] > 5 and want[1] > 5
    assert _widget(ch, now) == want
    for i in range(0, len(truth), 4):  # replayed with other batch bounds
        assert store_events(ch, _rows(truth[i:i + 4]), EVENT_COLUMNS, f"edge:1:{i}") == 0
    fill = next(sql for version, _, sql in migrations() if version == 7).split(";")[-2]
    ch.command(fill.replace("{db}", ch.database))  # every row a second time: min/max hold
    assert _widget(ch, now) == want
    for table in ("sender_weeks_mv", "sender_weeks"):  # the upgrade: 007 on filled rollups
        ch.command(f"DROP TABLE {ch.database}.{table}")
    ch.command(f"DELETE FROM {ch.database}.schema_migrations WHERE version = 7")
    assert migrate(ch, 3650, 3650) == [7]
    assert _widget(ch, now) == want
    ch.command(f"DROP DATABASE {ch.database}")


def _colliding_events(now: datetime) -> list[dict[str, Any]]:
    """Senders with distinct legacy-TLS counts over the last days, one of them twice (a run
    of equal counts), and a quiet collider whose id will be forged to the busiest's."""
    counts = {"a@col.example": 9, "b@col.example": 7, "c@col.example": 6, "d@col.example": 6,
              "e@col.example": 4, "f@col.example": 2, "z@col.example": 3}
    out = [(sender, now - timedelta(days=2, hours=3 * i))
           for sender, n in counts.items() for i in range(n)]
    return [{"event_id": f"col-{i}", "kind": "submission", "ts": ts.isoformat(),
             "sender": sender, "sender_domain": "col.example", "tls_version": "TLS1.0",
             "auth_mechanism": "PLAIN", "client_ip": "10.0.0.1"}
            for i, (sender, ts) in enumerate(out)]


def _colliding_database(ch: ClickHouse, upto: int | None = None) -> tuple[
        ClickHouse, list[dict[str, Any]]]:
    """A fresh database (migrated up to `upto`, default all) holding `_colliding_events`
    as the sink stores them."""
    import pipeline.store.clickhouse as clickhouse

    db = ClickHouse(ch.client, f"c_{uuid.uuid4().hex[:8]}")
    with pytest.MonkeyPatch.context() as m:
        if upto is not None:
            upto_migrations = [mig for mig in migrations() if mig[0] <= upto]
            m.setattr(clickhouse, "migrations", lambda: upto_migrations)
        migrate(db, 3650, 3650)
    truth = _colliding_events(NOW)
    rows = [event_row(AuthEvent.model_validate({**e, "server": "mx1", "source": "postfix"}))
            for e in truth]
    assert store_events(db, rows, EVENT_COLUMNS, token="col:0") == len(truth)
    return db, truth


def _forge_collision(ch: ClickHouse, sender: str, like: str) -> None:
    """Give `sender` the 64-bit id of `like` in every rollup a ranking reads, as if their
    names hashed alike (the views hash them; a real cityHash64 pair is not at hand)."""
    db = ch.database
    same = {"s": sender, "t": like, "sync": 2}
    forged = ch.query_rows("SELECT cityHash64({t:String})", same)[0][0]
    old = ch.query_rows("SELECT cityHash64({s:String})", same)[0][0]
    for table in ("hourly", "daily"):  # the id is a plain column there
        ch.command(f"ALTER TABLE {db}.{table} UPDATE sender_id = {forged}"
                   " WHERE sender = {s:String} SETTINGS mutations_sync = {sync:UInt8}", same)
    ch.command(f"INSERT INTO {db}.daily_by_sender SELECT {forged}, day, sender_domain, sender,"
               " tls_version, auth_mechanism, messages, last_submission"
               f" FROM {db}.daily WHERE sender = {{s:String}}", same)
    # Without 009's name columns (their DEFAULT is the name), so a database of 007 takes it.
    ch.command(f"INSERT INTO {db}.sender_names (sender_id, sender, last_day)"
               f" SELECT {forged}, {{s:String}}, today()", same)
    for table in ("daily_by_sender", "sender_names"):  # the id is their key
        ch.command(f"ALTER TABLE {db}.{table} DELETE WHERE sender_id = {old}"
                   " SETTINGS mutations_sync = {sync:UInt8}", same)


@pytest.mark.parametrize("ties", [(4, 50_000), (0, 50_000), (4, 1)])  # shipped; by name; cap
@pytest.mark.parametrize("report", ["volume", "tls", "remediation"])
def test_a_hash_collision_is_caught_and_the_page_grouped_by_name(loaded, report, ties,
                                                                 monkeypatch):
    """Two senders behind one id (a@ and z@, forged): every page equals the oracle, whether
    the collided key is on the page, before it, or in a run ordered by name, because each
    page that the key places falls back to grouping the names themselves."""
    from pipeline.store.reports import query

    monkeypatch.setattr(query, "TIE_NAMES", ties[0])
    monkeypatch.setattr(query, "TIE_CAP", ties[1])
    fallbacks: list[int] = []
    by_name = query.paged_total

    def counted(ch: ClickHouse, q: ReportQuery, *args: Any) -> Any:
        fallbacks.append(q.page)
        return by_name(ch, q, *args)

    monkeypatch.setattr(query, "paged_total", counted)
    ch, truth = _colliding_database(loaded[0])
    _forge_collision(ch, "z@col.example", "a@col.example")
    run, want = _report_and_oracle(report, truth, "7d")
    assert _every_page(ch, run, "7d", 2, len(want))[0] == want
    assert fallbacks[:2] == [1, 2]  # the key on the page, then before it
    ch.command(f"DROP DATABASE {ch.database}")


def test_a_database_of_007_answers_exactly_after_the_upgrade(loaded, monkeypatch):
    """A database filled by the migrations up to 007, already holding a collided id whose
    second name a merge of sender_names dropped: after 008 and 009 every report page equals
    the oracle (009 fills the names again from `daily`)."""
    ch, truth = _colliding_database(loaded[0], upto=7)
    _forge_collision(ch, "z@col.example", "a@col.example")
    db, forged = ch.database, "SELECT cityHash64('a@col.example')"
    ch.command(f"OPTIMIZE TABLE {db}.sender_names FINAL")  # `any` keeps one of the two names
    assert ch.query_rows(f"SELECT count() FROM {db}.sender_names WHERE sender_id = ({forged})"
                         ) == [(1,)]
    assert migrate(ch, 3650, 3650) == [v for v, _, _ in migrations() if v > 7]
    for report in ("volume", "tls", "remediation"):
        run, want = _report_and_oracle(report, truth, "7d")
        for size in (2, 50):
            assert _every_page(ch, run, "7d", size, len(want))[0] == want
    with monkeypatch.context() as m:  # a long run ordered by name reads 009's names
        from pipeline.store.reports import query

        m.setattr(query, "TIE_NAMES", 0)
        got = reports.volume(ch, ReportQuery(range="7d", page_size=3), NOW).rows
        assert [r.model_dump() for r in got] == oracle.volume(truth, NOW, "7d")["rows"][:3]
    ch.command(f"DROP DATABASE {ch.database}")


@pytest.mark.parametrize("report", ["volume", "tls", "remediation"])
def test_a_sender_whose_name_expired_is_still_on_its_page(loaded, report):
    """sender_names outlived by a sender's edge hours (its TTL counts from the day): the
    details pass finds the sender's rows without it, and the keys before a page without a
    name are taken as possibly collided, so every page still equals the oracle."""
    ch, truth = _colliding_database(loaded[0])
    ch.command(f"ALTER TABLE {ch.database}.sender_names DELETE WHERE sender IN"
               " ('a@col.example', 'c@col.example') SETTINGS mutations_sync = 2")
    run, want = _report_and_oracle(report, truth, "7d")
    assert _every_page(ch, run, "7d", 2, len(want))[0] == want
    ch.command(f"DROP DATABASE {ch.database}")
