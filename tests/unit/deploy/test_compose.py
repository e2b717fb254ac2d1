"""deploy/compose/ read as Docker Compose reads it (YAML with merge keys), without Docker:
images pinned to exact versions, ports on loopback, workers configured only with real
settings and no more workers than partitions. Nothing here starts a container."""

from __future__ import annotations

import os
import re
from typing import Any

import pytest
import yaml
from pydantic import AliasChoices

from pipeline.settings import Settings
from tests.helpers import ROOT

COMPOSE = ROOT / "deploy" / "compose"
PINNED = re.compile(r"^[\w./-]+:\d+(\.\d+){2,3}(-[\w.]+)?$")  # name:1.2.3 (or 1.2.3.4)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((COMPOSE / "docker-compose.yml").read_text()))


def _setting_names() -> set[str]:
    names = set()
    for name, field in Settings.model_fields.items():
        names.add(f"SMTP_AUTH_{name.upper()}")
        if isinstance(field.validation_alias, AliasChoices):
            names.update(str(c) for c in field.validation_alias.choices)
    return names


def _workers(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in compose["services"].items() if n.startswith("worker")}


def test_images_are_pinned_to_exact_versions(compose):
    for name, service in compose["services"].items():
        assert PINNED.match(service["image"]), f"{name}: {service['image']} is not pinned"
    base = re.search(r"^FROM (\S+)", (COMPOSE / "Dockerfile").read_text(), re.M)
    assert base and re.match(r"^python:\d+\.\d+\.\d+-", base[1]), base


def test_every_port_is_bound_to_loopback(compose):
    ports = [(n, p) for n, s in compose["services"].items() for p in s.get("ports", [])]
    assert ports, "the stack publishes something"
    for name, port in ports:
        assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"


def test_worker_environment_names_only_real_settings(compose, monkeypatch):
    known = _setting_names()
    workers = _workers(compose)
    assert len(workers) >= 2
    for name, service in workers.items():
        env = service["environment"]
        unknown = sorted(set(env) - known)
        assert unknown == [], f"{name}: not fields of pipeline/settings.py: {unknown}"
        # The model accepts the values as the worker would read them (.env values stubbed).
        with monkeypatch.context() as m:
            for key in [k for k in os.environ if k in known]:
                m.delenv(key)
            for key, value in env.items():
                m.setenv(key, "stub" if "${" in str(value) else str(value))
            Settings.load()
        assert env["SMTP_AUTH_WEB_HOST"] == service["hostname"], \
            "each worker advertises the address the others reach it at"


def test_no_more_workers_than_partitions(compose):
    workers = _workers(compose)
    partitions = {int(s["environment"]["SMTP_AUTH_TOPIC_PARTITIONS"]) for s in workers.values()}
    assert len(partitions) == 1
    assert len(workers) <= partitions.pop()
    assert len({s["hostname"] for s in workers.values()}) == len(workers)


def test_grafana_gets_the_datasource_and_our_dashboard(compose):
    grafana = compose["services"]["grafana"]
    assert grafana["environment"]["GF_INSTALL_PLUGINS"].startswith(
        "grafana-clickhouse-datasource ")
    assert PINNED.match("x:" + grafana["environment"]["GF_INSTALL_PLUGINS"].split()[1])
    mounts = {m.split(":")[0]: m.split(":")[1] for m in grafana["volumes"] if m.startswith(".")}
    for source in mounts:
        assert (COMPOSE / source).exists(), source
    dashboards = yaml.safe_load(
        (COMPOSE / "grafana/provisioning/dashboards/smtp-auth.yaml").read_text())
    folder = dashboards["providers"][0]["options"]["path"]
    assert mounts["../grafana/smtp-auth-insights.json"].startswith(folder + "/")
    sources = yaml.safe_load(
        (COMPOSE / "grafana/provisioning/datasources/clickhouse.yaml").read_text())
    [source] = sources["datasources"]
    assert (source["type"], source["isDefault"]) == ("grafana-clickhouse-datasource", True)
    assert source["jsonData"]["host"] in compose["services"]
