"""The OpenAPI schema states every constraint the server enforces (tests/fuzz checks it does).

Three things drf-spectacular cannot say by itself, added by ``postprocess`` (SPECTACULAR_SETTINGS):
request bodies refuse fields they do not name (``StrictSerializer``); a query parameter given
empty is refused like any other bad value (``ApiView.initial``), never read as "absent"; and any
request whose line or headers exceed gunicorn's limits is refused before it reaches a view, 414 or
431 in the error envelope (balance_project/gunicorn_worker.py), whatever the operation.
"""

from __future__ import annotations

from typing import Any

# Components that describe request bodies: the input serializers, by their naming convention.
_TOO_LONG = {
    "414": "The request line is longer than the server takes (a query string too long): invalid_request.",
    "431": "The request's headers are larger than the server takes: invalid_request.",
}
_REQUEST_COMPONENT_SUFFIXES = ("InputRequest", "Input")


def digits_up_to(limit: int, *, zero: bool = False) -> str:
    """A regular expression for the canonical decimal text of 1..``limit`` (0..``limit`` with
    ``zero``): no sign, no leading zero. So the schema of an amount given as text says exactly what
    ``parse_amount`` takes, including its maximum."""
    text = str(limit)
    width = len(text)
    branches = [f"[1-9][0-9]{{0,{width - 2}}}"] if width > 1 else []
    for i, digit in enumerate(text):
        low = 1 if i == 0 else 0
        top = int(digit) - 1
        if top >= low:
            rest = width - i - 1
            branches.append(text[:i] + f"[{low}-{top}]" + (f"[0-9]{{{rest}}}" if rest else ""))
    branches.append(text)
    if zero:
        branches.insert(0, "0")
    return "^(" + "|".join(branches) + ")$"


def postprocess(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if name.endswith(_REQUEST_COMPONENT_SUFFIXES) and component.get("type") == "object":
            component.setdefault("additionalProperties", False)
    for path in result.get("paths", {}).values():
        for operation in path.values():
            responses = operation.get("responses", {})
            if "400" in responses:  # the same error envelope
                for status, description in _TOO_LONG.items():
                    responses.setdefault(status, {**responses["400"], "description": description})
            for parameter in operation.get("parameters", []):
                schema = parameter.get("schema", {})
                if parameter.get("in") == "query" and schema.get("type") == "string" and "enum" not in schema:
                    schema.setdefault("minLength", 1)
    return result
