"""Idempotency by key, for every channel.

The key, a hash of the request and the answer are stored in the same database transaction as the
effect, in that transaction's journal record (ledger/journal.py: under its MAC, unique by scope and
key), so a crash can never leave an effect without its key and no insider can edit an answer unseen.
Redis keeps recent answers as a fast path only. An answer that is a business refusal is stored too:
the same key gets the same refusal.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any, NoReturn

from django.conf import settings
from django.db import IntegrityError, transaction

from accounts.cache import cache_writes_after_commit
from balance_project import redis_breaker
from balance_project.deadlines import deadline_exceeded, time_left
from balance_project.errors import ApplicationError
from balance_project.shared_cache import redis_pool, redis_round_trip, shared_cache
from ledger.journal import journal_answer, record_verifies
from ledger.models import JournalRecord
from ledger.work import Work

log = logging.getLogger(__name__)

# Errors that say nothing about the request itself are not remembered: a retry may succeed.
_NOT_REMEMBERED = {"unavailable", "deadline_exceeded", "internal_error", "idempotency_in_progress"}


# Printable ASCII, no space at either end (an HTTP server trims those, so the key would not be the
# one the caller sent). The OpenAPI schema states this pattern; the length is checked alongside.
IDEMPOTENCY_KEY_PATTERN = r"^[!-~]([ -~]*[!-~])?$"
_IDEMPOTENCY_KEY_RE = re.compile(IDEMPOTENCY_KEY_PATTERN)


def idempotency_key_check(key: Any) -> str:
    if key is None or key == "":
        raise ApplicationError("idempotency_key_missing", "an idempotency key is required for every mutating call")
    if (
        not isinstance(key, str)
        or len(key) > settings.IDEMPOTENCY_KEY_MAX_LENGTH
        or not _IDEMPOTENCY_KEY_RE.fullmatch(key)
    ):
        raise ApplicationError(
            "idempotency_key_invalid",
            f"the idempotency key must be 1 to {settings.IDEMPOTENCY_KEY_MAX_LENGTH} printable ASCII characters, "
            "with no space at either end",
        )
    return key


def request_hash(operation: str, params: dict[str, Any]) -> str:
    payload = json.dumps({"operation": operation, "params": params}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def idempotent(
    *,
    scope: str,
    key: str,
    operation: str,
    params: dict[str, Any],
    execute: Callable[[Work], dict[str, Any]],
    orm: bool = False,
) -> dict[str, Any]:
    """Run ``execute(work)`` once per (scope, key); later calls with the same request get its answer.

    ``execute`` locks, reads and decides on the ``Work`` it is given and queues its writes; the
    journal record of its answer goes with the COMMIT, in the same round trip. No lookup comes
    first: the journal's unique (scope, key) index refuses a second record, which rolls back the
    whole attempt (effects included), and the call answers with the stored record instead. So a
    repeated key costs a rolled-back attempt, while a new key (the common case) costs no lookup;
    Redis answers most repeats before that anyway.

    A refusal ``execute`` raises before any write reached the database is stored in the same
    transaction (its queued writes dropped); one raised later rolls the attempt back and is stored
    in a transaction of its own. The same key with a different ``operation`` or ``params`` raises
    ``idempotency_conflict``.

    ``orm``: ``execute`` also writes through the ORM (the calls that open things), so the attempt
    runs in ``transaction.atomic`` and the work is a savepoint inside it.
    """
    key = idempotency_key_check(key)
    digest = request_hash(operation, params)
    cached = _cache_get(scope, key)
    if cached is not None:
        return _replay(cached["hash"], cached["response"], cached["is_error"], digest, key)
    record = (scope, key, operation, digest)
    try:
        with transaction.atomic() if orm else nullcontext(), Work() as work:
            try:
                response = execute(work)
            except ApplicationError as refusal:
                if refusal.code in _NOT_REMEMBERED or work.wrote or orm:
                    raise
                work.discard()
                _record(work, record, refusal.as_dict(), is_error=True)
                work.commit()
                refusal.remembered = True
                raise
            _record(work, record, response, is_error=False)
            work.commit()
            if orm and (left := time_left()) is not None and left <= 0:
                # The work was a savepoint: the transaction.atomic above commits it on the way out,
                # unless the call's time is up, in which case it rolls back instead.
                raise deadline_exceeded("before the commit")
            return response
    except IntegrityError as clash:
        # The key is taken (a concurrent call or an earlier one); our attempt rolled back whole.
        return _stored_answer(scope, key, digest, clash)
    except ApplicationError as refusal:
        if refusal.code in _NOT_REMEMBERED or refusal.remembered:
            raise
        try:
            with Work() as work:
                _record(work, record, refusal.as_dict(), is_error=True)
                work.commit()
        except IntegrityError as clash:
            return _stored_answer(scope, key, digest, clash)
        raise


def _record(work: Work, record: tuple[str, str, str, str], response: dict[str, Any], *, is_error: bool) -> None:
    # The journal record the COMMIT carries holds the key and the answer under its MAC; its unique
    # index on (scope, key) refuses a second record of the key.
    scope, key, operation, digest = record
    journal_answer(
        work.journal,
        scope=scope,
        key=key,
        operation=operation,
        request_hash=digest,
        response=response,
        is_error=is_error,
    )
    answer = work.journal.response_text  # encoded once, for the journal and Redis
    entry = f'{{"hash":"{digest}","is_error":{"true" if is_error else "false"},"response":{answer}}}'
    # With the balances the call changed, in one Redis round trip after the commit.
    cache_writes_after_commit(work).values.append(
        (_cache_key(scope, key), entry, settings.IDEMPOTENCY_CACHE_TTL_SECONDS)
    )


def _stored_answer(scope: str, key: str, digest: str, clash: IntegrityError) -> dict[str, Any]:
    """The first answer to the key, from its journal record, whose MAC a database insider cannot
    forge: a record that does not verify answers ``internal_error`` (never a forged answer)."""
    journaled = JournalRecord.objects.filter(scope=scope, key=key).exclude(key="").values().first()
    if journaled is None:
        raise clash  # the constraint refused something else than the key
    if not record_verifies(journaled):
        _integrity_refusal(scope, key, "the journal record of this key does not verify")
    return _replay(
        journaled["request_hash"], json.loads(journaled["response"]), bool(journaled["is_error"]), digest, key
    )


def _integrity_refusal(scope: str, key: str, why: str) -> NoReturn:
    log.critical("idempotency key %r (scope %r): %s; ledger tampering?", key, scope, why)
    raise ApplicationError("internal_error", "the stored answer of this idempotency key cannot be trusted")


def _replay(stored_hash: str, response: dict[str, Any], is_error: bool, digest: str, key: str) -> dict[str, Any]:
    if stored_hash != digest:
        raise ApplicationError(
            "idempotency_conflict",
            "this idempotency key was already used for a different request",
            {"idempotency_key": key},
        )
    if is_error:
        raise ApplicationError.from_dict(response)
    return response


def _cache_key(scope: str, key: str) -> str:
    # v2: the entry is JSON text (v1 entries were django-redis pickles; they are never read).
    return "idem:v2:" + hashlib.sha256(f"{scope}\x00{key}".encode()).hexdigest()


def _cache_get(scope: str, key: str) -> dict[str, Any] | None:
    try:
        pool = redis_pool()
        if pool is None:
            raw = shared_cache().get(_cache_key(scope, key))
        elif redis_breaker.is_open():
            return None  # Redis is being skipped: the database's unique key answers
        else:
            (raw,) = redis_round_trip(pool, [("GET", shared_cache().make_key(_cache_key(scope, key)))])
        if raw is None:
            return None
        cached = json.loads(raw)
        if not isinstance(cached, dict) or not {"hash", "response", "is_error"} <= cached.keys():
            raise ValueError("not an idempotency entry")
        return cached
    except Exception as exc:  # a fast path only: the journal record answers instead
        log.warning("idempotency cache read failed: %r", exc)
        return None
