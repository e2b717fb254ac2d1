"""An alert (topic smtp-auth.alerts, JSON). Its id is derived from the rule, the key and the
window it was decided on, so a replayed log gives the same ids and consumers can dedup."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator

Rule = Literal["legacy_tls_spike", "first_legacy_tls", "password_spray", "brute_force_account",
               "brute_force_ip"]


class Alert(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", title="smtp-auth alert")

    alert_id: str = Field(description="Stable: rule + key + window.")
    rule: Rule
    severity: Literal["info", "warning", "critical"]
    key: str = Field(description="What it is about: a domain ('*' overall), account or IP.")
    ts: datetime = Field(description="Event time the alert was decided at (window end).")
    window_start: datetime
    window_end: datetime
    value: float = Field(description="What was observed (messages, failures, accounts).")
    threshold: float = Field(description="What it had to reach.")
    baseline_mean: float | None = None
    baseline_sd: float | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    message: str

    @field_validator("ts", "window_start", "window_end")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("times must carry a time zone")
        return value.astimezone(UTC)

    @field_serializer("ts", "window_start", "window_end")
    def _iso_z(self, value: datetime) -> str:
        return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
