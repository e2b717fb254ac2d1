"""The reports through a running worker: the JSON API, its OpenAPI document, the CSV export
and the `smtp-auth report` CLI, all equal to the ground truth."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import urllib.error
import urllib.request
from datetime import UTC, datetime

import pytest

from pipeline.store.reports import ReportQuery
from tests import report_oracle as oracle
from tests.conftest import corpus_worker
from tests.helpers import ROOT

pytestmark = pytest.mark.integration


def _get(worker, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(worker.url(path), timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _json(worker, path: str):
    status, body = _get(worker, path)
    assert status == 200, body
    return json.loads(body)


def _cli(worker, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "pipeline.cli", "report", *args],
                          env=worker.env, cwd=ROOT, capture_output=True, timeout=120,
                          check=False)


@pytest.fixture(scope="module")
def served(kafka, tmp_path_factory):
    """One worker fed a generated 12-day corpus, shared by the tests of this module."""
    worker, truth = corpus_worker(kafka, tmp_path_factory.mktemp("api"), "api")
    yield worker, truth
    worker.stop()


def test_every_report_equals_the_truth(served):
    worker, truth = served
    now = datetime.now(UTC)
    w = _json(worker, "/api/v1/widget")
    assert (w["senders"], w["previous_senders"]) == oracle.widget(truth, now)
    f = _json(worker, "/api/v1/flyout")
    assert {"tls": f["tls"], "daily": f["daily"]} == oracle.flyout(truth, now)
    tls = _json(worker, "/api/v1/tls?range=30d&page_size=1000")
    want = oracle.tls_usage(truth, now, "30d")
    assert (tls["totals"], tls["chart"], tls["rows"]) == (want["totals"], want["chart"],
                                                          want["rows"])
    rem = _json(worker, "/api/v1/remediation?range=30d&page_size=1000")
    assert [r["sender"] for r in rem["rows"]] == [
        r["sender"] for r in oracle.remediation(truth, now, "30d")]
    fails = _json(worker, "/api/v1/failures?range=30d")
    assert [(r["key"], r["failures"]) for r in fails["by_ip"]] == [
        (r["key"], r["failures"]) for r in oracle.failures(truth, now, "30d")["by_ip"]]
    status, body = _get(worker, "/api/v1/export.csv?range=30d")
    assert status == 200
    rows = list(csv.reader(io.StringIO(body.decode())))
    assert rows[1:] == oracle.export(truth, now, "30d")


def test_openapi_documents_every_route_and_they_answer(served):
    worker, _ = served
    doc = _json(worker, "/openapi.json")
    assert doc["openapi"].startswith("3.")
    for path in doc["paths"]:
        status, _ = _get(worker, path)
        assert status == 200, path


@pytest.mark.parametrize(("query", "needle"), [
    ("/api/v1/volume?range=bogus", "range"),
    ("/api/v1/volume?page=0", "greater than or equal to 1"),
    ("/api/v1/volume?range=custom", "START/DURATION"),
    ("/api/v1/volume?range=custom&start=2026-11-02&end=2026-11-01", "replaced by one parameter"),
    ("/api/v1/volume?range=2026-11-01/P367D", "not 1 hour to 366 days"),
    ("/api/v1/volume?range=2026-02-29/P1D", "not a date"),
    ("/api/v1/export.csv?range=2026-11-01/P1D&sort=sender", "unknown sort"),
    ("/api/v1/volume?colour=blue", "colour"),
    ("/api/v1/widget?range=7d", "unknown parameter"),
    ("/api/v1/volume?sort=colour", "sorts by sender, domain, messages"),
    ("/api/v1/failures?sort=failures", "unknown sort"),
    ("/api/v1/volume?search=" + "x" * 400, "at most 320"),
])
def test_bad_parameters_are_clear_400s(served, query, needle):
    worker, _ = served
    status, body = _get(worker, query)
    assert status == 400
    assert needle in json.loads(body)["error"]


def test_cli_reports_equal_the_api(served):
    worker, truth = served
    done = _cli(worker, "volume", "--range", "30d", "--page-size", "1000", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == _json(worker, "/api/v1/volume?range=30d&page_size=1000")
    export = _cli(worker, "export", "--range", "30d")
    assert list(csv.reader(io.StringIO(export.stdout.decode())))[1:] == oracle.export(
        truth, datetime.now(UTC), "30d")
    table = _cli(worker, "widget")
    assert str(oracle.widget(truth, datetime.now(UTC))[0]) in table.stdout.decode()
    bad = _cli(worker, "volume", "--page", "0")
    assert bad.returncode == 2 and b"greater than or equal to 1" in bad.stderr
    since, _ = ReportQuery(range="30d").window(datetime.now(UTC))
    window = f"{since:%Y-%m-%dT%HZ}/P30D"
    custom = _cli(worker, "volume", "--range", window, "--page-size", "1000", "--format", "json")
    assert custom.returncode == 0, custom.stderr
    assert json.loads(custom.stdout) == _json(worker, "/api/v1/volume?range=30d&page_size=1000")
    old = _cli(worker, "volume", "--from", "2026-11-01", "--to", "2026-11-02")
    assert old.returncode == 2 and b"--range START/DURATION" in old.stderr
