"""canonical_json is the text every journal record's MAC and every seal's MAC signs. Rendered by
orjson since session 11, it must stay byte for byte the standard library's rendering that earlier
records were signed with, or a ledger written before the change would stop verifying."""

from __future__ import annotations

import enum
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.journal import _canonical_json_stdlib, canonical_json

# Every code point but the lone surrogates (which no UTF-8 text, and so no database, can hold).
text = st.text(st.characters(blacklist_categories=("Cs",)))
leaf = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | text
signed_values = st.recursive(
    leaf, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4), max_leaves=30
)


@settings(max_examples=3000, deadline=None)
@given(signed_values)
def test_the_text_is_the_standard_librarys_for_every_value_the_ledger_signs(value):
    assert canonical_json(value) == _canonical_json_stdlib(value)


def test_escapes_and_non_ascii_are_rendered_as_before():
    value = {"é": '\x00\x01\x1f\x7f\u2028\u2029\ufeff"\\/ 漢😀', "b": [True, None, -(2**63)], "a": {}}
    assert canonical_json(value) == _canonical_json_stdlib(value)
    assert canonical_json(value).startswith('{"a":{},"b":[true,null,-9223372036854775808],"é":"\\u0000')


class Kind(enum.IntEnum):
    WALLET = 1


class Ref(str):
    pass


def test_what_orjson_does_not_render_the_same_way_goes_the_old_way():
    # int subclasses, str subclasses and ints past 64 bits: orjson is told to refuse them, so
    # they are rendered by the standard library exactly as they were signed before.
    for value in ({"k": Kind.WALLET}, [Ref("x")], {"n": 2**64}, {"n": -(2**63) - 1}):
        assert canonical_json(value) == json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
