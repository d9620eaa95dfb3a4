"""HTTP routes of the reservations app, mounted under /api/v1/."""
from django.urls import path, register_converter

from balance_project.money import INT64_MAX
from reservations import api


class ReservationIdConverter:
    """1 to 2**63-1: a larger number matches no route (404) instead of overflowing a query."""

    regex = "[0-9]{1,19}"

    def to_python(self, value: str) -> int:
        number = int(value)
        if not 1 <= number <= INT64_MAX:
            raise ValueError(value)
        return number

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(ReservationIdConverter, "reservation_id")

urlpatterns: list = [
    path("reservations", api.ReservationsView.as_view(), name="reservations"),
    path("reservations/expiry-rate", api.ReservationExpiryRateView.as_view(), name="reservation-expiry-rate"),
    path("reservations/<reservation_id:reservation_id>", api.ReservationDetailView.as_view(),
         name="reservation-detail"),
    path("reservations/<reservation_id:reservation_id>/commit", api.ReservationCommitView.as_view(),
         name="reservation-commit"),
    path("reservations/<reservation_id:reservation_id>/release", api.ReservationReleaseView.as_view(),
         name="reservation-release"),
]
