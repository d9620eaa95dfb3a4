from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("accounts.urls")),
    path("api/v1/", include("ledger.urls")),
    path("api/v1/", include("reservations.urls")),
    path("api/v1/", include("tables.urls")),
    path("", include("django_prometheus.urls")),
]
