"""The timestamp every checksum and MAC signs renders exactly as it always did (strftime's form)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from ledger.chain import _TIMESTAMP_FORMAT, format_timestamp

offsets = st.integers(min_value=-23 * 60, max_value=23 * 60).map(lambda minutes: timezone(timedelta(minutes=minutes)))
moments = st.datetimes(
    min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=st.one_of(st.just(UTC), offsets)
)


@given(moments)
def test_a_timestamp_renders_as_strftime_renders_it_in_utc(moment):
    assert format_timestamp(moment) == moment.astimezone(UTC).strftime(_TIMESTAMP_FORMAT)


def test_known_renderings():
    assert format_timestamp(datetime(2026, 12, 2, 12, 55, 17, 927332, tzinfo=UTC)) == "2026-12-02T12:55:17.927332Z"
    assert format_timestamp(datetime(2026, 12, 2, 13, 0, tzinfo=timezone(timedelta(hours=1)))) == (
        "2026-12-02T12:00:00.000000Z"
    )
    assert format_timestamp(datetime(999, 1, 1, tzinfo=UTC)) == "999-01-01T00:00:00.000000Z"
