"""Write the JSON Schemas of the topic contracts: `python -m schemas.export`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from schemas.alert import Alert
from schemas.event import AuthEvent
from schemas.rejection import Rejection

JSON_DIR = Path(__file__).parent / "json"

CONTRACTS: dict[str, Any] = {
    "smtp-auth.events.schema.json": AuthEvent,
    "smtp-auth.dlq.schema.json": Rejection,
    "smtp-auth.alerts.schema.json": Alert,
}


def render(model: Any) -> str:
    schema = model.model_json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def main() -> None:
    for name, model in CONTRACTS.items():
        (JSON_DIR / name).write_text(render(model), encoding="utf-8")


if __name__ == "__main__":
    main()
