"""Input and output shapes of the accounts HTTP API.

Input fields are strict about JSON types and leave money to the services: an amount passes through
untouched, so ``parse_amount`` alone decides (and a float such as ``10.0`` or ``1e3`` is refused
there as ``invalid_amount``, never rounded into an integer by a serializer field).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, time, timedelta

from django.core.validators import RegexValidator
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.identifiers import IDENTIFIER_RE, MAX_USER_ID, identifier_check
from balance_project.errors import ApplicationError
from balance_project.moments import MOMENT_SCHEMA, moment_checked
from balance_project.money import CURRENCY_RE, INT64_MAX, amount_max
from balance_project.schema import digits_up_to
from balance_project.text import FREE_TEXT_PATTERN, free_text_check
from ledger.metadata import METADATA_SCHEMA

_DATE_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_AMOUNT_SCHEMA = {
    "oneOf": [
        {"type": "integer", "format": "int64", "minimum": 1, "maximum": amount_max()},
        {"type": "string", "pattern": digits_up_to(amount_max())},
    ],
    "description": "Minor units: a JSON integer or a string of canonical digits, at most MAX_AMOUNT "
    "(per currency: MAX_AMOUNT_BY_CURRENCY). Floats (even 10.0) are refused.",
    "example": 1500,
}


# Refuses fields it does not know: a typo such as ``ammount`` is an error, not a silent default.
# (A comment, not a docstring: the OpenAPI generator would show it on every input schema.)
class StrictSerializer(serializers.Serializer):
    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["unknown field"] for name in unknown})
        return super().to_internal_value(data)


@extend_schema_field(_AMOUNT_SCHEMA)
class AmountField(serializers.Field):
    """The raw JSON value, for ``parse_amount`` in the service. An explicit null is invalid_amount
    here: where the field may be left out (commit, cash-out), leaving it out means "all", and a null
    must not mean the same (a missing value never means "all" by accident)."""

    def validate_empty_values(self, data):
        if data is None:
            return (False, data)
        return super().validate_empty_values(data)

    def to_internal_value(self, data):
        if data is None:
            raise ApplicationError(
                "invalid_amount",
                f"{self.field_name} must be an integer number of minor units, not null"
                + ("; leave it out for all" if not self.required else ""),
                {"field": self.field_name},
            )
        return data

    def to_representation(self, value):
        return value


@extend_schema_field({"type": "integer", "format": "int64", "minimum": 1, "maximum": INT64_MAX})
class AccountIdField(serializers.Field):
    """An account id: a JSON integer (or digit string) from 1 to int64 max; never a float or bool."""

    default_error_messages = {"invalid": "must be an account id: an integer from 1 to 2**63-1"}

    def to_internal_value(self, data):
        if isinstance(data, str) and data.isascii() and data.isdigit():
            data = int(data)
        if isinstance(data, bool) or not isinstance(data, int) or not 1 <= data <= INT64_MAX:
            self.fail("invalid")
        return data

    def to_representation(self, value):
        return value


class StrictCharField(serializers.CharField):
    """A JSON string; DRF's CharField would also take a number and turn it into one."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class IdentifierField(StrictCharField):
    """An id the caller names: ``identifier_check`` decides (accounts.identifiers; its refusal names
    the field), and the pattern validator states the same rule in the schema."""

    def __init__(self, *, max_length: int, **kwargs):
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(max_length=max_length, **kwargs)
        self.validators.append(RegexValidator(IDENTIFIER_RE))

    def run_validation(self, data=serializers.empty):
        if data is serializers.empty or data is None:
            return super().run_validation(data)
        return identifier_check(data, field=self.field_name or "value", max_length=self.max_length or 0)


class FreeTextField(StrictCharField):
    """Free text such as a reason: ``free_text_check`` in the service decides (balance_project/text.py);
    the pattern validator states the same rule in the schema."""

    def __init__(self, *, max_length: int, **kwargs):
        kwargs.setdefault("trim_whitespace", False)
        kwargs.setdefault("allow_blank", True)
        super().__init__(max_length=max_length, **kwargs)
        self.validators.append(RegexValidator(FREE_TEXT_PATTERN))

    def run_validation(self, data=serializers.empty):
        if data is serializers.empty or data is None:
            return super().run_validation(data)
        return free_text_check(data, field=self.field_name or "text", max_length=self.max_length or 0)


class CurrencyField(StrictCharField):
    """Three upper-case letters; ``parse_currency`` in the service decides, the schema says the same."""

    def __init__(self, **kwargs):
        kwargs.setdefault("help_text", "Three upper-case letters, e.g. EUR.")
        super().__init__(min_length=3, max_length=3, trim_whitespace=False, **kwargs)
        self.validators.append(RegexValidator(CURRENCY_RE))


@extend_schema_field(METADATA_SCHEMA)
class MetadataField(serializers.Field):
    """Passed on as given: ``ledger.metadata.metadata_check`` in the service decides."""

    def to_internal_value(self, data):
        return data

    def to_representation(self, value):
        return value


@extend_schema_field(MOMENT_SCHEMA)
class PeriodBoundField(serializers.Field):
    """An ISO 8601 datetime (UTC when it names no offset) or a date. A date given as ``to`` means
    the end of that day, so ``from=2024-01-01&to=2024-01-31`` covers all of January."""

    default_error_messages = {"invalid": "must be an ISO 8601 date (YYYY-MM-DD) or datetime"}

    def __init__(self, *, end_of_day: bool = False, **kwargs):
        self.end_of_day = end_of_day
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str) or len(data) > 64:
            self.fail("invalid")
        text = data.strip()
        if "T" in text and " " in text:
            # A '+' offset left unescaped in a query string arrives as a space.
            text = text.replace(" ", "+")
        try:
            if _DATE_RE.match(text):  # Checked first: parse_datetime also takes a bare date.
                day = parse_date(text)
                if day is None:  # not reached: the pattern matched, so parse_date returns or raises
                    self.fail("invalid")
                if self.end_of_day:
                    day += timedelta(days=1)
                moment: datetime | None = datetime.combine(day, time.min, tzinfo=UTC)
            else:
                moment = parse_datetime(text)
        except (ValueError, OverflowError):
            self.fail("invalid")
        if moment is None:
            self.fail("invalid")
        return moment_checked(moment, field=self.field_name or "moment", value=data)

    def to_representation(self, value):
        return value


# --- Inputs ---------------------------------------------------------------------------------------


class AccountOpenInputSerializer(StrictSerializer):
    owner_ref = IdentifierField(max_length=MAX_USER_ID, help_text="The player's id.")
    currency = CurrencyField()


class AccountsListInputSerializer(serializers.Serializer):
    owner_ref = IdentifierField(max_length=MAX_USER_ID)
    kind = serializers.ChoiceField(choices=["user", "seat"], required=False)


class MovementInputSerializer(StrictSerializer):
    amount = AmountField()
    metadata = MetadataField(required=False)


class TransferInputSerializer(StrictSerializer):
    from_account_id = AccountIdField()
    to_account_id = AccountIdField()
    amount = AmountField()
    metadata = MetadataField(required=False)


class QueryIntegerField(serializers.IntegerField):
    """Digits only: DRF's IntegerField would also take "5.0"."""

    def to_internal_value(self, data):
        if not isinstance(data, str) or not data.isascii() or not data.isdigit() or len(data) > 19:
            self.fail("invalid")
        return super().to_internal_value(data)


class TransactionsListInputSerializer(serializers.Serializer):
    cursor = serializers.CharField(required=False, max_length=200, help_text="next_cursor of the previous page.")
    limit = QueryIntegerField(required=False, min_value=1, max_value=200, default=50)


class StatementInputSerializer(serializers.Serializer):
    def get_fields(self):
        # "from" is a Python keyword, so the fields are named here rather than declared.
        return {
            "from": PeriodBoundField(required=False, help_text="Start, inclusive. Default: the first entry."),
            "to": PeriodBoundField(
                required=False,
                end_of_day=True,
                help_text="End, exclusive (a date means the end of that day). Default: now.",
            ),
        }


# --- Outputs (documentation and rendering of the services' dicts) ---------------------------------


@extend_schema_field(OpenApiTypes.INT64)
class Int64Field(serializers.IntegerField):
    pass


class AccountOutputSerializer(serializers.Serializer):
    id = Int64Field()
    kind = serializers.ChoiceField(choices=["user", "seat", "system"])
    owner_ref = serializers.CharField()
    system_code = serializers.CharField()
    currency = serializers.CharField()
    balance = Int64Field()
    held = Int64Field()
    available = Int64Field(help_text="balance - held")
    status = serializers.ChoiceField(choices=["active", "frozen", "closed"])
    version = Int64Field(help_text="Bumped on every change of balance, held or status.")


class AccountEnvelopeOutputSerializer(serializers.Serializer):
    account = AccountOutputSerializer()


class AccountDetailOutputSerializer(AccountOutputSerializer):
    # A declared field named like Field.source: the serializer metaclass moves it to _declared_fields.
    source = serializers.ChoiceField(choices=["cache", "database"])  # type: ignore[assignment]


class AccountsListOutputSerializer(serializers.Serializer):
    items = AccountOutputSerializer(many=True)


class BalanceOutputSerializer(serializers.Serializer):
    account_id = Int64Field(source="id")
    currency = serializers.CharField()
    balance = Int64Field()
    held = Int64Field()
    available = Int64Field()
    version = Int64Field()
    source = serializers.ChoiceField(choices=["cache", "database"])  # type: ignore[assignment]


class PostingOutputSerializer(serializers.Serializer):
    account_id = Int64Field()
    seq = Int64Field()
    amount = Int64Field(help_text="Signed: positive raised the balance.")
    balance_after = Int64Field()


class TransactionOutputSerializer(serializers.Serializer):
    id = Int64Field()
    kind = serializers.CharField()
    currency = serializers.CharField()
    actor = serializers.CharField()
    metadata = MetadataField()
    created_at = serializers.CharField(help_text="UTC, ISO 8601 with microseconds.")
    entries = PostingOutputSerializer(many=True)


class MovementOutputSerializer(serializers.Serializer):
    transaction = TransactionOutputSerializer()
    account = AccountOutputSerializer()


class TransferOutputSerializer(serializers.Serializer):
    transaction = TransactionOutputSerializer()


class EntryOutputSerializer(serializers.Serializer):
    transaction_id = Int64Field()
    kind = serializers.CharField()
    seq = Int64Field()
    amount = Int64Field()
    balance_after = Int64Field()
    created_at = serializers.CharField()
    metadata = MetadataField()


class TransactionsPageOutputSerializer(serializers.Serializer):
    items = EntryOutputSerializer(many=True)
    next_cursor = serializers.CharField(
        allow_null=True, help_text="Pass as cursor for the next page; null on the last page."
    )


class StatementOutputSerializer(serializers.Serializer):
    account = AccountOutputSerializer()
    # "from" and "to" are added in get_fields: "from" is a Python keyword.
    opening_balance = Int64Field()
    closing_balance = Int64Field(help_text="opening_balance + total_in - total_out")
    total_in = Int64Field()
    total_out = Int64Field()
    entry_count = Int64Field()
    entries = EntryOutputSerializer(many=True)
    truncated = serializers.BooleanField(help_text="More entries than listed: page them with /transactions.")

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = serializers.CharField(allow_null=True, help_text="Start of the period (inclusive), UTC.")
        fields["to"] = serializers.CharField(help_text="End of the period (exclusive), UTC.")
        return fields
