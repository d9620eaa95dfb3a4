from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.permissions import AllowAny

from balance_project import health, metrics_view

# The contract and its docs are public: they hold no data and help a caller get a key right.
_PUBLIC = {"authentication_classes": [], "permission_classes": [AllowAny]}

urlpatterns = [
    path("api/v1/", include("accounts.urls")),
    path("api/v1/", include("ledger.urls")),
    path("api/v1/", include("reservations.urls")),
    path("api/v1/", include("tables.urls")),
    path("api/schema/", SpectacularAPIView.as_view(**_PUBLIC), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema", **_PUBLIC), name="docs"),
    path("health", health.health, name="health"),
    path("ready", health.ready, name="ready"),
    path("metrics", metrics_view.metrics, name="prometheus-django-metrics"),
]
# In production the admin is not on the public API port: it has its own listener
# (balance_project/urls_admin.py, ADMIN_BIND) and this port answers /admin/ with 404.
if settings.ADMIN_ON_API_PORT:
    urlpatterns.insert(0, path("admin/", admin.site.urls))

# Errors outside DRF views (unknown URL, a crash in middleware) still answer with the JSON envelope.
handler400 = "balance_project.api.bad_request"
handler403 = "balance_project.api.permission_denied"
handler404 = "balance_project.api.page_not_found"
handler500 = "balance_project.api.server_error"
