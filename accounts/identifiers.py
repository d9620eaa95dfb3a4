"""Identifiers callers give us: the player's id (``owner_ref`` on an account, ``user_id`` at a table,
the same id, since a wallet is found by it), the poker service's table and hand ids.

One rule for all of them: ASCII letters, digits and ``. _ : @ -``, starting with a letter or a digit,
taken exactly as given. So an id has one spelling (no surrounding spaces, no Unicode look-alikes,
normalisation forms, control, bidi or zero-width characters), shows the same in the admin, a CSV cell
(never a formula) and a log line, and the OpenAPI schema can state the rule exactly
(``identifier_schema``).
"""

from __future__ import annotations

import re
from typing import Any

from balance_project.errors import ApplicationError

IDENTIFIER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]*$"
IDENTIFIER_RE = re.compile(IDENTIFIER_PATTERN)
IDENTIFIER_CHARS = "ASCII letters, digits and . _ : @ - (first a letter or digit)"
MAX_USER_ID = 128
MAX_TABLE_ID = 64
MAX_HAND_ID = 128


def identifier_check(value: Any, *, field: str, max_length: int) -> str:
    """``value`` when it is an identifier of 1 to ``max_length`` characters; else ``invalid_request``
    naming ``field`` (the refusal never repeats the value, which may be anything)."""
    if not isinstance(value, str) or len(value) > max_length or not IDENTIFIER_RE.fullmatch(value):
        raise ApplicationError(
            "invalid_request",
            f"{field} must be 1 to {max_length} characters: {IDENTIFIER_CHARS}",
            {"field": field, "max_length": max_length},
        )
    return value


def user_id_check(value: Any, *, field: str = "user_id") -> str:
    return identifier_check(value, field=field, max_length=MAX_USER_ID)


def identifier_schema(max_length: int, description: str = "") -> dict[str, Any]:
    """The OpenAPI schema of an identifier field or parameter: exactly what ``identifier_check`` takes."""
    schema: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": max_length, "pattern": IDENTIFIER_PATTERN}
    if description:
        schema["description"] = f"{description} 1 to {max_length} characters: {IDENTIFIER_CHARS}."
    return schema
