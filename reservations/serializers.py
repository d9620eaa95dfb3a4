"""Input and output shapes of the reservations HTTP API."""

from __future__ import annotations

from drf_spectacular.utils import PolymorphicProxySerializer
from rest_framework import serializers

from accounts.identifiers import MAX_TABLE_ID, MAX_USER_ID
from accounts.serializers import (
    AmountField,
    FreeTextField,
    IdentifierField,
    Int64Field,
    PeriodBoundField,
    StrictSerializer,
    TransactionOutputSerializer,
)
from tables.serializers import FalseOnlyField, SeatOutputSerializer, StrictBooleanField, TrueOnlyField, TtlField


class ReserveInputSerializer(StrictSerializer):
    user_id = IdentifierField(max_length=MAX_USER_ID)
    table_id = IdentifierField(max_length=MAX_TABLE_ID)
    amount = AmountField()
    ttl_seconds = TtlField(required=False, help_text="Default RESERVATION_DEFAULT_TTL_SECONDS.")


# The commit body as the schema states it: exactly one of amount and all (money.amount_or_all).
class CommitAmountInputSerializer(StrictSerializer):
    amount = AmountField(help_text="What to commit (at most the hold; the rest is released).")
    all = FalseOnlyField(required=False)


class CommitAllInputSerializer(StrictSerializer):
    all = TrueOnlyField(help_text="Commit everything held.")


COMMIT_SCHEMA = PolymorphicProxySerializer(
    component_name="CommitInput",
    serializers=[CommitAmountInputSerializer, CommitAllInputSerializer],
    resource_type_field_name=None,
    many=False,
)


class CommitInputSerializer(StrictSerializer):
    amount = AmountField(required=False, help_text="What to commit (at most the hold; the rest is released).")
    all = StrictBooleanField(required=False, help_text="true: commit everything held. Exactly one of amount and all.")


class ReleaseInputSerializer(StrictSerializer):
    reason = FreeTextField(required=False, max_length=255)


class ExpiryRateInputSerializer(serializers.Serializer):
    def get_fields(self):
        # "from" is a Python keyword, so the fields are named here rather than declared.
        return {
            "from": PeriodBoundField(required=False, help_text="Start, inclusive. Default: 24 hours before to."),
            "to": PeriodBoundField(
                required=False,
                end_of_day=True,
                help_text="End, exclusive (a date means the end of that day). Default: now.",
            ),
        }


class ReservationOutputSerializer(serializers.Serializer):
    id = Int64Field()
    account_id = Int64Field(help_text="The wallet holding the funds.")
    user_id = serializers.CharField()
    table_id = serializers.CharField()
    currency = serializers.CharField()
    amount = Int64Field(help_text="Held while pending.")
    committed_amount = Int64Field()
    released_amount = Int64Field()
    status = serializers.CharField(help_text="One of pending, committed, released, expired.")
    expires_at = serializers.CharField()
    created_at = serializers.CharField()
    updated_at = serializers.CharField()
    ended_at = serializers.CharField(allow_null=True)
    ended_by = serializers.CharField(help_text="Who ended it: API client, admin user or expiry-job.")
    end_reason = serializers.CharField()
    seat_id = Int64Field(allow_null=True)
    transaction_id = Int64Field(allow_null=True)


class ReservationEnvelopeOutputSerializer(serializers.Serializer):
    reservation = ReservationOutputSerializer()


class CommitOutputSerializer(serializers.Serializer):
    reservation = ReservationOutputSerializer()
    seat = SeatOutputSerializer()
    transaction = TransactionOutputSerializer()


class ExpiryRateOutputSerializer(serializers.Serializer):
    expired = Int64Field()
    committed = Int64Field()
    released = Int64Field()
    total = Int64Field()
    rate = serializers.CharField(help_text='expired / total as a decimal string, e.g. "0.0123".')

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = serializers.CharField()
        fields["to"] = serializers.CharField()
        return fields
