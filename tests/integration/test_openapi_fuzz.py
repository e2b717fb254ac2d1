"""schemathesis against the worker's own /openapi.json, bounded: every operation, a fixed
seed, every check (`--checks all`). No 5xx, every answer as documented (status, content type,
response schema), what the schema rules out is refused, and what it admits is accepted
(positive data acceptance): the document says all the API checks, the window included
(one `range` parameter whose pattern bounds a custom interval's years and span)."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.parse
from collections import Counter

import pytest

from pipeline.store.reports.query import PRESETS
from tests.helpers import ARTIFACTS, create_topics

pytestmark = pytest.mark.integration


def test_schemathesis_finds_nothing_over_every_operation(kafka, names, worker_factory,
                                                          tmp_path, capsys):
    create_topics(kafka, [names.env["SMTP_AUTH_TOPIC_RAW"]], partitions=1)
    worker = worker_factory().start()
    reports = tmp_path / "schemathesis"
    done = subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "run", worker.url("/openapi.json"),
         "--max-examples", "50", "--seed", "1", "--checks", "all", "--no-color",
         "--report", "json,har", "--report-dir", str(reports)],
        capture_output=True, text=True, timeout=600, check=False)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-4000:]
    run = json.loads(next(reports.glob("json-*.json")).read_text())
    operations = len(worker.get("/openapi.json")["paths"])
    assert run["operations"]["tested"] == operations == run["operations"]["total"]
    assert run["failures"] == [] and run["errors"] == [], run["failures"] or run["errors"]
    assert {phase: run["phases"][phase]["status"] for phase in (
        "examples", "coverage", "fuzzing")} == dict.fromkeys(
            ("examples", "coverage", "fuzzing"), "success")
    # schemathesis understood every pattern (an unsupported one would be generated loosely).
    assert not any(run["warnings"].values()), run["warnings"]
    assert not [(op, phase) for op, phases in run["valid_rates"].items()
                for phase, rates in phases.items() if rates["rejected"]]

    entries = json.loads(next(reports.glob("har-*.json")).read_text())["log"]["entries"]
    requests = run["test_cases"]["generated"]
    assert len(entries) == requests > 1000
    statuses = Counter(e["response"]["status"] for e in entries)
    windows = [urllib.parse.parse_qs(urllib.parse.urlparse(e["request"]["url"]).query).get(
        "range", [""])[0] for e in entries if e["response"]["status"] == 200]
    intervals = sum("/" in w for w in windows)
    presets = sum(w in PRESETS for w in windows)
    assert intervals >= 20 and presets >= 20, (intervals, presets)
    assert statuses[500] == statuses[503] == 0
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "schemathesis.json").write_text(json.dumps(
        {"operations": operations, "requests": requests, "checks": "all", "failures": 0,
         "statuses": dict(sorted(statuses.items())),
         "accepted_custom_windows": intervals}, indent=2))
    with capsys.disabled():  # in make test's output, not only on failure
        print(f"\nschemathesis: {requests} requests over {operations} operations, every check, "
              f"no failure (statuses {dict(sorted(statuses.items()))}; {intervals} custom "
              f"windows and {presets} presets answered 200)")
