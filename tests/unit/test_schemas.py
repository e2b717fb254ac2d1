"""The published JSON Schemas stay in step with the models."""

from __future__ import annotations

import pytest

from schemas.export import CONTRACTS, JSON_DIR, render


@pytest.mark.parametrize("name", sorted(CONTRACTS))
def test_json_schema_file_matches_model(name):
    assert (JSON_DIR / name).read_text(encoding="utf-8") == render(CONTRACTS[name]), (
        "run `python -m schemas.export` and commit the result")

