"""HTTP routes of the reservations app, mounted under /api/v1/."""

from django.urls import path

import balance_project.converters  # noqa: F401  (registers id64)
from reservations import api

urlpatterns: list = [
    path("reservations", api.ReservationsView.as_view(), name="reservations"),
    path("reservations/expiry-rate", api.ReservationExpiryRateView.as_view(), name="reservation-expiry-rate"),
    path("reservations/<id64:reservation_id>", api.ReservationDetailView.as_view(), name="reservation-detail"),
    path("reservations/<id64:reservation_id>/commit", api.ReservationCommitView.as_view(), name="reservation-commit"),
    path(
        "reservations/<id64:reservation_id>/release", api.ReservationReleaseView.as_view(), name="reservation-release"
    ),
]
