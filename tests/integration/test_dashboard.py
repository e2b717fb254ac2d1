"""The dashboard end to end: Debian's Chromium (headless, through Playwright) over a real
worker fed the generated report corpus. Numbers on the page must equal the API's and the
ground truth; screenshots are kept in test-artifacts/screenshots."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from pipeline.synthetic import LogGenerator
from tests import report_oracle as oracle
from tests.conftest import Names, WorkerProcess, corpus_worker
from tests.helpers import ARTIFACTS, ROOT, free_port, produce

pytestmark = pytest.mark.integration
CHROMIUM = "/usr/bin/chromium"
SHOTS = ARTIFACTS / "screenshots"
TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def served(kafka, tmp_path_factory) -> Iterator[tuple[WorkerProcess, list[dict[str, Any]]]]:
    worker, truth = corpus_worker(kafka, tmp_path_factory.mktemp("dash"), "dash")
    yield worker, truth
    worker.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        # Root in CI containers needs --no-sandbox; Playwright's own browser download is not
        # used: Debian's Chromium is the browser under test.
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def page(browser, request) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900},
                                  accept_downloads=True)
    pg = context.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    SHOTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(SHOTS / f"{request.node.name}.png"), full_page=True)
    context.close()
    assert not errors, errors


def off_loop(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Playwright's sync API keeps an event loop running in this thread; the Kafka helpers
    start their own, so they run in another thread."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn, *args, **kwargs).result()


def api(worker: WorkerProcess, path: str) -> Any:
    return worker.get(path)


def number(text: str) -> int:
    return int(text.replace(",", "").strip())


def table_rows(pg: Page, selector: str) -> list[list[str]]:
    return pg.eval_on_selector_all(
        f"{selector} tbody tr",
        "rows => rows.map(r => [...r.cells].map(c => c.textContent))")


def wait_loaded(pg: Page, state_id: str) -> None:
    """A panel has answered: its status line is neither loading nor an error."""
    pg.wait_for_function(
        "id => { const s = document.getElementById(id);"
        " return s && s.dataset.state !== 'loading' && s.dataset.state !== undefined; }",
        arg=state_id)
    assert pg.get_attribute(f"#{state_id}", "data-state") != "error", pg.text_content(
        f"#{state_id}")


def test_overview_widget_and_flyout_equal_the_api_and_truth(served, page):
    worker, truth = served
    page.goto(worker.url("/"))
    assert "/ui/#overview" in page.url
    wait_loaded(page, "widget-state")
    widget = api(worker, "/api/v1/widget")
    assert number(page.text_content("#widget-senders")) == widget["senders"]
    assert (widget["senders"], widget["previous_senders"]) == oracle.widget(
        truth, datetime.now(UTC))
    # Keyboard: the widget is a button; Enter opens the flyout, Escape closes it.
    page.focus("#widget")
    page.keyboard.press("Enter")
    assert page.is_visible("#flyout")
    wait_loaded(page, "flyout-state")
    flyout = api(worker, "/api/v1/flyout")
    assert table_rows(page, "#flyout-tls") == [
        [t["tls_version"], f"{t['messages']:,}", f"{t['share'] * 100:.1f}%"]
        for t in flyout["tls"]]
    chart = page.evaluate("() => Chart.getChart('flyout-chart').data.datasets[0].data")
    assert chart == [d["messages"] for d in flyout["daily"]]
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "flyout.png"))
    page.keyboard.press("Escape")
    assert not page.is_visible("#flyout")


def _open_report(pg: Page, worker: WorkerProcess, query: str = "range=30d") -> None:
    pg.goto(worker.url(f"/ui/#report?{query}"))
    wait_loaded(pg, "report-state")


def test_volume_pivot_table_paging_sorting_and_chart(served, page):
    worker, truth = served
    _open_report(page, worker)
    # Chart first: per-domain daily sums equal the API's chart.
    want = api(worker, "/api/v1/volume?range=30d&page_size=50")
    datasets = page.evaluate(
        "() => { const c = Chart.getChart('report-chart'); return {labels: c.data.labels,"
        " sets: c.data.datasets.map(d => [d.label, d.data])}; }")
    by_key = {(r["day"], r["domain"]): r["messages"] for r in want["chart"]}
    per_day = {day: sum(n for (d, _), n in by_key.items() if d == day)
               for day in datasets["labels"]}
    for domain, values in datasets["sets"]:
        if not domain.startswith("Other domains"):  # the tail beyond seven is summed
            assert values == [by_key.get((day, domain), 0) for day in datasets["labels"]]
    stacked = [sum(v[i] for _, v in datasets["sets"]) for i in range(len(datasets["labels"]))]
    assert stacked == list(per_day.values())
    assert sum(stacked) == sum(by_key.values())
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "report-volume-chart.png"))
    # The details table, page 1 and page 2.
    page.click("#show-table")
    assert page.is_visible("#report-table")
    rows = table_rows(page, "#report-table")
    assert [r[0] for r in rows] == [r["sender"] for r in want["rows"]]
    assert [number(r[2]) for r in rows] == [r["messages"] for r in want["rows"]]
    truth_rows = oracle.volume(truth, datetime.now(UTC), "30d")["rows"]
    assert [r[0] for r in rows] == [r["sender"] for r in truth_rows[:50]]
    total = want["page"]["total"]
    assert f"{total:,} rows" in page.text_content(".page-info")
    page.click(".pager button:has-text('Next')")
    wait_loaded(page, "report-state")
    page.wait_for_function("() => document.querySelector('.page-info').textContent"
                           ".startsWith('Page 2')")
    assert [r[0] for r in table_rows(page, "#report-table")] == [
        r["sender"] for r in truth_rows[50:100]]
    # Sorting by sender (click twice: descending, then ascending).
    for direction in ("descending", "ascending"):
        page.click("th button[data-sort=sender]")
        page.wait_for_selector(f"th[aria-sort={direction}] button[data-sort=sender]")
    wait_loaded(page, "report-state")
    asc = api(worker, "/api/v1/volume?range=30d&sort=sender&order=asc")
    assert [r[0] for r in table_rows(page, "#report-table")] == [
        r["sender"] for r in asc["rows"]]


def test_tls_pivot_domain_filter_and_search(served, page):
    worker, truth = served
    now = datetime.now(UTC)
    _open_report(page, worker, "range=30d&pivot=tls&show=table")
    tls = api(worker, "/api/v1/tls?range=30d")
    totals = page.eval_on_selector_all("#tls-totals span", "s => s.map(x => x.textContent)")
    assert totals == [f"{t['tls_version']}: {t['messages']:,} ({t['share'] * 100:.1f}%)"
                      for t in tls["totals"]]
    assert tls["totals"] == oracle.tls_usage(truth, now, "30d")["totals"]
    # Show data for one domain: the select is filled from the data.
    domain = sorted({e["sender_domain"] for e in truth if e["kind"] == "submission"})[0]
    page.select_option("#f-domain", domain)
    page.wait_for_function("d => location.hash.includes('domain=' + d)", arg=domain)
    wait_loaded(page, "report-state")
    want = oracle.tls_usage(truth, now, "30d", domain)
    rows = table_rows(page, "#report-table")
    assert {r[1] for r in rows} == {domain}
    assert [(r[0], r[2], number(r[3])) for r in rows] == [
        (r["sender"], r["tls_version"], r["messages"]) for r in want["rows"][:50]]
    # Sender search narrows the table to matching senders.
    needle = want["rows"][0]["sender"].split("@")[0]
    page.fill("#f-search", needle)
    page.wait_for_function("n => location.hash.includes('search=' + n)", arg=needle)
    wait_loaded(page, "report-state")
    searched = api(worker, f"/api/v1/tls?range=30d&domain={domain}&search={needle}")
    assert [r[0] for r in table_rows(page, "#report-table")] == [
        r["sender"] for r in searched["rows"]]
    assert all(needle in r[0] for r in table_rows(page, "#report-table"))


def test_range_filter_changes_the_numbers(served, page):
    worker, _ = served
    _open_report(page, worker, "range=30d&show=table")
    page.select_option("#f-range", "24h")
    wait_loaded(page, "report-state")
    page.wait_for_function("() => location.hash.includes('range=24h')")
    day = api(worker, "/api/v1/volume?range=24h")
    assert f"{day['page']['total']:,} rows" in page.text_content(".page-info")
    # A custom range needs both ends before anything is asked.
    page.select_option("#f-range", "custom")
    assert "Choose both ends" in page.text_content("#report-state")
    start = (datetime.now(UTC) - timedelta(days=10)).strftime("%Y-%m-%dT%H:00")
    end = (datetime.now(UTC) - timedelta(days=3)).strftime("%Y-%m-%dT%H:00")
    page.fill("#f-start", start)
    page.fill("#f-end", end)
    page.dispatch_event("#f-end", "change")
    # The dashboard asks for the API's one window parameter, START/DURATION, in its link too.
    window = f"{start}Z/P7D"
    page.wait_for_function(f"() => decodeURIComponent(location.hash).includes('range={window}')")
    wait_loaded(page, "report-state")
    custom = api(worker, f"/api/v1/volume?range={window}")
    assert f"{custom['page']['total']:,} rows" in page.text_content(".page-info")
    # The end before the start is said in the page, not sent.
    page.fill("#f-end", (datetime.now(UTC) - timedelta(days=11)).strftime("%Y-%m-%dT%H:00"))
    page.dispatch_event("#f-end", "change")
    assert "must come after its start" in page.text_content("#report-state")
    # A link in the old shape (range=custom&start&end) still opens the same window.
    _open_report(page, worker, f"range=custom&start={start}:00&end={end}:00&show=table")
    assert page.input_value("#f-start") == start and page.input_value("#f-end") == end
    assert f"{custom['page']['total']:,} rows" in page.text_content(".page-info")


def test_request_report_downloads_the_csv_for_the_range(served, page):
    worker, truth = served
    _open_report(page, worker)
    with page.expect_download() as info:
        page.click("#request-report")
    download = info.value
    assert re.match(r"smtp-auth-\d{10}-\d{10}\.csv$", download.suggested_filename)
    body = download.path().read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(body)))
    assert rows[1:] == oracle.export(truth, datetime.now(UTC), "30d")


def test_remediation_failures_and_alerts_pages(served, page):
    worker, truth = served
    now = datetime.now(UTC)
    page.goto(worker.url("/ui/#remediation?range=30d"))
    wait_loaded(page, "remediation-state")
    assert [r[0] for r in table_rows(page, "#remediation-table")] == [
        r["sender"] for r in oracle.remediation(truth, now, "30d")][:50]
    page.click("nav >> text=Auth failures")
    wait_loaded(page, "failures-state")
    want = oracle.failures(truth, now, "30d", limit=100)
    assert [(r[0], number(r[1])) for r in table_rows(page, "#failures-ip")] == [
        (r["key"], r["failures"]) for r in want["by_ip"]]
    assert [(r[0], number(r[1])) for r in table_rows(page, "#failures-account")] == [
        (r["key"], r["failures"]) for r in want["by_account"]]
    page.click("nav >> text=Alerts")
    wait_loaded(page, "alerts-state")
    alerts = api(worker, "/api/v1/alerts?range=30d&page_size=500")
    rows = table_rows(page, "#alerts-table")
    if alerts:
        assert [r[3] for r in rows] == [a["key"] for a in alerts]
    else:
        assert rows == [["No alerts in this range."]]


def test_keyboard_moves_between_pivots(served, page):
    worker, _ = served
    _open_report(page, worker)
    page.focus("#tab-volume")
    page.keyboard.press("ArrowRight")
    assert page.evaluate("() => document.activeElement.id") == "tab-tls"
    page.wait_for_function("() => location.hash.includes('pivot=tls')")
    assert page.get_attribute("#tab-tls", "aria-selected") == "true"


def test_live_panel_changes_when_new_events_arrive(served, page, kafka):
    worker, _ = served
    page.goto(worker.url("/ui/"))
    page.wait_for_function("() => document.getElementById('live-status').textContent === 'live'"
                           " && /\\d/.test(document.getElementById('live-messages').textContent)")
    # Settled: the page shows what the worker's live views say.
    before = worker.get("/live/v1/summary")["messages"]
    page.wait_for_function("n => document.getElementById('live-messages').textContent"
                           ".replace(/,/g, '') === String(n)", arg=before)
    lines, truth = LogGenerator("postfix", 77, accounts=7).log(
        25, datetime.now(UTC) - timedelta(minutes=5), 2.0)
    off_loop(produce, kafka, worker.env["SMTP_AUTH_TOPIC_RAW"],
             [(s.encode(), t.encode()) for s, t in lines])
    added = sum(1 for e in truth if e["kind"] == "submission")
    page.wait_for_function("n => document.getElementById('live-messages').textContent"
                           ".replace(/,/g, '') === String(n)", arg=before + added,
                           timeout=60_000)
    summary = worker.get("/live/v1/summary")
    assert number(page.text_content("#live-messages")) == summary["messages"]
    # Events beyond the allowed lateness are in the reports only; the panel says how many.
    assert ("late events" in page.text_content("#live-updated")) == bool(summary["late"])


def test_access_control_when_configured(kafka, tmp_path, browser):
    worker, _ = off_loop(corpus_worker, kafka, tmp_path, "auth", SMTP_AUTH_WEB_TOKEN="t0ken",
                         SMTP_AUTH_WEB_USER="admin", SMTP_AUTH_WEB_PASSWORD="s3cret")
    try:
        for path in ("/ui/", "/api/v1/widget", "/live/v1/summary", "/metrics"):
            with pytest.raises(urllib.error.HTTPError) as denied:
                urllib.request.urlopen(worker.url(path), timeout=10)
            assert denied.value.code == 401
            assert denied.value.headers["WWW-Authenticate"].startswith("Basic")
        assert worker.get("/healthz") == {"status": "ok"}  # probes stay open
        bearer = urllib.request.Request(worker.url("/api/v1/widget"),
                                        headers={"Authorization": "Bearer t0ken"})
        with urllib.request.urlopen(bearer, timeout=10) as r:
            widget = json.loads(r.read())
        context = browser.new_context(http_credentials={"username": "admin",
                                                        "password": "s3cret"})
        pg = context.new_page()
        pg.goto(worker.url("/"))
        pg.wait_for_function("() => document.getElementById('live-status').textContent"
                             " === 'live'", timeout=TIMEOUT_MS)
        wait_loaded(pg, "widget-state")
        assert number(pg.text_content("#widget-senders")) == widget["senders"]
        context.close()
        log = worker.log.read_text(errors="replace")
        assert "t0ken" not in log and "s3cret" not in log
    finally:
        worker.stop()


def test_page_load_time_at_100k_senders(kafka, tmp_path, browser):
    """Reported, not asserted: how long the overview and the 90-day report take to show
    their numbers when the engine holds 100k senders (300k events over 90 days)."""
    populated = subprocess.run(
        [sys.executable, "bench/reports_bench.py", "--populate", str(tmp_path / "data"),
         "--senders", "100000"], cwd=ROOT, capture_output=True, text=True, check=True)
    names = Names("load" + datetime.now(UTC).strftime("%H%M%S%f"))
    port = free_port()
    env = dict(os.environ, **names.env, SMTP_AUTH_KAFKA_BOOTSTRAP_SERVERS=kafka,
               SMTP_AUTH_DATA_DIR=str(tmp_path / "data"), SMTP_AUTH_WEB_PORT=str(port))
    env.pop("CLICKHOUSE_URL", None)
    worker = WorkerProcess(env, tmp_path / "worker.log", port).start()
    try:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        pg = context.new_page()
        pg.set_default_timeout(120_000)
        timings: dict[str, list[float]] = {}
        for name, path, state in (("overview", "/ui/#overview", "widget-state"),
                                  ("report_volume_90d", "/ui/#report?range=90d&show=table",
                                   "report-state"),
                                  ("report_tls_90d", "/ui/#report?range=90d&pivot=tls",
                                   "report-state"),
                                  ("remediation_90d", "/ui/#remediation?range=90d",
                                   "remediation-state")):
            for _ in range(2):  # a cold first visit, then a warm one
                pg.goto("about:blank")
                started = time.perf_counter()
                pg.goto(worker.url(path))
                wait_loaded(pg, state)
                timings.setdefault(name, []).append(round(time.perf_counter() - started, 3))
            pg.screenshot(path=str(SHOTS / f"load-100k-{name}.png"))
            if name == "report_volume_90d":
                # 500 domains: seven series and the summed tail, not 500 series.
                labels = pg.evaluate("() => Chart.getChart('report-chart').data.datasets"
                                     ".map(d => d.label)")
                assert len(labels) == 8 and labels[-1] == "Other domains (493)", labels
        total = number(pg.text_content(".page-info").split("·")[1].split()[0])
        context.close()
        report = {"senders": 100_000, "events": int(populated.stdout.strip()),
                  "seconds_to_numbers": timings, "remediation_rows": total}
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "dashboard-load-100k.json").write_text(json.dumps(report, indent=2))
        print(f"\ndashboard load at 100k senders: {report}")
        assert all(v > 0 for pair in timings.values() for v in pair)
    finally:
        worker.stop()
