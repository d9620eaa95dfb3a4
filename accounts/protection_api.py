"""HTTP API v1 of player protection: read a player's limits and exclusion, set a limit, start a
self-exclusion or time-out. Thin adapters over accounts/protection_services.py; every rule and
every refusal is the service's."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema, extend_schema_field
from rest_framework import serializers

from accounts import protection_services as services
from accounts.identifiers import MAX_USER_ID
from accounts.models import PlayerLimit, SelfExclusion
from accounts.serializers import AmountField, CurrencyField, IdentifierField, Int64Field, StrictSerializer
from balance_project.api import (
    IDEMPOTENCY_KEY_PARAMETER,
    READ_ERRORS,
    WRITE_ERRORS,
    ApiView,
    BodyRequiredSchema,
    client_of,
    idempotency_key_of,
    render,
    validated,
)
from balance_project.money import amount_max

_PERIODS = ["24h", "7d", "30d"]


@extend_schema_field(
    {
        "type": "integer",
        "format": "int64",
        "minimum": 1,
        "maximum": amount_max(),
        "nullable": True,
        "description": "Minor units, a JSON integer from 1 (or canonical digits in a string). null removes the "
        "limit, after the cooling-off. A value at or below the limit in force applies at once; a higher one after "
        "the cooling-off (LIMIT_INCREASE_COOLING_OFF_SECONDS, 24 h by default).",
    }
)
class LimitValueField(AmountField):
    """Like an amount, but an explicit null is meaningful here (a removal); it must still be given."""

    def validate_empty_values(self, data):
        if data is serializers.empty:
            return super().validate_empty_values(data)
        if data is None:
            return (True, None)
        return (False, data)


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": 3653})
class DaysField(serializers.Field):
    """A JSON integer number of days (never a string, a float or a bool); the service checks its bounds."""

    default_error_messages = {"invalid": "must be a whole number of days"}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return data

    def to_representation(self, value):
        return value


def _choice_field(name: str, choices: list[str]) -> type[serializers.ChoiceField]:
    """A choice field stated as a pattern: an enum would collide with the other components' ``kind``
    enums in the generator's enum naming."""
    schema = {"type": "string", "pattern": f"^({'|'.join(choices)})$", "description": f"One of: {', '.join(choices)}."}
    return extend_schema_field(schema)(type(name, (serializers.ChoiceField,), {}))


LimitKindField = _choice_field("LimitKindField", PlayerLimit.Kind.values)
ExclusionKindField = _choice_field("ExclusionKindField", SelfExclusion.Kind.values)


class ProtectionGetInputSerializer(serializers.Serializer):
    owner_ref = IdentifierField(max_length=MAX_USER_ID)
    currency = CurrencyField(required=False, help_text="Only this currency's limits; all when left out.")


class LimitSetInputSerializer(StrictSerializer):
    owner_ref = IdentifierField(max_length=MAX_USER_ID)
    currency = CurrencyField()
    kind = LimitKindField(
        choices=PlayerLimit.Kind.values,
        help_text="deposit: deposits over the period; loss: buy-ins minus cash-outs over the period; "
        "buy_in: the largest single buy-in or reservation at a table (no period).",
    )
    period = serializers.ChoiceField(
        choices=_PERIODS, required=False, help_text="The rolling window of a deposit or loss limit; none for buy_in."
    )
    value = LimitValueField()


# The request bodies as the schema states them: which period goes with which kind, and each kind of
# exclusion's bounds, are one rule of the service (accounts/protection_services.py) written as
# mutually exclusive variants (oneOf), since OpenAPI 3.0 cannot tie one field to another.
class WindowLimitSetInputSerializer(StrictSerializer):
    owner_ref = IdentifierField(max_length=MAX_USER_ID)
    currency = CurrencyField()
    kind = _choice_field("WindowLimitKindField", ["deposit", "loss"])(
        choices=["deposit", "loss"], help_text="deposit: deposits over the period; loss: buy-ins minus cash-outs."
    )
    period = _choice_field("LimitPeriodField", _PERIODS)(choices=_PERIODS, help_text="The rolling window.")
    value = LimitValueField()


class BuyInLimitSetInputSerializer(StrictSerializer):
    owner_ref = IdentifierField(max_length=MAX_USER_ID)
    currency = CurrencyField()
    kind = _choice_field("BuyInLimitKindField", ["buy_in"])(
        choices=["buy_in"], help_text="The largest single buy-in or reservation at a table."
    )
    value = LimitValueField()


def _days_field(name: str, bounds: tuple[int, int]) -> type[serializers.Field]:
    return extend_schema_field({"type": "integer", "minimum": bounds[0], "maximum": bounds[1]})(
        type(name, (DaysField,), {})
    )


class TimeOutStartInputSerializer(StrictSerializer):
    owner_ref = IdentifierField(max_length=MAX_USER_ID)
    kind = _choice_field("TimeOutKindField", ["time_out"])(choices=["time_out"])
    days = _days_field("TimeOutDaysField", settings.TIME_OUT_DAYS)(help_text="settings.TIME_OUT_DAYS")


class SelfExclusionStartInputSerializer(StrictSerializer):
    owner_ref = IdentifierField(max_length=MAX_USER_ID)
    kind = _choice_field("SelfExclusionKindField", ["self_exclusion"])(choices=["self_exclusion"])
    days = _days_field("SelfExclusionDaysField", settings.SELF_EXCLUSION_DAYS)(
        help_text="settings.SELF_EXCLUSION_DAYS: at least six months"
    )


_LIMIT_SET_SCHEMA = PolymorphicProxySerializer(
    component_name="LimitSetInput",
    serializers=[WindowLimitSetInputSerializer, BuyInLimitSetInputSerializer],
    resource_type_field_name=None,
    many=False,
)
_EXCLUSION_START_SCHEMA = PolymorphicProxySerializer(
    component_name="ExclusionStartInput",
    serializers=[TimeOutStartInputSerializer, SelfExclusionStartInputSerializer],
    resource_type_field_name=None,
    many=False,
)


class ExclusionStartInputSerializer(StrictSerializer):
    owner_ref = IdentifierField(max_length=MAX_USER_ID)
    kind = ExclusionKindField(
        choices=SelfExclusion.Kind.values,
        help_text="time_out: TIME_OUT_DAYS (1 to 42 days by default); self_exclusion: SELF_EXCLUSION_DAYS "
        "(183 days, six months, to 10 years by default). Starts at once; nothing shortens or lifts it.",
    )
    days = DaysField()


class LimitOutputSerializer(serializers.Serializer):
    owner_ref = serializers.CharField()
    currency = serializers.CharField()
    kind = LimitKindField(choices=PlayerLimit.Kind.values)
    period = serializers.CharField(help_text="24h, 7d, 30d, or empty for a buy-in limit.")
    value = Int64Field(allow_null=True, help_text="In force now.")
    pending_value = Int64Field(allow_null=True, help_text="The higher value waiting for its cooling-off.")
    pending_removal = serializers.BooleanField()
    pending_effective_at = serializers.CharField(allow_null=True, help_text="ISO-8601 UTC.")


class LimitEnvelopeOutputSerializer(serializers.Serializer):
    limit = LimitOutputSerializer()


class ExclusionOutputSerializer(serializers.Serializer):
    owner_ref = serializers.CharField()
    kind = ExclusionKindField(choices=SelfExclusion.Kind.values)
    starts_at = serializers.CharField(help_text="ISO-8601 UTC.")
    ends_at = serializers.CharField(help_text="ISO-8601 UTC.")


class ExclusionStartOutputSerializer(serializers.Serializer):
    exclusion = ExclusionOutputSerializer()
    excluded_until = serializers.CharField(help_text="When the longest exclusion in force ends, ISO-8601 UTC.")


class ProtectionOutputSerializer(serializers.Serializer):
    owner_ref = serializers.CharField()
    limits = LimitOutputSerializer(many=True)
    exclusion = ExclusionOutputSerializer(allow_null=True, help_text="The exclusion in force, if any.")


class ProtectionView(ApiView):
    """A player's limits and the exclusion in force."""

    required_scopes = {"GET": "accounts:read"}

    @extend_schema(
        operation_id="protection_get",
        summary="A player's limits (with pending increases) and the exclusion in force",
        parameters=[ProtectionGetInputSerializer],
        responses={200: ProtectionOutputSerializer, **READ_ERRORS},
    )
    def get(self, request):
        params = validated(ProtectionGetInputSerializer, request.query_params)
        result = services.player_protection_get(owner_ref=params["owner_ref"], currency=params.get("currency"))
        return render(ProtectionOutputSerializer, result)


class LimitSetView(ApiView):
    """Set, lower, raise or remove one limit."""

    required_scopes = {"POST": "protection:write"}
    schema = BodyRequiredSchema()

    @extend_schema(
        operation_id="protection_limit_set",
        summary="Set one limit of a player in one currency (decreases at once, increases after the cooling-off)",
        request=_LIMIT_SET_SCHEMA,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={200: LimitEnvelopeOutputSerializer, **WRITE_ERRORS},
    )
    def post(self, request):
        key = idempotency_key_of(request)
        data = validated(LimitSetInputSerializer, request.data)
        result = services.player_limit_set(
            client=client_of(request),
            idempotency_key=key,
            owner_ref=data["owner_ref"],
            currency=data["currency"],
            kind=data["kind"],
            period=data.get("period"),
            value=data["value"],
        )
        return render(LimitEnvelopeOutputSerializer, result)


class ExclusionStartView(ApiView):
    """Start a self-exclusion or a time-out."""

    required_scopes = {"POST": "protection:write"}
    schema = BodyRequiredSchema()

    @extend_schema(
        operation_id="protection_exclusion_start",
        summary="Start a self-exclusion or time-out at once (deposits, reservations and buy-ins refused until it "
        "ends; withdrawals and cash-outs always allowed)",
        request=_EXCLUSION_START_SCHEMA,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={201: ExclusionStartOutputSerializer, **WRITE_ERRORS},
    )
    def post(self, request):
        key = idempotency_key_of(request)
        data = validated(ExclusionStartInputSerializer, request.data)
        result = services.self_exclusion_start(
            client=client_of(request),
            idempotency_key=key,
            owner_ref=data["owner_ref"],
            kind=data["kind"],
            days=data["days"],
        )
        return render(ExclusionStartOutputSerializer, result, status=201)
