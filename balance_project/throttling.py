"""Rate limits per API key on mutating HTTP calls (REST_FRAMEWORK's throttle, settings.API_RATE_LIMIT).

A fixed one-second window per key, counted in the cache (Redis in production, so every gunicorn
process shares the count): the call past the limit is ``rate_limited`` (429 with Retry-After), the
same key's reads are not counted. When the cache cannot count (Redis down), calls go through: a
rate limit protects the service from a runaway caller and must not become an outage of its own.
"""

from __future__ import annotations

import logging
import math
import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.permissions import SAFE_METHODS
from rest_framework.throttling import BaseThrottle

log = logging.getLogger(__name__)


class MutationRateThrottle(BaseThrottle):
    def __init__(self) -> None:
        self._wait = 0.0

    def allow_request(self, request, view) -> bool:
        limit = settings.API_RATE_LIMIT_PER_SECOND
        if limit <= 0 or request.method in SAFE_METHODS or request.auth is None:
            return True
        now = time.time()
        window = int(now)
        counter = f"ratelimit:{request.auth.prefix}:{window}"
        try:
            cache.add(counter, 0, timeout=2)
            count = cache.incr(counter)
        except Exception as exc:  # the cache is a fast path: never an outage
            log.warning("rate limit not counted (cache unavailable): %s", exc)
            return True
        if count is None or count <= limit:
            return True
        self._wait = window + 1 - now
        return False

    def wait(self) -> float:
        return math.ceil(self._wait) if self._wait > 0 else 1
