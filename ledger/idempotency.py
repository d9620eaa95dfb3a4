"""Idempotency by key, for every channel.

The key, a hash of the request and the answer are stored in the same database transaction as the
effect, so a crash can never leave an effect without its key. Redis keeps recent answers as a fast
path only. An answer that is a business refusal is stored too: the same key gets the same refusal.
"""
from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from balance_project.errors import ApplicationError
from balance_project.shared_cache import shared_cache
from ledger import hot_path
from ledger.models import IdempotencyRecord

log = logging.getLogger(__name__)

_INSERT_RECORD = (f"INSERT INTO {IdempotencyRecord._meta.db_table} "
                  "(scope, key, operation, request_hash, response, is_error, created_at) "
                  "VALUES (%s, %s, %s, %s, %s, %s, %s)")

# Errors that say nothing about the request itself are not remembered: a retry may succeed.
_NOT_REMEMBERED = {"unavailable", "deadline_exceeded", "internal_error", "idempotency_in_progress"}


def idempotency_key_check(key: Any) -> str:
    if key is None or key == "":
        raise ApplicationError("idempotency_key_missing", "an idempotency key is required for every mutating call")
    if not isinstance(key, str) or len(key) > settings.IDEMPOTENCY_KEY_MAX_LENGTH or not key.isprintable() \
            or not key.isascii():
        raise ApplicationError(
            "idempotency_key_invalid",
            f"the idempotency key must be 1 to {settings.IDEMPOTENCY_KEY_MAX_LENGTH} printable ASCII characters",
        )
    return key


def request_hash(operation: str, params: dict[str, Any]) -> str:
    payload = json.dumps({"operation": operation, "params": params}, sort_keys=True, separators=(",", ":"),
                         default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def idempotent(*, scope: str, key: str, operation: str, params: dict[str, Any],
               execute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run ``execute`` once per (scope, key); later calls with the same request get its answer.

    ``execute`` and the record of its answer are one database transaction. The record is inserted
    last, without looking for an earlier one first: the unique (scope, key) constraint refuses a
    second record, which rolls back the whole attempt (effects included), and the call answers with
    the stored record instead. So a repeated key costs a rolled-back attempt, while a new key (the
    common case) costs no lookup; Redis answers most repeats before that anyway.

    A refusal ``execute`` raises rolls back its effects; it is then stored as the answer in a
    transaction of its own (no savepoint round trips on the path that succeeds). The same key with
    a different ``operation`` or ``params`` raises ``idempotency_conflict``.
    """
    key = idempotency_key_check(key)
    digest = request_hash(operation, params)
    cached = _cache_get(scope, key)
    if cached is not None:
        return _replay(cached["hash"], cached["response"], cached["is_error"], digest, key)
    try:
        with transaction.atomic():
            response = execute()
            _record(scope, key, operation, digest, response, is_error=False)
    except IntegrityError as clash:
        # The key is taken (a concurrent call or an earlier one); our attempt rolled back whole.
        hot_path.deferred_discard()
        return _stored_answer(scope, key, digest, clash)
    except ApplicationError as refusal:
        hot_path.deferred_discard()  # the writes of the attempt that was refused
        if refusal.code in _NOT_REMEMBERED:
            raise
        try:
            with transaction.atomic():
                _record(scope, key, operation, digest, refusal.as_dict(), is_error=True)
        except IntegrityError as clash:
            return _stored_answer(scope, key, digest, clash)
        raise
    finally:
        hot_path.deferred_discard()  # whatever else ended the attempt, its writes are gone with it
    return response


def _record(scope: str, key: str, operation: str, digest: str, response: dict[str, Any], *, is_error: bool) -> None:
    # One plain INSERT: this runs on every mutating call, and the ORM's create costs more CPU than
    # the round trip. The constraint on (scope, key) refuses a second record. The hot path's
    # deferred writes (its sealed entries) go in the same round trip, just before it.
    hot_path.deferred_flush(_INSERT_RECORD, [scope, key, operation, digest, json.dumps(response), is_error,
                                             connection.ops.adapt_datetimefield_value(timezone.now())])
    entry = {"hash": digest, "response": response, "is_error": is_error}
    transaction.on_commit(lambda: _cache_put(scope, key, entry))


def _stored_answer(scope: str, key: str, digest: str, clash: IntegrityError) -> dict[str, Any]:
    existing = IdempotencyRecord.objects.filter(scope=scope, key=key).first()
    if existing is None:
        raise clash  # the constraint refused something else than the key
    return _replay(existing.request_hash, existing.response, existing.is_error, digest, key)


def _replay(stored_hash: str, response: dict[str, Any], is_error: bool, digest: str, key: str) -> dict[str, Any]:
    if stored_hash != digest:
        raise ApplicationError("idempotency_conflict",
                               "this idempotency key was already used for a different request",
                               {"idempotency_key": key})
    if is_error:
        raise ApplicationError.from_dict(response)
    return response


def _cache_key(scope: str, key: str) -> str:
    return "idem:v1:" + hashlib.sha256(f"{scope}\x00{key}".encode()).hexdigest()


def _cache_get(scope: str, key: str) -> dict[str, Any] | None:
    try:
        return shared_cache().get(_cache_key(scope, key))
    except Exception:
        log.warning("idempotency cache read failed", exc_info=True)
        return None


def _cache_put(scope: str, key: str, entry: dict[str, Any]) -> None:
    try:
        shared_cache().set(_cache_key(scope, key), entry, settings.IDEMPOTENCY_CACHE_TTL_SECONDS)
    except Exception:
        log.warning("idempotency cache write failed", exc_info=True)
