"""SIGKILL at the places where a batch is half done (issue 12): while the live counters'
changelog records of a batch are being written, while a batch of normalized events is on
its way to the broker, and while a fetch of events is forwarded to the counters as frames.
After a restart the counts are exact, and ClickHouse agrees."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from pipeline.synthetic import LogGenerator
from tests.helpers import create_topics, live_truth, produce, settle_live, wait_for

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("point", ["count-flush", "normalize-batch", "count-feed"])
def test_sigkill_half_way_through_a_batch_then_exact(kafka, names, worker_factory, point):
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    lines, truth = LogGenerator("postfix", 41, accounts=400).log(3000, start, spacing=1.5)
    expected = live_truth(truth)
    raw = names.env["SMTP_AUTH_TOPIC_RAW"]
    create_topics(kafka, [raw], partitions=2)
    worker = worker_factory(SMTP_AUTH_TEST_FAILPOINT=point,
                            SMTP_AUTH_COUNT_BATCH_SIZE="200", SMTP_AUTH_NORMALIZE_BATCH_SIZE="2000")
    worker.module = "tests.failpoints"
    worker.start()
    produce(kafka, raw, [(s.encode(), t.encode()) for s, t in lines])
    assert worker.proc is not None
    deadline = time.monotonic() + 120
    while worker.proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)  # poll
    assert worker.proc.returncode == -9, f"the failpoint did not fire:\n{worker.tail()}"
    assert f"failpoint {point} reached" in worker.tail()

    worker.module = "pipeline.cli"
    del worker.env["SMTP_AUTH_TEST_FAILPOINT"]
    worker.start()
    settle_live(worker, expected, f"live counts exact after a SIGKILL at {point}")
    stored = wait_for(lambda: (s := worker.get("/api/v1/summary"))["messages"]
                      == expected["messages"] and s, 90, "ClickHouse totals")
    assert stored["by_tls"] == expected["by_tls"]
    assert worker.get("/live/v1/summary") == expected  # and it stays exact
