"""A URLconf for error-path tests only: views that fail the way production code can."""

from django.db import OperationalError
from django.urls import include, path

from balance_project.api import ApiView


class UnexpectedView(ApiView):
    authentication_classes: list = []
    permission_classes: list = []

    def get(self, request):
        raise RuntimeError("secret internals: /etc/passwd")


class DatabaseDownView(ApiView):
    authentication_classes: list = []
    permission_classes: list = []

    def post(self, request):
        raise OperationalError("connection to server at 10.0.0.5 failed")


def plain_django_crash(request):
    raise RuntimeError("secret internals outside DRF")


urlpatterns = [
    path("boom/unexpected", UnexpectedView.as_view()),
    path("boom/database", DatabaseDownView.as_view()),
    path("boom/plain", plain_django_crash),
    path("", include("balance_project.urls")),
]

handler404 = "balance_project.api.page_not_found"
handler500 = "balance_project.api.server_error"
