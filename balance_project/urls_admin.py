"""The admin's own listener (balance_project/wsgi_admin.py, ADMIN_BIND): the admin and the probes only.

Nothing of the API is here, so this port can be reachable from the staff network alone while the
API port faces the callers, and the public port need not serve /admin/ (ADMIN_ON_API_PORT=0).
"""

from django.contrib import admin
from django.urls import path

from balance_project import health

urlpatterns = [
    path("admin/", admin.site.urls),
    path("health", health.health, name="health"),
    path("ready", health.ready, name="ready"),
]

handler400 = "balance_project.api.bad_request"
handler403 = "balance_project.api.permission_denied"
handler404 = "balance_project.api.page_not_found"
handler500 = "balance_project.api.server_error"
