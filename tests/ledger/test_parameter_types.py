"""The declared type of a prepared statement's parameter (ledger/prepared.py): the lookup by exact
class that the hot path takes agrees with ``parameter_type`` for every kind of value."""

from __future__ import annotations

import enum
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from ledger.prepared import parameter_type, parameter_types


class Shard(enum.IntEnum):
    FIRST = 1


class Moment(datetime):
    pass


class Text(str):
    pass


values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([Shard.FIRST, Moment(2026, 12, 2, tzinfo=UTC), Text("x"), 1.5, b"bytes"]),
    st.datetimes(timezones=st.just(UTC)),
    st.text(max_size=5),
)


@given(st.lists(values, max_size=8))
def test_the_exact_class_lookup_agrees_with_parameter_type(params):
    assert parameter_types(params) == tuple(parameter_type(value) for value in params)


def test_a_boolean_is_declared_boolean_not_bigint():
    assert parameter_types([True, 1, None, "s"]) == ("boolean", "bigint", "unknown", "unknown")
