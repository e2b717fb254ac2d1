"""Every panel of the Grafana dashboard runs on the real engine against our tables."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import clickhouse_connect
import pytest

from pipeline.store.clickhouse import ClickHouse, migrate
from pipeline.store.sink import EVENT_COLUMNS, event_row
from schemas.event import AuthEvent
from tests.helpers import ROOT

pytestmark = pytest.mark.integration
DASHBOARD = ROOT / "deploy" / "grafana" / "smtp-auth-insights.json"


def _expand(sql: str, domain: str) -> str:
    """The ClickHouse plugin's macros and variables, as Grafana expands them."""
    sql = re.sub(r"\$__timeFilter\((\w+)\)",
                 r"\1 >= now() - INTERVAL 7 DAY AND \1 <= now() + INTERVAL 1 HOUR", sql)
    return sql.replace("${domain}", domain)


@pytest.mark.parametrize("domain", ["", "example.com"])
def test_every_panel_query_runs(tmp_path, domain):
    client = clickhouse_connect.get_client(dsn=f"chdb://{tmp_path / 'ch'}")
    ch = ClickHouse(client, "smtp_auth")  # the dashboard names the default database
    try:
        migrate(ch, 90)
        now = datetime.now(UTC)
        events = [AuthEvent(event_id=f"g{i}", kind="submission" if i % 4 else "auth_failure",
                            ts=now - timedelta(hours=i), server="mx1", source="json",
                            sender=f"u{i % 3}@example.com", sender_domain="example.com",
                            tls_version="TLS1.0" if i % 2 else "TLS1.3",
                            client_ip=f"192.0.2.{i}") for i in range(1, 20)]
        ch.insert("events", [event_row(e) for e in events], EVENT_COLUMNS)
        dashboard = json.loads(DASHBOARD.read_text())
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                rows = ch.query_rows(_expand(target["rawSql"], domain))
                assert rows, f"panel {panel['title']!r} returned nothing"
        variable = dashboard["templating"]["list"][1]["query"]
        assert [r[0] for r in ch.query_rows(variable)] in (["", "example.com"],
                                                           ["example.com", ""])
    finally:
        ch.close()
