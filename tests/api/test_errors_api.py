"""One error envelope for every failure: credentials, scopes, bodies, methods, URLs, crashes."""

from __future__ import annotations

import io
import json

import pytest
from django.conf import settings

from tests.api.conftest import Api, assert_refused, assert_unchanged, books

pytestmark = pytest.mark.django_db
LIMIT = settings.DATA_UPLOAD_MAX_MEMORY_SIZE


# --- Credentials and scopes -----------------------------------------------------------------------


def test_no_key_is_unauthenticated_with_challenge(db, opened):
    account_id = opened()
    before = books()
    response = Api(None).post(f"/api/v1/accounts/{account_id}/deposit", {"amount": 5})
    assert_refused(response, 401, "unauthenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert_unchanged(before)


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer bal_nope_nope"},
        {"Authorization": "Basic abc"},
        {"X-API-Key": "bal_wrong"},
        {"Authorization": "Bearer "},
    ],
)
def test_wrong_key_is_unauthenticated(db, opened, headers):
    account_id = opened()
    before = books()
    api = Api(None)
    assert_refused(
        api.post(f"/api/v1/accounts/{account_id}/deposit", {"amount": 5}, headers=headers), 401, "unauthenticated"
    )
    assert_refused(api.get(f"/api/v1/accounts/{account_id}", headers=headers), 401, "unauthenticated")
    assert_unchanged(before)


def test_x_api_key_header_is_accepted(make_api, opened):
    account_id = opened()
    api = make_api()
    header_only = Api(None)
    response = header_only.get(f"/api/v1/accounts/{account_id}", headers={"X-API-Key": api.raw_key})
    assert response.status_code == 200


def test_deactivated_key_is_unauthenticated(make_api, opened):
    from accounts.models import ApiKey

    api = make_api(client="retired")
    ApiKey.objects.filter(client="retired").update(is_active=False)
    assert_refused(api.get(f"/api/v1/accounts/{opened()}"), 401, "unauthenticated")


@pytest.mark.parametrize(
    "scopes, method, path, body",
    [
        (["accounts:read"], "post", "/api/v1/accounts/{id}/deposit", {"amount": 5}),
        (
            ["accounts:read", "payments:write"],
            "post",
            "/api/v1/transfers",
            {"from_account_id": 1, "to_account_id": 2, "amount": 5},
        ),
        (["payments:write"], "get", "/api/v1/accounts/{id}/balance", None),
        (["payments:write"], "post", "/api/v1/accounts/{id}/freeze", None),
        (["accounts:read"], "post", "/api/v1/accounts", {"owner_ref": "x", "currency": "EUR"}),
    ],
)
def test_key_without_the_scope_is_permission_denied(make_api, opened, scopes, method, path, body):
    account_id = opened(funded=100)
    api = make_api(scopes=scopes, client="narrow")
    before = books()
    path = path.format(id=account_id)
    response = api.post(path, body) if method == "post" else api.get(path)
    error = assert_refused(response, 403, "permission_denied")
    assert error["details"]["client"] == "narrow"
    assert_unchanged(before)


# --- Idempotency-Key header -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "idem, code",
    [
        (None, "idempotency_key_missing"),
        ("", "idempotency_key_missing"),
        ("k" * 256, "idempotency_key_invalid"),
        ("tab\tinside", "idempotency_key_invalid"),
        (" leading-space", "idempotency_key_invalid"),
        ("trailing-space ", "idempotency_key_invalid"),
        (" ", "idempotency_key_invalid"),
        ("caf\u00e9", "idempotency_key_invalid"),
    ],
)
@pytest.mark.parametrize(
    "path, body",
    [
        ("/api/v1/accounts/{id}/deposit", {"amount": 5}),
        ("/api/v1/accounts/{id}/withdraw", {"amount": 5}),
        ("/api/v1/transfers", {"from_account_id": "{id}", "to_account_id": "{other}", "amount": 5}),
        ("/api/v1/accounts", {"owner_ref": "new-owner", "currency": "EUR"}),
        ("/api/v1/accounts/{id}/freeze", None),
        ("/api/v1/accounts/{id}/unfreeze", None),
        ("/api/v1/accounts/{id}/close", None),
    ],
)
def test_every_mutating_call_needs_a_valid_idempotency_key(api, opened, idem, code, path, body):
    account_id, other = opened(funded=100), opened()
    body = (
        {
            k: (int(v.format(id=account_id, other=other)) if isinstance(v, str) and "{" in v else v)
            for k, v in body.items()
        }
        if body
        else None
    )
    before = books()
    assert_refused(api.post(path.format(id=account_id), body, idem=idem), 400, code)
    assert_unchanged(before)


def test_longest_idempotency_key_is_accepted(api, opened):
    account_id = opened()
    assert api.post(f"/api/v1/accounts/{account_id}/deposit", {"amount": 5}, idem="k" * 255).status_code == 201


def test_reused_key_with_another_body_is_idempotency_conflict(api, opened):
    account_id = opened()
    assert api.post(f"/api/v1/accounts/{account_id}/deposit", {"amount": 500}, idem="same").status_code == 201
    before = books()
    for body in ({"amount": 501}, {"amount": 500, "metadata": {"x": 1}}):
        error = assert_refused(
            api.post(f"/api/v1/accounts/{account_id}/deposit", body, idem="same"), 409, "idempotency_conflict"
        )
        assert error["details"] == {"idempotency_key": "same"}
    other = opened()
    assert_refused(
        api.post(f"/api/v1/accounts/{other}/deposit", {"amount": 500}, idem="same"), 409, "idempotency_conflict"
    )
    assert_refused(
        api.post(f"/api/v1/accounts/{account_id}/withdraw", {"amount": 500}, idem="same"), 409, "idempotency_conflict"
    )
    assert books()["entries"] == before["entries"]


def test_idempotency_keys_are_scoped_by_client(make_api, opened):
    account_id = opened()
    first, second = make_api(client="cashier-a"), make_api(client="cashier-b")
    assert first.post(f"/api/v1/accounts/{account_id}/deposit", {"amount": 5}, idem="shared").status_code == 201
    assert second.post(f"/api/v1/accounts/{account_id}/deposit", {"amount": 7}, idem="shared").status_code == 201
    assert first.get(f"/api/v1/accounts/{account_id}/balance").json()["balance"] == 12


# --- Bodies ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        '{"amount": 10',
        "amount=10",
        '{"amount": NaN}',
        '{"amount": Infinity}',
        "{'amount': 10}",
        '{"amount": 10}}',
        "[" * 20000 + "]" * 20000,
        b'{"amount": "\xff\xfe"}',
    ],
)
def test_malformed_json_is_refused(api, opened, raw):
    account_id = opened()
    before = books()
    assert_refused(api.post(f"/api/v1/accounts/{account_id}/deposit", raw=raw), 400, "malformed_json")
    assert_unchanged(before)


@pytest.mark.parametrize("raw", ["[]", '"amount"', "10", "null"])
def test_json_that_is_not_an_object_is_invalid_request(api, opened, raw):
    account_id = opened()
    before = books()
    assert_refused(api.post(f"/api/v1/accounts/{account_id}/deposit", raw=raw), 400, "invalid_request")
    assert_unchanged(before)


def _padded_deposit(size: int) -> bytes:
    """A valid deposit body, padded with JSON whitespace to ``size`` bytes."""
    body = b'{"amount": 5}'
    return body + b" " * (size - len(body))


def test_body_over_64_kib_is_request_too_large(api, opened):
    account_id = opened()
    before = books()
    error = assert_refused(
        api.post(f"/api/v1/accounts/{account_id}/deposit", raw=_padded_deposit(LIMIT + 1)), 413, "request_too_large"
    )
    assert error["details"] == {"max_bytes": LIMIT}
    assert_unchanged(before)


def test_body_of_exactly_64_kib_is_accepted(api, opened):
    account_id = opened()
    response = api.post(f"/api/v1/accounts/{account_id}/deposit", raw=_padded_deposit(LIMIT))
    assert response.status_code == 201, response.content


def test_declared_length_over_limit_is_refused_unread(api, opened):
    account_id = opened()
    before = books()
    response = api.post(f"/api/v1/accounts/{account_id}/deposit", raw=b'{"amount": 5}', CONTENT_LENGTH=str(LIMIT * 4))
    assert_refused(response, 413, "request_too_large")
    assert_unchanged(before)


def test_oversized_body_without_content_length_is_refused(api, opened):
    """A chunked upload (no Content-Length; the server marks its input terminated) is counted as read."""
    account_id = opened()
    before = books()
    body = _padded_deposit(LIMIT * 2)
    response = api.post(
        f"/api/v1/accounts/{account_id}/deposit",
        raw=body,
        CONTENT_LENGTH="",
        **{"wsgi.input": io.BytesIO(body), "wsgi.input_terminated": True},
    )
    assert_refused(response, 413, "request_too_large")
    assert_unchanged(before)


def test_small_body_without_content_length_is_read(api, opened):
    account_id = opened()
    body = b'{"amount": 9}'
    response = api.post(
        f"/api/v1/accounts/{account_id}/deposit",
        raw=body,
        CONTENT_LENGTH="",
        **{"wsgi.input": io.BytesIO(body), "wsgi.input_terminated": True},
    )
    assert response.status_code == 201, response.content
    assert response.json()["account"]["balance"] == 9


def test_content_length_shorter_than_body_reads_only_the_declared_bytes(api, opened):
    account_id = opened()
    before = books()
    response = api.post(f"/api/v1/accounts/{account_id}/deposit", raw=_padded_deposit(LIMIT * 2), CONTENT_LENGTH="8")
    assert_refused(response, 400, "malformed_json")
    assert_unchanged(before)


def test_form_body_is_unsupported_media_type(api, opened):
    account_id = opened()
    before = books()
    response = api.client.post(
        f"/api/v1/accounts/{account_id}/deposit",
        "amount=5",
        content_type="application/x-www-form-urlencoded",
        headers={"Authorization": f"Bearer {api.raw_key}", "Idempotency-Key": "f1"},
    )
    assert_refused(response, 415, "unsupported_media_type")
    assert_unchanged(before)


# --- Methods, URLs and crashes --------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, path",
    [
        ("get", "/api/v1/accounts/1/deposit"),
        ("delete", "/api/v1/accounts/1"),
        ("put", "/api/v1/transfers"),
        ("patch", "/api/v1/accounts"),
    ],
)
@pytest.mark.parametrize("with_key", [True, False])
def test_wrong_method_is_405(api, method, path, with_key):
    headers = {"Authorization": f"Bearer {api.raw_key}"} if with_key else {}
    response = getattr(api.client, method)(path, headers=headers)
    assert_refused(response, 405, "method_not_allowed")
    assert response["Allow"]


@pytest.mark.parametrize("path", ["/api/v1/nope", "/api/v2/accounts", "/nothing-here", "/api/v1/accounts/1/x"])
def test_unknown_url_is_not_found_json(api, path):
    assert_refused(api.get(path), 404, "not_found")
    assert_refused(api.post(path, {"amount": 1}), 404, "not_found")


@pytest.mark.urls("tests.api.boom_urls")
def test_unexpected_exception_is_internal_error_without_details(api, caplog):
    response = api.get("/boom/unexpected")
    error = assert_refused(response, 500, "internal_error")
    assert error == {"code": "internal_error", "message": "internal error", "details": {}}
    assert b"secret" not in response.content and b"Traceback" not in response.content
    assert "secret internals" in caplog.text


@pytest.mark.urls("tests.api.boom_urls")
def test_crash_outside_drf_is_internal_error_json(api):
    response = api.get("/boom/plain")
    assert_refused(response, 500, "internal_error")
    assert b"secret" not in response.content


@pytest.mark.urls("tests.api.boom_urls")
def test_database_unavailable_is_retryable_503(api):
    response = api.post("/boom/database", {"amount": 1})
    error = assert_refused(response, 503, "unavailable")
    assert error["details"] == {"retryable": True}
    assert response["Retry-After"] == "1"
    assert b"10.0.0.5" not in response.content


def test_error_bodies_are_compact_sorted_json(api):
    response = api.get("/api/v1/accounts/987654321")
    assert response["Content-Type"] == "application/json"
    assert response.content == json.dumps(response.json(), sort_keys=True, separators=(",", ":")).encode()


def test_django_level_errors_use_the_same_canonical_json(api):
    response = api.get("/api/v1/nope")
    assert response.content == json.dumps(response.json(), sort_keys=True, separators=(",", ":")).encode()


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ('{"amount": 5, "amount": 5000}', "given twice"),  # the last one would have won
        ('{"amount": 5, "metadata": {"note": "a\\u0000b"}}', "NUL"),
        ('{"amount": 5, "metadata": {"note": "\\ud800"}}', "surrogate"),
        ('{"amount": 5, "metadata": {"\\udfff": 1}}', "surrogate"),
        ('{"amount": 5, "metadata": {"n": NaN}}', "NaN"),
        ('{"amount": 5, "metadata": ' + '{"a": ' * 40 + "1" + "}" * 40 + "}", "nested deeper"),
    ],
)
def test_json_that_cannot_be_stored_as_given_is_malformed(api, opened, raw, why):
    """Duplicate keys, NaN, NUL, half a surrogate pair and deep nesting: a 400 naming the reason,
    never a 500 from the database (PostgreSQL refuses NUL and lone surrogates in jsonb) nor a
    deposit of the wrong amount, and nothing changes."""
    account_id = opened()
    before = books()
    error = assert_refused(api.post(f"/api/v1/accounts/{account_id}/deposit", raw=raw), 400, "malformed_json")
    assert why in error["details"]["reason"]
    assert_unchanged(before)


@pytest.mark.parametrize("raw", ["[]", "null", '"x"'])
def test_a_call_that_reads_no_body_still_refuses_one_that_is_not_an_object(api, opened, raw):
    account_id = opened()
    before = books()
    assert_refused(api.post(f"/api/v1/accounts/{account_id}/freeze", raw=raw), 400, "invalid_request")
    assert_unchanged(before)
