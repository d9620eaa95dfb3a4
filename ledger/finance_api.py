"""HTTP adapter of the daily finance reports (scope ``finance:read``; ledger/liability_reports.py).
Reads only: no idempotency key. The report streams as CSV or JSONL."""

from __future__ import annotations

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.views import APIView

from ledger.api import _ERROR, _JsonAlways
from ledger.liability_reports import REPORT_FORMATS, REPORTS, report_stream

_CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson; charset=utf-8"}


class FinanceReportView(APIView):
    required_scopes = {"GET": "finance:read"}
    content_negotiation_class = _JsonAlways

    @extend_schema(
        operation_id="finance_report",
        tags=["ledger"],
        summary="A daily finance report of one UTC day, streamed as CSV or JSONL (integers of minor units, each "
        "with a decimal twin; times ISO-8601 UTC)",
        parameters=[
            OpenApiParameter(
                "report",
                str,
                OpenApiParameter.PATH,
                enum=sorted(REPORTS),
                description="player-liability: per currency, wallets + seat chips (+ holds) at the day's start "
                "and end with the movements between; player-activity: every player wallet (N.J.A.C. 13:69O-1.9); "
                "protection-audit: limit changes and exclusions started that day.",
            ),
            OpenApiParameter(
                "date",
                {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"},
                required=True,
                description="The UTC day, YYYY-MM-DD (a real day from 1970 to 9000).",
            ),
            OpenApiParameter("format", str, enum=list(REPORT_FORMATS), description="csv (default) or jsonl."),
            OpenApiParameter(
                "currency",
                {"type": "string", "pattern": "^[A-Z]{3}$", "minLength": 3, "maxLength": 3},
                description="Only this currency (three upper-case letters).",
            ),
        ],
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="CSV with a header row"),
            (200, "application/x-ndjson"): OpenApiResponse(OpenApiTypes.STR, description="One JSON object a line"),
            400: _ERROR,
            401: _ERROR,
            403: _ERROR,
            404: _ERROR,
        },
    )
    def get(self, request, report: str):
        fmt = request.query_params.get("format") or "csv"
        lines = report_stream(
            report=report,
            day=request.query_params.get("date"),
            fmt=fmt,
            currency=request.query_params.get("currency") or None,
        )
        response = StreamingHttpResponse(lines, content_type=_CONTENT_TYPES[fmt])
        response["Content-Disposition"] = f'attachment; filename="{report}_{request.query_params["date"]}.{fmt}"'
        response["Cache-Control"] = "no-store"
        return response
