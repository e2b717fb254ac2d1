"""`smtp-auth run` finds the broker script of its source checkout (it moved with the house
once and `make run` broke while every other test passed)."""

from __future__ import annotations

from pipeline.cli import stack
from tests.helpers import KAFKA_SCRIPT


def test_the_stack_finds_the_checkouts_kafka_script():
    assert stack.KAFKA_SCRIPT == KAFKA_SCRIPT and stack.KAFKA_SCRIPT.is_file()
