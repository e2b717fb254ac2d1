"""schemathesis against the worker's own /openapi.json, bounded: every operation, a fixed
seed, every check but one. No 5xx, every answer as documented (status, content type,
response schema), and what the schema rules out is refused.

Left out, on purpose: "positive data acceptance". The OpenAPI document describes each query
parameter on its own and cannot say that start/end go only with range=custom, that start
comes before end or that a window spans at most 366 days; requests breaking those are
refused with a 400 naming the parameter, which that check counts as a failure."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from tests.helpers import ARTIFACTS, create_topics

pytestmark = pytest.mark.integration


def test_schemathesis_finds_nothing_over_every_operation(kafka, names, worker_factory):
    create_topics(kafka, [names.env["SMTP_AUTH_TOPIC_RAW"]], partitions=1)
    worker = worker_factory().start()
    done = subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "run", worker.url("/openapi.json"),
         "--max-examples", "30", "--seed", "1", "--exclude-checks",
         "positive_data_acceptance", "--no-color"],
        capture_output=True, text=True, timeout=600, check=False)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-4000:]
    operations = re.search(r"Tested: (\d+)", out)
    cases = re.search(r"(\d+) generated, (\d+) passed", out)
    assert operations and cases, out[-2000:]
    assert int(operations[1]) == len(worker.get("/openapi.json")["paths"])
    assert cases[1] == cases[2] and int(cases[1]) > 100
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "schemathesis.json").write_text(json.dumps(
        {"operations": int(operations[1]), "requests": int(cases[1])}, indent=2))
    print(f"\nschemathesis: {cases[1]} requests over {operations[1]} operations, no failure")
