"""`smtp-auth worker` with ClickHouse unreachable, for tests/integration/test_outage.py:
`python -m tests.integration.outage_worker worker`.

The fault is injected at the ClickHouse client class (pipeline.store.clickhouse.ClickHouse),
the one door every write and report query of the worker goes through: during an outage,
insert, command and query_rows raise what clickhouse-connect raises for a server it cannot
reach. TEST_OUTAGES lists the outages, e.g. `events:60,alerts:20`: each begins with the
first insert into its table after the one before has ended, and lasts its seconds. (The sink
writes one batch at a time and holds the rest while one is retried, so one outage exercises
one table's retry; two in a row exercise both.) Migrations at start-up use the driver
underneath and are not affected. The windows and the calls refused in each are written to
TEST_OUTAGE_STATE (JSON) as they happen, so the test can tell that, and when, they hit.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from clickhouse_connect.driver.exceptions import OperationalError

from pipeline.store import clickhouse


class Outages:
    def __init__(self, spec: str, state: Path) -> None:
        self.pending = [(table, float(seconds)) for table, seconds in (
            part.split(":") for part in spec.split(","))]
        self.state = state
        self.windows: list[dict[str, Any]] = []

    def check(self, name: str, table: str | None) -> None:
        now = time.time()
        current = self.windows[-1] if self.windows else None
        if (current is None or now >= current["end"]) and self.pending and (
                name == "insert" and table == self.pending[0][0]):
            table, seconds = self.pending.pop(0)
            current = {"table": table, "start": now, "end": now + seconds, "refused": 0}
            self.windows.append(current)
        if current is not None and now < current["end"]:
            current["refused"] += 1
            self._write()
            raise OperationalError(f"injected outage: ClickHouse unreachable ({name})")

    def _write(self) -> None:
        temporary = self.state.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.windows))
        temporary.replace(self.state)


def install(outages: Outages) -> None:
    def failing(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def call(self: clickhouse.ClickHouse, *args: Any, **kwargs: Any) -> Any:
            outages.check(name, args[0] if name == "insert" else None)
            return original(self, *args, **kwargs)

        return call

    for name in ("insert", "command", "query_rows"):
        setattr(clickhouse.ClickHouse, name, failing(name, getattr(clickhouse.ClickHouse, name)))


if __name__ == "__main__":
    install(Outages(os.environ["TEST_OUTAGES"], Path(os.environ["TEST_OUTAGE_STATE"])))
    from pipeline.cli.main import main

    main()
