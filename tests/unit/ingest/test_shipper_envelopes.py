"""Vector, Fluent Bit and Filebeat cannot run here: each one's Kafka envelope, as its
documentation describes it (cited per builder), goes through the decoder and normalizer, and
the events must equal the generator's truth. The key each config names is the one used."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from pipeline.normalize.dialects.base import NormalizeConfig
from pipeline.normalize.normalizer import Normalizer, normalize_lines
from pipeline.synthetic import LogGenerator
from tests.helpers import ROOT

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
READ = T0 + timedelta(hours=1)
DEPLOY = ROOT / "deploy"
Envelope = Callable[[str, str, str], tuple[bytes, bytes]]


def vector(host: str, line: str, path: str) -> tuple[bytes, bytes]:
    # https://vector.dev/docs/reference/configuration/sources/file/ (Output: file, host,
    # message, source_type, timestamp) encoded by the kafka sink's json codec
    # (https://vector.dev/docs/reference/configuration/sinks/kafka/); key from key_field.
    event = {"file": path, "host": host, "message": line, "source_type": "file",
             "timestamp": "2026-11-28T11:00:00.123456789Z"}
    config = yaml.safe_load((DEPLOY / "vector" / "vector.yaml").read_text())
    return str(event[config["sinks"]["smtp_auth_raw"]["key_field"]]).encode(), \
        json.dumps(event).encode()


def fluent_bit(host: str, line: str, path: str) -> tuple[bytes, bytes]:
    # tail's record {"log": line} plus our record_modifier's hostname; the kafka output's
    # format json adds timestamp_key "@timestamp" in timestamp_format iso8601 and takes
    # the key from message_key_field (https://docs.fluentbit.io/manual/pipeline/outputs/kafka).
    config = yaml.safe_load((DEPLOY / "fluent-bit" / "fluent-bit.yaml").read_text())
    out = config["pipeline"]["outputs"][0]
    assert (out["format"], out["timestamp_format"]) == ("json", "iso8601")
    record = {"log": line, "hostname": host, out["timestamp_key"]: "2026-11-28T11:00:00.000Z"}
    return record[out["message_key_field"]].encode(), json.dumps(record).encode()


def fluent_bit_double(host: str, line: str, path: str) -> tuple[bytes, bytes]:
    # The output's default timestamp_format is double: seconds since the epoch, a number.
    record = {"@timestamp": 1764327600.123, "log": line, "hostname": host}
    return host.encode(), json.dumps(record).encode()


def filebeat(host: str, line: str, path: str) -> tuple[bytes, bytes]:
    # The ECS event of a filestream input, json codec
    # (https://www.elastic.co/guide/en/beats/filebeat/current/kafka-output.html; fields:
    # https://www.elastic.co/guide/en/beats/filebeat/current/exported-fields.html), key
    # '%{[host.name]}' as our filebeat.yml sets it.
    config = yaml.safe_load((DEPLOY / "filebeat" / "filebeat.yml").read_text())
    assert config["output.kafka"]["key"] == "%{[host.name]}"
    event = {
        "@timestamp": "2026-11-28T11:00:00.123Z",
        "@metadata": {"beat": "filebeat", "type": "_doc", "version": "8.15.0"},
        "message": line,
        "log": {"offset": 4711, "file": {"path": path, "device_id": "64768", "inode": "1"}},
        "input": {"type": "filestream"},
        "host": {"name": host, "hostname": host, "architecture": "x86_64",
                 "os": {"family": "debian", "name": "Debian GNU/Linux"}},
        "agent": {"type": "filebeat", "version": "8.15.0", "name": host,
                  "id": "0d1c8f6e", "ephemeral_id": "5b2f"},
        "ecs": {"version": "8.0.0"},
    }
    return event["host"]["name"].encode(), json.dumps(event).encode()


def _key(e: dict[str, Any]) -> tuple[Any, ...]:
    return (e["ts"], e["server"], e["kind"], e["client_ip"] or "", e["message_id"] or "",
            e["sender"] or "")


@pytest.mark.parametrize("envelope", [vector, fluent_bit, fluent_bit_double, filebeat])
def test_shipper_envelope_normalizes_to_the_truth(envelope: Envelope) -> None:
    # Two servers: mx1's Postfix through syslog (/var/log/mail.log), mx2's Exim mainlog,
    # whose lines name no server: the envelope's host does.
    postfix, postfix_truth = LogGenerator("postfix", 31).log(150, T0)
    exim, exim_truth = LogGenerator("exim", 32).log(150, T0)
    feed = [envelope(s, line, "/var/log/mail.log") for s, line in postfix
            if s == "mx1.example.net"]
    feed += [envelope(s, line, "/var/log/exim4/mainlog") for s, line in exim
             if s == "mx2.example.net"]
    truth = [t for t in postfix_truth if t["server"] == "mx1.example.net"] + [
        t for t in exim_truth if t["server"] == "mx2.example.net"]

    events, rejections = [], []
    for out in normalize_lines(feed, Normalizer(NormalizeConfig()), READ):
        events += out.events
        rejections += out.rejections
    assert rejections == []
    got = [e.model_dump(mode="json", exclude={"event_id"}) for e in events]
    assert sorted(got, key=_key) == sorted(truth, key=_key)
    assert {k for k, _ in feed} == {b"mx1.example.net", b"mx2.example.net"}
