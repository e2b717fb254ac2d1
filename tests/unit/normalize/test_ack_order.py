"""Acks leave in offset order: nothing at or beyond a held offset is acked, whatever order
the releases come in (faust would otherwise commit past a held line)."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from pipeline.normalize.acks import AckOrder


def test_a_held_head_holds_back_everything_after_it():
    acks: AckOrder[str] = AckOrder()
    for offset in (10, 11, 12, 13):
        acks.fed(0, offset)
    assert acks.released(0, 11, "b") == []  # 10 is still held (a one-offset head gap)
    assert acks.released(0, 13, "d") == []
    assert acks.released(0, 10, "a") == ["a", "b"]  # 12 is still held
    assert acks.released(0, 12, "c") == ["c", "d"]
    assert acks.waiting() == 0


def test_partitions_are_independent_and_forgotten_on_revoke():
    acks: AckOrder[str] = AckOrder()
    acks.fed(0, 5)
    acks.fed(1, 7)
    acks.fed(1, 8)
    assert acks.released(1, 8, "p1-8") == []
    assert acks.released(0, 5, "p0-5") == ["p0-5"]
    acks.forget(1)
    assert acks.waiting() == 0
    acks.fed(1, 9)
    assert acks.released(1, 9, "p1-9") == ["p1-9"]


@given(st.integers(min_value=1, max_value=60), st.randoms(use_true_random=False))
def test_any_release_order_acks_each_once_in_order_and_never_past_a_held_one(n, rng):
    acks: AckOrder[int] = AckOrder()
    offsets = sorted(random.Random(rng.random()).sample(range(1000), n))  # gaps, as Kafka has
    for offset in offsets:
        acks.fed(3, offset)
    order = offsets[:]
    rng.shuffle(order)
    acked: list[int] = []
    released: set[int] = set()
    for offset in order:
        released.add(offset)
        acked += acks.released(3, offset, offset)
        held = [o for o in offsets if o not in released]
        assert all(a < min(held) for a in acked) if held else True
        assert acked == sorted(acked)
    assert acked == offsets
