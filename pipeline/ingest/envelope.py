"""Decode one raw Kafka message: a bare syslog line, a shipper's JSON envelope (rsyslog, Vector,
Fluent Bit, Filebeat), or an already-canonical event. Pure; errors are returned, not raised."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from pydantic import ValidationError

from pipeline.ingest.syslog import SyslogLine, parse_rfc3339, parse_syslog
from schemas.event import AuthEvent

_MESSAGE_KEYS = ("message", "msg", "MESSAGE", "log")
_HOST_KEYS = ("hostname", "host", "HOSTNAME", "source_host")
_TIME_KEYS = ("@timestamp", "timestamp", "time", "ts")
_PROGRAM_KEYS = ("appname", "program", "ident", "programname", "app_name", "SYSLOG_IDENTIFIER")
_PID_KEYS = ("procid", "pid", "PID", "_PID")


@dataclass(frozen=True, slots=True)
class Undecodable:
    reason: str
    detail: str


Decoded = SyslogLine | AuthEvent | Undecodable


Headerless = Callable[[str, "str | None", tzinfo], "SyslogLine | None"]


def decode(
    raw: bytes, received: datetime, zone: tzinfo, max_bytes: int, year: int | None = None,
    host: str | None = None, headerless: Sequence[Headerless] = (), text: str | None = None,
) -> Decoded:
    """`host` (the Kafka key) names the server of lines that carry none (Exim's and
    Exchange's own log files); `headerless` are the dialects' parsers for such lines."""
    if len(raw) > max_bytes:
        return Undecodable("too_large", f"{len(raw)} bytes, limit {max_bytes}")
    text = (text if text is not None else raw.decode("utf-8", errors="replace")).strip()
    if not text:
        return Undecodable("empty", "empty message")
    if text[0] == "{":
        return _decode_json(text, received, zone, year, headerless)
    line = parse_syslog(text, received, zone, year) or _own_format(text, host, zone, headerless)
    if line is None:
        return Undecodable("no_syslog_header", "not a syslog line, a known log file line,"
                                               " nor a JSON envelope")
    return line


def _own_format(text: str, host: str | None, zone: tzinfo,
                headerless: Sequence[Headerless]) -> SyslogLine | None:
    for parse in headerless:
        line = parse(text, host, zone)
        if line is not None:
            return line
    return None


def _decode_json(text: str, received: datetime, zone: tzinfo, year: int | None,
                 headerless: Sequence[Headerless]) -> Decoded:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        return Undecodable("bad_json", str(exc))
    if not isinstance(doc, dict):
        return Undecodable("bad_json", "top level is not an object")
    if "event_id" in doc and "kind" in doc:
        try:
            return AuthEvent.model_validate(doc)
        except ValidationError as exc:
            return Undecodable("invalid_event", _short(exc))
    message = _first(doc, _MESSAGE_KEYS)
    if not isinstance(message, str) or not message:
        return Undecodable("no_message", "envelope has no message/msg field")
    program = _first(doc, _PROGRAM_KEYS) or _dig(doc, "process", "name") or _dig(
        doc, "log", "syslog", "appname")
    host = _first(doc, _HOST_KEYS)
    if isinstance(host, dict):  # ECS (Filebeat): host.name / host.hostname
        host = host.get("hostname") or host.get("name")
    if not program:
        # The message is a whole syslog line (rsyslog omkafka's default template does this).
        line = parse_syslog(message, _envelope_time(doc, received, zone), zone, year) or (
            _own_format(message, str(host) if host else None, zone, headerless))
        if line is None:
            return Undecodable("no_syslog_header", "envelope message is not a syslog line")
        return line
    pid = _first(doc, _PID_KEYS) or _dig(doc, "process", "pid")
    stamp = _envelope_time(doc, None, zone)
    if stamp is None:
        return Undecodable("no_timestamp", "envelope has no parseable @timestamp/timestamp")
    try:
        pid_value = int(pid) if pid not in (None, "", "-") else None
    except (TypeError, ValueError):
        pid_value = None
    return SyslogLine(stamp, str(host or "unknown"), str(program), pid_value, message)


def _envelope_time(doc: dict[str, Any], default: Any, zone: tzinfo) -> Any:
    value = _first(doc, _TIME_KEYS)
    if isinstance(value, str):
        try:
            return parse_rfc3339(value.replace(" ", "T", 1), zone)
        except (ValueError, OverflowError):  # no such time; beyond the years 1-9999 in UTC
            return default
    return default


def _first(doc: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        value = doc.get(key)
        if value not in (None, ""):
            return value
    return None


def _dig(doc: dict[str, Any], *path: str) -> Any:
    node: Any = doc
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def _short(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return f"{exc.error_count()} error(s); {where}: {first['msg']}"
