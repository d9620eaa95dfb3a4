"""HTTP glue shared by every app's views: one error envelope, one bounded body, one JSON renderer.

Every failure, wherever it is raised (a service, DRF, Django's URL resolver, the database driver),
leaves as ``{"error": {"code", "message", "details"}}`` with the status ``ERROR_TABLE`` gives its code.
"""

from __future__ import annotations

import io
import json
import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, JsonResponse, UnreadablePostError
from django.utils.encoding import force_str
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import exceptions, parsers, renderers, serializers
from rest_framework.response import Response
from rest_framework.views import APIView, set_rollback

from balance_project.errors import ApplicationError
from ledger.idempotency import IDEMPOTENCY_KEY_PATTERN

log = logging.getLogger(__name__)

_READ_CHUNK = 64 * 1024


# --- Errors ---------------------------------------------------------------------------------------


def error_of(exc: BaseException) -> ApplicationError:
    """The ``ApplicationError`` that reports ``exc`` to a caller. Unknown exceptions are logged here
    and become a bare ``internal_error``: their text never reaches the caller."""
    if isinstance(exc, ApplicationError):
        return exc
    if isinstance(exc, RequestDataTooBig):
        return request_too_large()
    if isinstance(exc, (OperationalError, InterfaceError)):
        log.warning("database unavailable: %s", exc)
        return ApplicationError(
            "unavailable", "the database is unavailable; retry with the same idempotency key", {"retryable": True}
        )
    if isinstance(exc, exceptions.ValidationError):
        return ApplicationError("invalid_request", "the request is not valid", {"fields": _plain(exc.detail)})
    if isinstance(exc, exceptions.ParseError):
        return ApplicationError(
            "malformed_json", "the request body is not valid JSON", {"reason": force_str(exc.detail)}
        )
    if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
        return ApplicationError("unauthenticated", force_str(exc.detail))
    if isinstance(exc, (exceptions.PermissionDenied, DjangoPermissionDenied)):
        return ApplicationError("permission_denied", "this key may not make this call")
    if isinstance(exc, (exceptions.NotFound, Http404)):
        return ApplicationError("not_found", "no such resource")
    if isinstance(exc, exceptions.Throttled):
        wait = int(getattr(exc, "wait", None) or 1)
        return ApplicationError(
            "rate_limited",
            f"this key is over API_RATE_LIMIT_PER_SECOND mutating calls; retry in {wait} s with the same key",
            {"retry_after": wait},
        )
    if isinstance(exc, exceptions.MethodNotAllowed):
        return ApplicationError("method_not_allowed", force_str(exc.detail))
    if isinstance(exc, exceptions.NotAcceptable):
        return ApplicationError("not_acceptable", "this endpoint answers in application/json only")
    if isinstance(exc, exceptions.UnsupportedMediaType):
        return ApplicationError("unsupported_media_type", "send the body as application/json")
    if isinstance(exc, exceptions.APIException) and exc.status_code < 500:
        return ApplicationError("invalid_request", force_str(exc.detail))
    log.error("unexpected error: %r", exc, exc_info=(type(exc), exc, exc.__traceback__))
    return ApplicationError("internal_error", "internal error")


def request_too_large() -> ApplicationError:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return ApplicationError("request_too_large", f"the request body is over {limit} bytes", {"max_bytes": limit})


def error_headers(error: ApplicationError) -> dict[str, str]:
    headers = {}
    if error.code == "unauthenticated":
        headers["WWW-Authenticate"] = 'Bearer realm="balance"'
    if error.spec.retryable:
        headers["Retry-After"] = str(error.details.get("retry_after", 1))
    return headers


def exception_handler(exc, context):
    """DRF's exception handler (settings.REST_FRAMEWORK): every exception becomes the envelope."""
    error = error_of(exc)
    set_rollback()
    headers = error_headers(error)
    view = context.get("view")
    if error.code == "method_not_allowed" and view is not None:
        headers["Allow"] = ", ".join(view.allowed_methods)
    return Response({"error": error.as_dict()}, status=error.spec.http_status, headers=headers)


def _plain(detail: Any) -> Any:
    """DRF's ErrorDetail tree as plain JSON (strings, lists, dicts)."""
    if isinstance(detail, dict):
        return {str(key): _plain(value) for key, value in detail.items()}
    if isinstance(detail, list):
        return [_plain(value) for value in detail]
    return force_str(detail)


def _error_response(exc: BaseException) -> JsonResponse:
    error = error_of(exc)
    return JsonResponse(
        {"error": error.as_dict()},
        status=error.spec.http_status,
        headers=error_headers(error),
        json_dumps_params={"sort_keys": True, "separators": (",", ":")},
    )


# Django's own error views (handler400/403/404/500 in the root URLconf): for what fails before or
# outside a DRF view, such as an unknown URL.
def bad_request(request, exception=None):
    if isinstance(exception, RequestDataTooBig):
        return _error_response(exception)
    return _error_response(ApplicationError("invalid_request", "bad request"))


def permission_denied(request, exception=None):
    return _error_response(ApplicationError("permission_denied", "forbidden"))


def page_not_found(request, exception=None):
    return _error_response(ApplicationError("not_found", "no such resource", {"path": request.path[:200]}))


def server_error(request):
    return _error_response(ApplicationError("internal_error", "internal error"))


# --- Request and response -------------------------------------------------------------------------


def request_body_read(request: HttpRequest) -> bytes:
    """The body, at most ``DATA_UPLOAD_MAX_MEMORY_SIZE`` bytes, or ``request_too_large``.

    Read before authentication and parsing, so an oversized body is refused first and whatever the
    parser. Django refuses a declared ``Content-Length`` over the limit unread, and reads at most one
    byte past the limit whatever the header says. With no ``Content-Length`` WSGI gives an empty
    body, unless the server marks its input as terminated (a chunked upload through gunicorn): that
    input is read here, also at most one byte past the limit, instead of being silently dropped.
    """
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    meta = request.META
    if not _declared_length(meta) and meta.get("wsgi.input_terminated") and not request._read_started:  # type: ignore[attr-defined]
        body = _read_at_most(meta["wsgi.input"], limit + 1)
        if len(body) > limit:
            raise request_too_large()
        meta["CONTENT_LENGTH"] = str(len(body))
        request._stream = io.BytesIO(body)
    try:
        body = request.body
    except RequestDataTooBig:
        raise request_too_large() from None
    except UnreadablePostError:  # The client hung up, or sent too slowly (balance_project/gunicorn_worker.py).
        raise ApplicationError("invalid_request", "the body did not arrive in full", {"field": "body"}) from None
    except ValueError:  # A Content-Length that is not a number.
        raise ApplicationError("invalid_request", "the Content-Length header is not valid") from None
    declared = _declared_length(meta)
    if len(body) < declared:
        # The client hung up mid-body: what arrived may still parse (a shorter amount), so it is refused.
        raise ApplicationError(
            "invalid_request",
            "the body is shorter than its Content-Length",
            {"field": "body", "content_length": declared, "received": len(body)},
        )
    return body


def _declared_length(meta) -> int:
    try:
        return max(int(meta.get("CONTENT_LENGTH") or 0), 0)
    except (TypeError, ValueError):
        return 0


def _read_at_most(stream, size: int) -> bytes:
    chunks, total = [], 0
    while total < size:
        chunk = stream.read(min(_READ_CHUNK, size - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


# How deep a request body may nest (objects and arrays); the API's deepest body is 2.
MAX_JSON_DEPTH = 32


class JSONParser(parsers.JSONParser):
    """DRF's parser, stricter: a key given twice, NaN or Infinity, a string holding NUL or half a
    surrogate pair (neither can be stored), and nesting deeper than ``MAX_JSON_DEPTH`` are malformed
    JSON, and a body that is not one JSON object is an invalid request (400 both), never a 500
    further down."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            data = json.load(
                io.TextIOWrapper(stream, encoding=encoding, errors="strict"),
                object_pairs_hook=_object_without_duplicates,
                parse_constant=_constant_refused,
            )
        except RecursionError:
            raise exceptions.ParseError("JSON parse error - nested too deeply") from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}") from None
        if not isinstance(data, dict):
            raise ApplicationError("invalid_request", "the request body must be a JSON object", {"field": "body"})
        _text_check(data, depth=1)
        return data


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data = dict(pairs)
    if len(data) != len(pairs):
        seen: set[str] = set()
        twice = next(key for key, _ in pairs if key in seen or seen.add(key))  # type: ignore[func-returns-value]
        raise ValueError(f"the key {twice!r} is given twice")
    return data


def _constant_refused(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _text_check(value: Any, *, depth: int) -> None:
    if depth > MAX_JSON_DEPTH:
        raise exceptions.ParseError(f"JSON parse error - nested deeper than {MAX_JSON_DEPTH}")
    if isinstance(value, str):
        if "\x00" in value:
            raise exceptions.ParseError("JSON parse error - text may not contain NUL (\\u0000)")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise exceptions.ParseError("JSON parse error - text may not contain half a surrogate pair") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _text_check(key, depth=depth)
            _text_check(item, depth=depth + 1)
    elif isinstance(value, list):
        for item in value:
            _text_check(item, depth=depth + 1)


class CanonicalJSONRenderer(renderers.JSONRenderer):
    """Compact JSON with sorted keys, so a replayed answer is byte-for-byte the first one, whether it
    comes from memory, Redis or a PostgreSQL jsonb column (which does not keep key order)."""

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        text = json.dumps(
            data,
            cls=self.encoder_class,
            ensure_ascii=self.ensure_ascii,
            allow_nan=False,
            sort_keys=True,
            separators=(",", ":"),
        )
        return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").encode()


# Base of the v1 views: a wrong method is 405 before any credential check, the body is bounded
# before anything parses it, and answers are canonical JSON. (A comment, not a docstring: the
# OpenAPI generator would show a docstring as every subclass's description.)
class ApiView(APIView):
    # No OPTIONS: the API serves no browser preflight, so OPTIONS is 405 like any method a view lacks.
    http_method_names = ["get", "post", "head"]
    parser_classes = [JSONParser]
    renderer_classes = [CanonicalJSONRenderer]

    def initial(self, request, *args, **kwargs):
        method = request.method.lower()
        if method not in self.http_method_names or not hasattr(self, method):
            raise exceptions.MethodNotAllowed(request.method)
        body = request_body_read(request._request)
        if body and not request.content_type:
            raise ApplicationError("unsupported_media_type", "send the body as application/json")
        super().initial(request, *args, **kwargs)
        query_parameters_check(request)
        if body:
            # Parsed here, once the caller is known, so that a body is checked even by the calls that
            # read nothing from it (freeze, close): a malformed one is refused, never ignored.
            request.data  # noqa: B018


def query_parameters_check(request) -> None:
    """A query parameter given empty is a value, and not a valid one: never read as "absent" (which
    would mean "all" or "the default")."""
    empty = sorted(name for name, values in request._request.GET.lists() if "" in values)
    if empty:
        raise ApplicationError("invalid_request", f"query parameter {empty[0][:64]} is empty", {"field": empty[0][:64]})


def client_of(request) -> str:
    """The caller's name: the idempotency scope of its keys."""
    return request.auth.client


def idempotency_key_of(request) -> str:
    """The ``Idempotency-Key`` header, checked (missing, empty, oversized or non-ASCII is a 400)."""
    from ledger.idempotency import idempotency_key_check

    return idempotency_key_check(request.headers.get("Idempotency-Key"))


# --- OpenAPI pieces every view can share ----------------------------------------------------------


class BodyRequiredSchema(AutoSchema):
    """A view whose body is required (the generator cannot tell from a oneOf of variants)."""

    def _get_request_body(self, direction="request"):
        body = super()._get_request_body(direction)
        if body is not None:
            body["required"] = True
        return body


class ErrorBodySerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable machine-readable code, e.g. insufficient_funds.")
    message = serializers.CharField(help_text="For humans; may change.")
    details = serializers.DictField(help_text="Code-specific facts, e.g. the field at fault.")


class ErrorResponseSerializer(serializers.Serializer):
    error = ErrorBodySerializer()


IDEMPOTENCY_KEY_PARAMETER = OpenApiParameter(
    "Idempotency-Key",
    {"type": "string", "minLength": 1, "maxLength": 255, "pattern": IDEMPOTENCY_KEY_PATTERN},
    OpenApiParameter.HEADER,
    required=True,
    description="1 to 255 printable ASCII characters, no space at either end, unique per intended "
    "operation. A retry with the same key and body gets the first answer again; with another body, 409 "
    "idempotency_conflict.",
)


def error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    """``{status: the error envelope}`` for ``extend_schema(responses=...)``."""
    return {status: OpenApiResponse(ErrorResponseSerializer, description="See error.code.") for status in statuses}


READ_ERRORS = error_responses(400, 401, 403, 404, 503)
WRITE_ERRORS = error_responses(400, 401, 403, 404, 409, 413, 415, 422, 429, 503)


def validated(serializer_class, data) -> dict:
    """Run an input serializer; its errors become 400 invalid_request through the handler."""
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def render(serializer_class, result: dict, status: int = 200):
    from rest_framework.response import Response

    return Response(serializer_class(result).data, status=status)
