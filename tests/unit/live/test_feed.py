"""The count feed's frames: what goes in comes out, in order, within the size limit."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.live.feed import FRAME_BYTES, MAX_EVENT_BYTES, frames, unframe

records = st.lists(st.tuples(st.integers(0, 2**62), st.binary(max_size=64),
                             st.binary(max_size=3000)), max_size=200)


@given(records, st.integers(64, 8192))
def test_frames_carry_every_record_in_order_within_the_limit(batch: list[tuple[int, bytes, bytes]],
                                                             limit: int) -> None:
    packed = list(frames(batch, limit))
    assert [r for frame in packed for r in unframe(frame)] == batch
    # A frame is over the limit only when one record alone is.
    assert all(len(frame) <= limit or len(list(unframe(frame))) == 1 for frame in packed)
    assert (not batch) == (not packed)


def test_an_oversized_event_goes_without_its_value_and_the_frame_stays_small() -> None:
    big = (7, b"alice@example.com", b"x" * (MAX_EVENT_BYTES + 1))
    small = (8, b"bob@example.com", b'{"event_id": "e8"}')
    packed = list(frames([big, small]))
    assert all(len(frame) <= FRAME_BYTES for frame in packed)
    assert [r for frame in packed for r in unframe(frame)] == [
        (7, b"alice@example.com", b""), small]


def test_a_frame_of_another_version_or_cut_short_is_refused() -> None:
    frame = next(frames([(1, b"k", b"value")]))
    with pytest.raises(ValueError, match="version"):
        list(unframe(b"\x02" + frame[1:]))
    with pytest.raises(ValueError, match="truncated"):
        list(unframe(frame[:-2]))
