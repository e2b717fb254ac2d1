"""The one settings model. Read once at the entry point (`Settings.load`) and passed down.

Every field can be set as an environment variable `SMTP_AUTH_<FIELD>` (upper case) or in an
optional env file given to the CLI with `--config`. A few well-known names are accepted too
(`KAFKA_BOOTSTRAP_SERVERS`, `CLICKHOUSE_URL`). Secrets are `SecretStr`, so they never show in
reprs or logs; `*_file` variants read them from a file (Docker/Kubernetes secrets).
"""

from __future__ import annotations

import zoneinfo
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATA_DIR = Path(".run")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SMTP_AUTH_",
        frozen=True,
        extra="forbid",
        populate_by_name=True,
    )

    # --- Kafka -----------------------------------------------------------------------------
    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:9092",
        validation_alias=AliasChoices(
            "SMTP_AUTH_KAFKA_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"),
        description="Comma-separated host:port list of the Kafka brokers.",
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="How clients talk to the brokers."
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        None, description="SASL mechanism when the protocol is SASL_*."
    )
    kafka_sasl_username: str | None = Field(None, description="SASL user name.")
    kafka_sasl_password: SecretStr | None = Field(None, description="SASL password.")
    kafka_sasl_password_file: Path | None = Field(None, description="File holding the password.")
    kafka_ssl_cafile: Path | None = Field(None, description="CA bundle to verify the brokers.")
    kafka_ssl_certfile: Path | None = Field(None, description="Client certificate (mTLS).")
    kafka_ssl_keyfile: Path | None = Field(None, description="Client key (mTLS).")

    app_id: str = Field("smtp-auth-insights", description="Consumer group / faust app id.")
    topic_raw: str = Field("smtp-auth.raw", description="Raw log lines, keyed by server.")
    topic_events: str = Field("smtp-auth.events", description="Canonical events, keyed by sender.")
    topic_dlq: str = Field("smtp-auth.dlq", description="Rejected input with a reason.")
    topic_alerts: str = Field("smtp-auth.alerts", description="Alerts.")
    topic_partitions: int = Field(4, ge=1, le=1024, description="Partitions of created topics.")
    topic_replication: int = Field(1, ge=1, le=16, description="Replication of created topics.")

    # --- ClickHouse ------------------------------------------------------------------------
    clickhouse_url: str | None = Field(
        None,
        validation_alias=AliasChoices("SMTP_AUTH_CLICKHOUSE_URL", "CLICKHOUSE_URL"),
        description=(
            "chdb:///path for the embedded engine (default: <data_dir>/clickhouse, database"
            " smtp_auth), or http(s)://user@host:port/database for a server."
        ),
    )
    clickhouse_password: SecretStr | None = Field(None, description="Server password.")
    clickhouse_password_file: Path | None = Field(None, description="File holding it.")
    events_ttl_days: int = Field(90, ge=1, le=3650, description="Days raw events are kept.")
    aggregate_ttl_days: int = Field(90, ge=1, le=3650,
                                    description="Days hourly aggregates are kept.")

    # --- Worker ----------------------------------------------------------------------------
    data_dir: Path = Field(DEFAULT_DATA_DIR, description="Local state: embedded engine, broker.")
    web_host: str = Field("127.0.0.1", description="Dashboard/API bind address.")
    web_port: int = Field(6066, ge=0, le=65535, description="Dashboard/API port.")
    web_allowed_hosts: str = Field(
        "", description="Comma-separated host names the dashboard/API answer to besides the "
                        "loopback names and web_host (DNS-rebinding guard), e.g. the name a "
                        "reverse proxy or the other workers use.")
    web_token: SecretStr | None = Field(
        None, description="When set, the dashboard and API need `Authorization: Bearer` it "
                          "(or the basic-auth pair below).")
    web_token_file: Path | None = Field(None, description="File holding the web token.")
    web_user: str | None = Field(None, description="Basic-auth user for the dashboard/API.")
    web_password: SecretStr | None = Field(None, description="Basic-auth password.")
    web_password_file: Path | None = Field(None, description="File holding the password.")
    allowed_lateness_seconds: float = Field(
        3600.0, ge=0, le=7 * 86400,
        description="Live counters take events this far behind the newest; later ones are "
                    "stored in ClickHouse but counted as late.")
    prune_interval_seconds: float = Field(
        300.0, ge=0.1, le=86400,
        description="How often the live counters drop buckets past 7 days and event ids past "
                    "the dedup horizon.")
    alert_grace_seconds: int = Field(120, ge=0, le=3600,
                                     description="Alert windows close this long after their "
                                                 "end (event time), for stragglers.")
    alert_spray_accounts: int = Field(5, ge=2, description="Accounts one IP fails against.")
    alert_spray_window_minutes: int = Field(20, ge=1, le=1440, description="…within this.")
    alert_brute_failures: int = Field(8, ge=2, description="Failures per IP or account.")
    alert_brute_window_minutes: int = Field(120, ge=1, le=1440, description="…within this.")
    alert_failure_cooldown_minutes: int = Field(60, ge=0, description="One incident, one alert.")
    alert_spike_k: float = Field(
        3.0, gt=0, description="Spike: mean + k standard deviations of last week's hours.")
    alert_spike_min_volume: int = Field(10, ge=1, description="Spike: at least this many.")
    alert_spike_min_history_hours: int = Field(24, ge=1, le=168,
                                               description="Spike: history needed first.")
    alert_spike_cooldown_hours: int = Field(6, ge=0, description="Spike: quiet time after.")
    alert_webhook_url: str | None = Field(None, description="POST each alert here (JSON).")
    alert_webhook_token: SecretStr | None = Field(None, description="Sent as a bearer token.")
    status_interval_seconds: float = Field(
        30.0, ge=1, le=3600, description="How often the worker logs its status line.")
    export_write_timeout_seconds: float = Field(
        30.0, gt=0, le=3600,
        description="A CSV download whose client reads nothing for this long is cut off.")
    normalize_batch_size: int = Field(
        5000, ge=1, le=100_000,
        description="Raw lines normalized per batch (one fetch, one round of produce acks, "
                    "one commit).")
    normalize_processes: int = Field(
        1, ge=0, le=64,
        description="Processes that normalize raw lines beside the worker, each a consumer "
                    "of group <app_id>-normalize (more than the cores or the raw topic's "
                    "partitions gain nothing); 0 normalizes in the worker's own event loop.")
    count_batch_size: int = Field(
        5000, ge=1, le=100_000,
        description="Events read per fetch for the live counters (one changelog record "
                    "per sender per flush).")
    count_batch_seconds: float = Field(
        0.05, gt=0, le=10, description="Max wait for more fetches before the live counters "
                                       "count what they have.")
    count_flush_seconds: float = Field(
        1.0, gt=0, le=60,
        description="Under load, the longest the live counters wait between two changelog "
                    "flushes (the views count events at once; a crash counts the unflushed "
                    "ones again from the changelog, once).")
    sink_batch_size: int = Field(
        20_000, ge=1, le=1_000_000,
        description="Max events per insert (a backlog's inserts; at a steady rate the batch "
                    "is what sink_batch_seconds gathers). Each insert feeds the rollups' "
                    "views once: 20,000 cost about 15 us an event, 5,000 about 25.")
    sink_batch_seconds: float = Field(1.0, gt=0, le=60, description="Max wait to fill a batch.")

    # --- Normalizing -----------------------------------------------------------------------
    default_domain: str | None = Field(None, description="Domain given to bare user names.")
    log_timezone: str = Field("UTC", description="Zone of log stamps that carry none.")
    max_line_bytes: int = Field(16384, ge=256, le=1_048_576, description="Longer input → DLQ.")
    session_timeout_seconds: float = Field(
        300.0, gt=0, description="A multi-line session is emitted with what is known after this."
    )
    max_pending_sessions: int = Field(
        50_000, ge=10, description="Per partition; the oldest is emitted early beyond this."
    )
    max_clock_skew_seconds: float = Field(
        86_400.0, ge=60, le=366 * 86400,
        description="Events stamped further ahead of their receive time than this (a server "
                    "with a wrong clock, a crafted stamp) are dead letters, as are events "
                    "stamped before 1970.")
    native_scan: bool = Field(
        True, description="Scan log files and Kafka fetches with the Rust scanner when it is "
        "built (false: the pure-Python reference; the output is the same)."
    )

    @field_validator("log_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("clickhouse_url")
    @classmethod
    def _known_scheme(cls, value: str | None) -> str | None:
        if value is not None and urlparse(value).scheme not in ("chdb", "http", "https"):
            raise ValueError("CLICKHOUSE_URL must start with chdb://, http:// or https://")
        return value

    @model_validator(mode="after")
    def _read_secret_files(self) -> Settings:
        # Frozen model: fill the secret from its file once, here, at load time.
        for name in ("kafka_sasl_password", "clickhouse_password", "web_token", "web_password"):
            path: Path | None = getattr(self, f"{name}_file")
            if path is not None and getattr(self, name) is None:
                secret = SecretStr(path.read_text(encoding="utf-8").strip())
                object.__setattr__(self, name, secret)
        return self

    @model_validator(mode="after")
    def _basic_auth_pair(self) -> Settings:
        if (self.web_user is None) != (self.web_password is None):
            raise ValueError("web_user and web_password go together")
        return self

    @classmethod
    def load(cls, env_file: Path | None = None) -> Settings:
        """Read the environment (and the optional env file) once. A bad value is a
        SettingsError that names the setting and never shows what was given (it may be a
        password)."""
        try:
            return cls(_env_file=env_file)
        except ValidationError as exc:
            raise SettingsError(exc) from None

    @property
    def web_allowed_host_names(self) -> tuple[str, ...]:
        return tuple(h.strip() for h in self.web_allowed_hosts.split(",") if h.strip())

    @property
    def clickhouse_dsn(self) -> str:
        if self.clickhouse_url:
            return self.clickhouse_url
        return f"chdb://{(self.data_dir / 'clickhouse').resolve()}"

    @property
    def embedded_clickhouse(self) -> bool:
        return self.clickhouse_dsn.startswith("chdb:")

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.log_timezone)


class SettingsError(ValueError):
    """Invalid settings, described without their values."""

    def __init__(self, exc: ValidationError) -> None:
        problems = [
            f"{'.'.join(str(part) for part in e['loc']) or 'settings'}: {e['msg']}"
            for e in exc.errors(include_url=False, include_context=False, include_input=False)]
        super().__init__("invalid settings: " + "; ".join(problems))
