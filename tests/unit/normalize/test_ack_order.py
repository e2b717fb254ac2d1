"""Commits stay behind every held line: whatever order the releases come in, the offset
safe to commit never passes a line still held, and reaches the end once all are free."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from pipeline.normalize.acks import AckOrder


def test_a_held_head_holds_back_everything_after_it():
    acks = AckOrder()
    acks.fed(0, [10, 11, 12, 13])
    acks.released(0, [11, 13])
    assert acks.safe(0) is None  # 10 is still held (a one-offset head gap): nothing to commit
    acks.released(0, [10])
    assert acks.safe(0) == 12  # 12 is still held
    acks.fed(0, [15, 16])  # a gap in the offsets, as Kafka's may have
    acks.released(0, [12, 16, 15])
    assert acks.safe(0) == 17
    assert acks.held() == 0


def test_partitions_are_independent_and_forgotten_on_revoke():
    acks = AckOrder()
    acks.fed(0, [5])
    acks.fed(1, [7, 8])
    acks.released(1, [8])
    acks.released(0, [5])
    assert (acks.safe(0), acks.safe(1)) == (6, None)
    acks.forget(1)
    assert acks.held() == 0 and acks.safe(1) is None
    acks.fed(1, [9])  # its next owner's replay starts afresh
    acks.released(1, [9])
    assert acks.safe(1) == 10


@given(st.integers(min_value=1, max_value=60), st.integers(1, 5), st.randoms(use_true_random=False))
def test_any_release_order_never_commits_past_a_held_line(n, fetches, rng):
    acks = AckOrder()
    offsets = sorted(random.Random(rng.random()).sample(range(1000), n))  # gaps, as Kafka has
    cuts = sorted(rng.sample(range(1, n), min(fetches - 1, n - 1))) if n > 1 else []
    batches = [offsets[a:b] for a, b in zip([0, *cuts], [*cuts, n], strict=True)]
    fed: list[int] = []
    released: set[int] = set()
    commits: list[int] = []
    for batch in batches:
        acks.fed(0, batch)
        fed += batch
        free = [o for o in fed if o not in released]
        rng.shuffle(free)
        now = free[:rng.randint(0, len(free))]  # some of what is held goes, in any order
        acks.released(0, now)
        released.update(now)
        held = [o for o in fed if o not in released]
        # The oldest held line (it is read again after a restart), or past the last fed.
        want = min(held) if held else fed[-1] + 1
        assert acks.safe(0) == (want if want > offsets[0] else None)
        commits.append(want)
    rest = [o for o in fed if o not in released]
    acks.released(0, rest)
    assert acks.safe(0) == offsets[-1] + 1  # every line free: everything fed is committed
    assert commits == sorted(commits)
