"""HTTP adapters for the finance reports (scope ``ledger:read``). Reads only: no idempotency key."""

from __future__ import annotations

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.response import Response
from rest_framework.views import APIView

from balance_project.api import query_parameters_check
from balance_project.moments import MOMENT_SCHEMA
from balance_project.money import CURRENCY_PATTERN
from ledger.chain import format_timestamp
from ledger.reports import ledger_export_csv_lines, report_moment_parse, trial_balance

_ERROR = inline_serializer(
    "LedgerErrorEnvelope",
    {
        "error": inline_serializer(
            "LedgerError",
            {
                "code": serializers.CharField(),
                "message": serializers.CharField(),
                "details": serializers.DictField(),
            },
        )
    },
)
_KIND_TOTALS = inline_serializer(
    "TrialBalanceKindTotals",
    {
        "accounts": serializers.IntegerField(),
        "entries": serializers.IntegerField(),
        "total": serializers.IntegerField(),
    },
)
_TRIAL_BALANCE = inline_serializer(
    "TrialBalance",
    {
        "at": serializers.CharField(allow_null=True, help_text="ISO UTC, or null for now"),
        "currency": serializers.CharField(allow_null=True),
        "balanced": serializers.BooleanField(help_text="every currency sums to zero and agrees with the accounts"),
        "currencies": inline_serializer(
            "TrialBalanceCurrency",
            {
                "currency": serializers.CharField(),
                "kinds": serializers.DictField(child=_KIND_TOTALS, help_text="by account kind: user, seat, system"),
                "system_accounts": serializers.DictField(child=serializers.IntegerField(), help_text="by system code"),
                "total": serializers.IntegerField(help_text="sum of all entries: zero when the books balance"),
                "entry_count": serializers.IntegerField(),
                "accounts_total": serializers.IntegerField(allow_null=True, help_text="sum of account rows (now only)"),
                "held_total": serializers.IntegerField(allow_null=True),
                "balanced": serializers.BooleanField(),
                "matches_accounts": serializers.BooleanField(),
                "mismatched_account_count": serializers.IntegerField(),
                "mismatched_accounts": serializers.ListField(
                    child=inline_serializer(
                        "TrialBalanceMismatch",
                        {
                            "account_id": serializers.IntegerField(),
                            "ledger_balance": serializers.IntegerField(),
                            "recorded_balance": serializers.IntegerField(),
                        },
                    )
                ),
            },
            many=True,
        ),
    },
)
_CURRENCY = OpenApiParameter(
    "currency",
    {"type": "string", "pattern": CURRENCY_PATTERN},
    description="Only this currency (three upper-case letters).",
)


class _JsonAlways(BaseContentNegotiation):
    """Answer in JSON whatever ``Accept`` says, so an error to a CSV request is still the JSON envelope
    (the CSV itself is a streaming response, which skips renderers)."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class _LedgerView(APIView):
    """JSON errors whatever Accept says; an empty query parameter refused like in every other view."""

    content_negotiation_class = _JsonAlways

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        query_parameters_check(request)


class TrialBalanceView(_LedgerView):
    required_scopes = {"GET": "ledger:read"}

    @extend_schema(
        operation_id="ledger_trial_balance",
        tags=["ledger"],
        summary="Trial balance per currency: totals per account kind and house account, and whether the "
        "books sum to zero and agree with the accounts' recorded balances",
        parameters=[
            OpenApiParameter(
                "at",
                MOMENT_SCHEMA,
                description="As of this moment (exclusive): YYYY-MM-DD (midnight UTC) "
                "or an ISO 8601 datetime. Default: now.",
            ),
            _CURRENCY,
        ],
        responses={200: _TRIAL_BALANCE, 400: _ERROR, 401: _ERROR, 403: _ERROR},
    )
    def get(self, request):
        at = request.query_params.get("at")
        moment = report_moment_parse(at, field="at") if at not in (None, "") else None
        currency = request.query_params.get("currency") or None
        return Response(trial_balance(at=moment, currency=currency))


class LedgerExportView(_LedgerView):
    required_scopes = {"GET": "ledger:read"}

    @extend_schema(
        operation_id="ledger_export",
        tags=["ledger"],
        summary="Every entry of the transactions created in [from, to), as CSV (integers of minor units)",
        parameters=[
            OpenApiParameter(
                "from", MOMENT_SCHEMA, required=True, description="Start, inclusive: YYYY-MM-DD or ISO 8601."
            ),
            OpenApiParameter("to", MOMENT_SCHEMA, required=True, description="End, exclusive: YYYY-MM-DD or ISO 8601."),
            _CURRENCY,
        ],
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="CSV with a header row"),
            400: _ERROR,
            401: _ERROR,
            403: _ERROR,
        },
    )
    def get(self, request):
        start = report_moment_parse(request.query_params.get("from"), field="from")
        end = report_moment_parse(request.query_params.get("to"), field="to")
        currency = request.query_params.get("currency") or None
        lines = ledger_export_csv_lines(start=start, end=end, currency=currency)
        response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
        name = f"ledger_{format_timestamp(start)}_{format_timestamp(end)}{'_' + currency if currency else ''}.csv"
        response["Content-Disposition"] = f'attachment; filename="{name.replace(":", "")}"'
        response["Cache-Control"] = "no-store"
        return response
