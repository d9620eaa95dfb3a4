"""What a caller may attach to a transaction as ``metadata``: a flat JSON object, the same shape as
gRPC's ``map<string, string>``, so it can be shown in the admin, a statement or a CSV cell as it is.

At most ``MAX_ENTRIES`` entries; each value a string of at most ``MAX_TEXT`` characters, an integer
within int64, a boolean or null. No floats (money is never a float, and a float in metadata would
invite one), no nesting. ``METADATA_SCHEMA`` states the same rule in the OpenAPI schema.
"""

from __future__ import annotations

from typing import Any

from balance_project.errors import ApplicationError
from balance_project.money import INT64_MAX

MAX_ENTRIES = 16
MAX_TEXT = 256

METADATA_SCHEMA = {
    "type": "object",
    "maxProperties": MAX_ENTRIES,
    "additionalProperties": {
        "nullable": True,
        "anyOf": [
            {"type": "string", "maxLength": MAX_TEXT},
            {"type": "integer", "format": "int64", "minimum": -INT64_MAX - 1, "maximum": INT64_MAX},
            {"type": "boolean"},
        ],
    },
    "description": f"A flat JSON object of at most {MAX_ENTRIES} entries; each value a string of at most "
    f"{MAX_TEXT} characters, an integer, a boolean or null (no floats, no nesting).",
}


def metadata_check(metadata: Any, *, field: str = "metadata") -> dict[str, Any]:
    """``metadata`` (None is ``{}``) when it follows the rule above; else ``invalid_request``."""
    if metadata is None:
        return {}
    if not isinstance(metadata, dict) or len(metadata) > MAX_ENTRIES:
        raise _refused(field, f"must be a JSON object of at most {MAX_ENTRIES} entries")
    for key, value in metadata.items():
        if not isinstance(key, str):
            raise _refused(field, "keys must be text")
        if isinstance(value, str):
            if len(value) > MAX_TEXT:
                raise _refused(field, f"text values are at most {MAX_TEXT} characters", key)
        elif isinstance(value, int) and not isinstance(value, bool):
            if not -INT64_MAX - 1 <= value <= INT64_MAX:
                raise _refused(field, "integer values must fit in 64 bits", key)
        elif value is not None and not isinstance(value, bool):
            raise _refused(field, "values are text, integers, booleans or null: no floats, no nesting", key)
    return metadata


def _refused(field: str, why: str, key: str | None = None) -> ApplicationError:
    details: dict[str, Any] = {"field": field}
    if key is not None:
        details["key"] = key[:64]
    return ApplicationError("invalid_request", f"{field}: {why}", details)
