"""A dead-letter record (topic smtp-auth.dlq): input we could not handle, and why."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# How much of the raw input a dead letter carries (the rest is cut).
RAW_EXCERPT = 4096
Stage = Literal["decode", "parse", "correlate", "validate", "store"]


class Rejection(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", title="smtp-auth dead letter")

    reason: str = Field(description="Short machine-readable reason, e.g. too_large.")
    detail: str = Field("", description="Human-readable explanation.")
    stage: Stage
    dialect: str | None = None
    raw: str = Field(description="The input, decoded as UTF-8 with replacement, truncated.")
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    received_at: datetime
