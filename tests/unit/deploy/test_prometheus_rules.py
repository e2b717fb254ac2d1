"""deploy/prometheus/: the rules file is well-formed, and every metric it names is one the
worker's /metrics exports (pipeline/metrics.py), with the suffix its type gives it."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from prometheus_client import generate_latest

from pipeline.metrics import Metrics
from tests.helpers import ROOT

RULES = ROOT / "deploy" / "prometheus" / "smtp-auth-rules.yml"
PROMETHEUS_OWN = {"up"}  # written by Prometheus itself for every scrape target
SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}
METRIC = re.compile(r"\b(up|smtp_auth_[a-z0-9_]+)\b")


def _rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(RULES.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def _exported() -> dict[str, str]:
    """Sample name → type, from the exposition text (HELP/TYPE lines are there even for a
    labelled metric with no children yet)."""
    text = generate_latest(Metrics().registry).decode()
    names = {}
    for base, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M):
        if kind == "counter":  # older clients name the family without _total
            base = base.removesuffix("_total")
        for suffix in SUFFIXES.get(kind, ("",)):
            names[base + suffix] = kind
    return names


def test_rules_are_well_formed():
    rules = _rules()
    assert len(rules) >= 6
    assert len({r["alert"] for r in rules}) == len(rules)
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert rule["labels"]["severity"] in {"page", "ticket"}
        assert rule["annotations"]["summary"]
        expr = rule["expr"]
        assert expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}")
        if "for" in rule:
            assert re.fullmatch(r"\d+[smh]", rule["for"])


def test_rules_cover_what_the_guide_promises():
    exprs = " ".join(r["expr"] for r in _rules())
    for needed in ("smtp_auth_consumer_lag", "smtp_auth_rejections_total",
                   "smtp_auth_sink_failures_total", 'outcome="rejected"', "by (dialect)"):
        assert needed in exprs, needed


@pytest.mark.parametrize("rule", _rules(), ids=lambda r: r["alert"])
def test_every_metric_named_is_exported(rule):
    exported = _exported()
    named = set(METRIC.findall(rule["expr"])) - PROMETHEUS_OWN
    missing = sorted(n for n in named if n not in exported)
    assert missing == [], f"not exported by pipeline/metrics.py: {missing}"
    for name in named:
        labels = re.findall(name + r"\{([^}]*)\}", rule["expr"])
        for selector in labels:
            for label in re.findall(r"(\w+)\s*!?=~?", selector):
                assert label in _label_names(name), (name, label)


def _label_names(sample: str) -> set[str]:
    base = re.sub(r"_(total|bucket|sum|count)$", "", sample)
    for collector in Metrics().registry._collector_to_names:
        if getattr(collector, "_name", None) == base:
            return set(collector._labelnames)
    return set()
