"""The rules the OpenAPI schema states are the ones the server enforces (the fuzz in tests/fuzz
checks the same from outside): empty query parameters, strict bodies, flat metadata, free text."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command

from tests.api.conftest import assert_refused, assert_unchanged, books

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def schema(django_db_blocker) -> dict:
    from io import StringIO

    out = StringIO()
    with django_db_blocker.unblock():
        call_command("spectacular", "--format", "openapi-json", stdout=out)
    return json.loads(out.getvalue())


@pytest.mark.parametrize(
    "path, query",
    [
        ("/api/v1/accounts", {"owner_ref": "alice", "kind": ""}),
        ("/api/v1/accounts", {"owner_ref": ""}),
        ("/api/v1/accounts/{id}/statement", {"to": ""}),
        ("/api/v1/accounts/{id}/transactions", {"cursor": ""}),
        ("/api/v1/ledger/trial-balance", {"currency": ""}),
        ("/api/v1/reservations/expiry-rate", {"to": ""}),
    ],
)
def test_an_empty_query_parameter_is_refused_not_read_as_absent(api, opened, path, query):
    response = api.get(path.replace("{id}", str(opened())), query)
    error = assert_refused(response, 400, "invalid_request")
    assert error["details"]["field"] in query


def test_every_request_body_refuses_unknown_fields_and_says_so(schema):
    bodies = [
        operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
        for path in schema["paths"].values()
        for operation in path.values()
        if "requestBody" in operation
    ]
    assert bodies
    components = schema["components"]["schemas"]
    while bodies:
        name = bodies.pop()
        component = components[name]
        if "oneOf" in component:  # one of several shapes: each of them is strict
            bodies += [choice["$ref"].rsplit("/", 1)[1] for choice in component["oneOf"]]
            continue
        assert component.get("additionalProperties") is False, name


def test_string_query_parameters_say_they_may_not_be_empty(schema):
    for path in schema["paths"].values():
        for operation in path.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "query" and parameter["schema"].get("type") == "string":
                    assert parameter["schema"].get("minLength", 0) >= 1 or "enum" in parameter["schema"], parameter


def test_every_operation_documents_what_gunicorn_refuses_before_routing(schema):
    # An oversized request line or headers answer 414 / 431 in the error envelope whatever the
    # operation (tests/ops/test_slow_clients.py); a schema without them failed the fuzz on a cursor
    # longer than its maxLength.
    for path in schema["paths"].values():
        for operation in path.values():
            responses = operation["responses"]
            for status in ("414", "431"):
                assert responses[status]["content"] == responses["400"]["content"], (operation["operationId"], status)


@pytest.mark.parametrize(
    "metadata",
    [
        {"nested": {"a": 1}},
        {"list": [1, 2]},
        {"float": 1.5},
        {"long": "x" * 257},
        {f"k{i}": i for i in range(17)},
        {"big": 2**63},
    ],
)
def test_metadata_is_a_flat_object_of_text_integers_booleans_and_nulls(api, opened, metadata):
    account_id = opened()
    before = books()
    error = assert_refused(
        api.post(f"/api/v1/accounts/{account_id}/deposit", {"amount": 5, "metadata": metadata}), 400, "invalid_request"
    )
    assert error["details"]["field"] == "metadata"
    assert_unchanged(before)


def test_metadata_at_its_limits_is_accepted(api, opened):
    metadata = {"psp": "x" * 256, "attempt": 2**63 - 1, "retry": False, "note": None} | {f"k{i}": i for i in range(12)}
    response = api.post(f"/api/v1/accounts/{opened()}/deposit", {"amount": 5, "metadata": metadata})
    assert response.status_code == 201, response.content
    assert response.json()["transaction"]["metadata"] == metadata
