"""Input and output shapes of the tables HTTP API. Money passes through untouched to the services
(``parse_amount`` alone decides), as in accounts/serializers.py, whose strict fields these reuse."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema_field
from rest_framework import serializers

from accounts.identifiers import MAX_HAND_ID, MAX_TABLE_ID, MAX_USER_ID
from accounts.serializers import (
    AccountOutputSerializer,
    AmountField,
    CurrencyField,
    IdentifierField,
    Int64Field,
    StrictSerializer,
    TransactionOutputSerializer,
)
from balance_project.money import amount_max
from balance_project.schema import digits_up_to

_AMOUNTS_BY_PLAYER_SCHEMA = {
    "type": "object",
    "additionalProperties": {
        "oneOf": [
            {"type": "integer", "format": "int64", "minimum": 0, "maximum": amount_max()},
            {"type": "string", "pattern": digits_up_to(amount_max(), zero=True)},
        ]
    },
    "description": "user id -> amount in minor units (non-negative integers).",
    "example": {"alice": 100, "bob": 100},
}


class _RawField(serializers.Field):
    """The raw JSON value, checked by the service (so the error codes are the services' own)."""

    def to_internal_value(self, data):
        return data

    def to_representation(self, value):
        return value


@extend_schema_field(_AMOUNTS_BY_PLAYER_SCHEMA)
class AmountsByPlayerField(_RawField):
    pass


@extend_schema_field(
    {
        "type": "integer",
        "minimum": settings.RESERVATION_MIN_TTL_SECONDS,
        "maximum": settings.RESERVATION_MAX_TTL_SECONDS,
        "description": "Seconds (RESERVATION_MIN_TTL_SECONDS to RESERVATION_MAX_TTL_SECONDS).",
    }
)
class TtlField(_RawField):
    pass


@extend_schema_field(
    {
        "oneOf": [
            {"type": "integer", "format": "int64", "minimum": 0, "maximum": amount_max()},
            {"type": "string", "pattern": digits_up_to(amount_max(), zero=True)},
        ],
        "description": "Minor units, 0 or more: a JSON integer or a string of canonical digits.",
    }
)
class AmountOrZeroField(AmountField):
    pass


@extend_schema_field({"type": "boolean"})
class StrictBooleanField(_RawField):
    pass


# For the variants of a body in the schema (oneOf): a flag that must be true in one variant, and
# may only be false (or left out) in the others. ("not", rather than an enum of one boolean, which
# the enum post-processing would turn into colliding components.)
@extend_schema_field({"type": "boolean", "not": {"enum": [False]}})
class TrueOnlyField(_RawField):
    pass


@extend_schema_field({"type": "boolean", "not": {"enum": [True]}})
class FalseOnlyField(_RawField):
    pass


# --- Inputs ---------------------------------------------------------------------------------------


class TableOpenInputSerializer(StrictSerializer):
    table_id = IdentifierField(max_length=MAX_TABLE_ID, help_text="The poker service's table id.")
    currency = CurrencyField()


class BuyInInputSerializer(StrictSerializer):
    user_id = IdentifierField(max_length=MAX_USER_ID)
    amount = AmountField()
    ttl_seconds = TtlField(required=False)


class HandInputSerializer(StrictSerializer):
    hand_id = IdentifierField(max_length=MAX_HAND_ID)
    contributions = AmountsByPlayerField()
    payouts = AmountsByPlayerField()
    rake = AmountOrZeroField(help_text="Minor units to the rake account; may be 0.")


class CashOutInputSerializer(StrictSerializer):
    user_id = IdentifierField(max_length=MAX_USER_ID)
    amount = AmountField(required=False, help_text="What to cash out.")
    leave = StrictBooleanField(required=False, help_text="Cash out everything and leave the seat.")
    all = StrictBooleanField(
        required=False, help_text="true: cash out everything and keep the seat. Exactly one of amount, all and leave."
    )


# The cash-out body as the schema states it: exactly one of amount, all and leave (one rule of the
# service, seat_cash_out), as mutually exclusive variants, since OpenAPI 3.0 cannot tie fields.
class CashOutAmountInputSerializer(StrictSerializer):
    user_id = IdentifierField(max_length=MAX_USER_ID)
    amount = AmountField(help_text="What to cash out.")
    all = FalseOnlyField(required=False)
    leave = FalseOnlyField(required=False)


class CashOutAllInputSerializer(StrictSerializer):
    user_id = IdentifierField(max_length=MAX_USER_ID)
    all = TrueOnlyField(help_text="Cash out every chip and keep the seat.")
    leave = FalseOnlyField(required=False)


class CashOutLeaveInputSerializer(StrictSerializer):
    user_id = IdentifierField(max_length=MAX_USER_ID)
    leave = TrueOnlyField(help_text="Cash out every chip and close the seat.")
    all = FalseOnlyField(required=False)


CASH_OUT_SCHEMA = PolymorphicProxySerializer(
    component_name="CashOutInput",
    serializers=[CashOutAmountInputSerializer, CashOutAllInputSerializer, CashOutLeaveInputSerializer],
    resource_type_field_name=None,
    many=False,
)


# --- Outputs --------------------------------------------------------------------------------------


class SeatOutputSerializer(serializers.Serializer):
    id = Int64Field()
    table_id = serializers.CharField()
    user_id = serializers.CharField()
    account_id = Int64Field(help_text="The seat account holding the chips.")
    chips = Int64Field()
    status = serializers.CharField(help_text="One of active, left.")


class TableOutputSerializer(serializers.Serializer):
    table_id = serializers.CharField()
    currency = serializers.CharField()
    status = serializers.CharField(help_text="One of open, closed.")
    chips = Int64Field(help_text="Always the sum of its seats' chips.")
    seats = SeatOutputSerializer(many=True, help_text="Active seats.")


class TableEnvelopeOutputSerializer(serializers.Serializer):
    table = TableOutputSerializer()


class HandOutputSerializer(serializers.Serializer):
    hand_id = serializers.CharField()
    table = TableOutputSerializer()
    transaction = TransactionOutputSerializer(allow_null=True, help_text="Null when every net was zero.")


class CashOutOutputSerializer(serializers.Serializer):
    seat = SeatOutputSerializer()
    transaction = TransactionOutputSerializer(allow_null=True, help_text="Null when nothing moved.")
    account = AccountOutputSerializer(help_text="The wallet after the cash-out.")
