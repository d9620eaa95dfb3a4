"""HTTP authentication: ``Authorization: Bearer <key>`` (or ``X-API-Key``), scopes per view.

A view declares ``required_scopes = {"GET": "accounts:read", "POST": "payments:write"}``; a method
missing from the map is refused. ``request.auth`` is the ``ApiKey``; ``request.auth.client`` is the
idempotency scope.

While the database does not answer (balance_project/outage.py) a recently verified key still
authenticates (accounts/keys.py), and every method but GET, HEAD and OPTIONS answers
``unavailable`` at once: nothing that writes waits on a database that is down.
"""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import SAFE_METHODS, BasePermission

from accounts.keys import api_key_authenticate_call, api_key_require
from balance_project import outage
from balance_project.errors import ApplicationError


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        raw = header[7:].strip() if header.lower().startswith("bearer ") else request.META.get("HTTP_X_API_KEY", "")
        record = api_key_authenticate_call(raw or None)
        if request.method not in SAFE_METHODS and outage.database_down():
            raise outage.database_unavailable()
        return (None, record)

    def authenticate_header(self, request):
        return 'Bearer realm="balance"'


class HasScopes(BasePermission):
    def has_permission(self, request, view):
        if request.auth is None:
            raise ApplicationError("unauthenticated", "an API key is required")
        scopes = getattr(view, "required_scopes", None)
        if scopes is None:
            raise exceptions.PermissionDenied("this view declares no scopes")
        scope = scopes.get(request.method) or (scopes.get("GET") if request.method in ("HEAD", "OPTIONS") else None)
        if scope is None:
            raise ApplicationError("permission_denied", f"{request.method} is not allowed here")
        api_key_require(request.auth, scope)
        return True
