"""One cache backend per process, shared by every thread and every call.

Django keeps cache backends in context-local storage, and the gRPC server runs each call in a fresh
``contextvars.Context``: every call built a new backend and a new Redis client (about a tenth of the
sidecar's CPU). The django-redis and local-memory backends are thread-safe, so the service uses
this one backend instead. It is rebuilt when settings.CACHES changes (tests do that).
"""

from __future__ import annotations

import threading

from django.core.cache import BaseCache, caches
from django.core.signals import setting_changed

_lock = threading.Lock()
_backend: BaseCache | None = None


def shared_cache() -> BaseCache:
    global _backend
    backend = _backend
    if backend is None:
        with _lock:
            if _backend is None:
                _backend = caches.create_connection("default")
            backend = _backend
    return backend


def _forget_on_caches_change(*, setting: str, **kwargs) -> None:
    global _backend
    if setting == "CACHES":
        with _lock:
            _backend = None


setting_changed.connect(_forget_on_caches_change)
