"""RFC 3339 stamps: the fast path (fromisoformat as the stamp is) and the lenient one
(fraction cut to 6 digits, "Z" as an offset) give the same instant or the same refusal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.ingest.syslog import _lenient, parse_rfc3339

ZONE = timezone(timedelta(hours=-5))
two = st.integers(0, 99).map(lambda n: f"{n:02d}")
stamps = st.builds(
    lambda y, mo, d, h, mi, s, frac, off: f"{y:04d}-{mo}-{d}T{h}:{mi}:{s}{frac}{off}",
    st.integers(0, 9999), two, two, two, two, two,
    st.just("") | st.text("0123456789", min_size=1, max_size=9).map(lambda f: "." + f),
    st.sampled_from(["", "Z", "z"]) | st.builds(lambda sign, hh, sep, mm: sign + hh + sep + mm,
                                                st.sampled_from("+-"), two,
                                                st.sampled_from(["", ":"]), two))


def _outcome(parse: object, stamp: str) -> tuple[str, object]:
    try:
        return "ok", parse(stamp)  # type: ignore[operator]
    except (ValueError, OverflowError) as exc:
        return "refused", type(exc)


def _slow(stamp: str) -> datetime:
    value = _lenient(stamp)
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZONE)
    return value.astimezone(UTC)


@settings(max_examples=2000, deadline=None)
@given(stamps)
def test_fast_path_equals_the_lenient_one(stamp: str) -> None:
    assert _outcome(lambda s: parse_rfc3339(s, ZONE), stamp) == _outcome(_slow, stamp)


def test_what_shippers_send() -> None:
    assert parse_rfc3339("2026-12-03T03:12:39.569Z", ZONE) == datetime(
        2026, 12, 3, 3, 12, 39, 569000, UTC)
    assert parse_rfc3339("2026-12-03T03:12:39.123456789z", ZONE) == datetime(
        2026, 12, 3, 3, 12, 39, 123456, UTC)
    assert parse_rfc3339("2026-12-03T03:12:39", ZONE) == datetime(2026, 12, 3, 8, 12, 39,
                                                                   tzinfo=UTC)
