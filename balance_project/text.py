"""Free text callers write (a release or adjustment reason): one rule for every channel.

At most a given length; no control characters (C0, DEL, C1: NUL cannot even be stored) and no
bidirectional controls, which would make the admin and a CSV show the text in another order than it
was written; stored in Unicode NFC, so one reason has one spelling. ``free_text_schema`` states the
same rule in the OpenAPI schema. (Identifiers are stricter: accounts/identifiers.py.)
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from balance_project.errors import ApplicationError

_REFUSED = "\\x00-\\x1f\\x7f-\\x9f\\u061c\\u200e\\u200f\\u202a-\\u202e\\u2066-\\u2069"
FREE_TEXT_PATTERN = f"^[^{_REFUSED}]*$"
_FREE_TEXT_RE = re.compile(FREE_TEXT_PATTERN)
# The same, with line breaks allowed (a reason typed into the admin's text area).
_MULTILINE_REFUSED = _REFUSED.replace("\\x00-\\x1f", "\\x00-\\x09\\x0b-\\x1f")  # all but LF
_MULTILINE_TEXT_RE = re.compile(f"^[^{_MULTILINE_REFUSED}]*$")


def free_text_check(value: Any, *, field: str, max_length: int, multiline: bool = False) -> str:
    """``value`` in NFC, surrounding spaces dropped, when it is text of at most ``max_length``
    characters with no control or bidi characters (``multiline``: line breaks allowed); else
    ``invalid_request`` naming ``field``."""
    allowed = _MULTILINE_TEXT_RE if multiline else _FREE_TEXT_RE
    if multiline and isinstance(value, str):
        value = value.replace("\r\n", "\n")  # a browser sends a text area's line breaks as CRLF
    if not isinstance(value, str) or len(value) > max_length or not allowed.fullmatch(value):
        raise ApplicationError(
            "invalid_request",
            f"{field} must be text of at most {max_length} characters, with no control or bidi characters",
            {"field": field, "max_length": max_length},
        )
    return unicodedata.normalize("NFC", value).strip()


def free_text_schema(max_length: int) -> dict[str, Any]:
    return {"type": "string", "maxLength": max_length, "pattern": FREE_TEXT_PATTERN}
