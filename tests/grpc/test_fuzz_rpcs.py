"""Hypothesis over every RPC of balance.v1.BalanceService: requests built from the proto descriptor
(any field set or not, hostile text, int64 extremes, nested messages and maps, plus the ids of real
resources so calls get past the lookups). Whatever arrives, the answer is never INTERNAL or UNKNOWN,
and a refused call moves no money."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import descriptor as d
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.keys import SCOPES
from accounts.models import Account
from balance_client._pb.balance.v1 import balance_pb2 as pb
from balance_client._pb.balance.v1 import balance_pb2_grpc
from ledger.models import Entry
from tests.grpc.conftest import auth, new_key

pytestmark = pytest.mark.django_db(transaction=True)

SERVICE = pb.DESCRIPTOR.services_by_name["BalanceService"]
INT64 = (-(2**63), 2**63 - 1)
HOSTILE_TEXT = ["", " ", "\x00", "a\x00b", "\u202eevil", "x" * 300, "0005", "-0", " 5 ", "EUR\n", "\ufeff", "é"]


def _text(known: list[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(known + HOSTILE_TEXT),
        st.text(st.characters(exclude_categories=["Cs"]), max_size=40),
    )


def _integer(kind: int, known: list[int]) -> st.SearchStrategy[int]:
    if kind in (d.FieldDescriptor.TYPE_INT64, d.FieldDescriptor.TYPE_SINT64, d.FieldDescriptor.TYPE_SFIXED64):
        low, high = INT64
    elif kind in (d.FieldDescriptor.TYPE_UINT64, d.FieldDescriptor.TYPE_FIXED64):
        low, high = 0, 2**64 - 1
    elif kind in (d.FieldDescriptor.TYPE_UINT32, d.FieldDescriptor.TYPE_FIXED32):
        low, high = 0, 2**32 - 1
    else:
        low, high = -(2**31), 2**31 - 1
    edges = [low, high, -1, 0, 1, 2**53 + 1]
    return st.one_of(st.sampled_from(known + [e for e in edges if low <= e <= high]), st.integers(low, high))


def _value(field: d.FieldDescriptor, known: dict, depth: int) -> st.SearchStrategy:
    # Mostly well-formed where it matters, so calls reach the rules behind the checks of their input.
    if field.name == "idempotency_key":  # its own rule is covered by tests/api and tests/grpc
        return st.builds(new_key)
    if field.name in known["fields"]:
        real = st.sampled_from(known["fields"][field.name])
        anything = _text(known["text"]) if field.type == d.FieldDescriptor.TYPE_STRING else _integer(field.type, [])
        return st.one_of(real, real, real, anything)
    if field.type == d.FieldDescriptor.TYPE_MESSAGE:
        return message(field.message_type, known, depth + 1)
    if field.type == d.FieldDescriptor.TYPE_STRING:
        return _text(known["text"])
    if field.type == d.FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if field.type == d.FieldDescriptor.TYPE_ENUM:
        return st.sampled_from([v.number for v in field.enum_type.values] + [99])
    if field.type in (d.FieldDescriptor.TYPE_DOUBLE, d.FieldDescriptor.TYPE_FLOAT):
        return st.floats(allow_nan=False)
    if field.type == d.FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=20)
    return _integer(field.type, known["ints"])


def message(descriptor: d.Descriptor, known: dict, depth: int = 0) -> st.SearchStrategy:
    """Any instance of ``descriptor``'s message: each field left out or set (maps and repeated fields
    with a few entries), nested messages to a small depth."""
    cls = GetMessageClass(descriptor)
    if depth > 2:
        return st.just(cls())
    parts = {}
    for field in descriptor.fields:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            entry = field.message_type.fields_by_name
            parts[field.name] = st.dictionaries(
                _value(entry["key"], known, depth), _value(entry["value"], known, depth), max_size=4
            )
        elif field.is_repeated:
            parts[field.name] = st.lists(_value(field, known, depth), max_size=3)
        else:
            parts[field.name] = _value(field, known, depth)

    def build(values: dict) -> object:
        instance = cls()
        for name, value in values.items():
            field = descriptor.fields_by_name[name]
            if isinstance(value, dict):  # a map field
                target = getattr(instance, name)
                for key, item in value.items():
                    if isinstance(item, Message):
                        target[key].CopyFrom(item)
                    else:
                        target[key] = item
            elif isinstance(value, list):
                getattr(instance, name).extend(value)
            elif field.type == d.FieldDescriptor.TYPE_MESSAGE:
                getattr(instance, name).CopyFrom(value)
            else:
                setattr(instance, name, value)
        return instance

    # The fields a call is about are always given (mostly well-formed); the rest may be left out.
    usual = {name: part for name, part in parts.items() if name in known["fields"] or name == "idempotency_key"}
    others = {name: part for name, part in parts.items() if name not in usual}
    return st.fixed_dictionaries(usual, optional=others).map(build)


def money() -> tuple:
    return (
        sorted(Account.objects.values_list("pk", "balance", "held", "status")),
        Entry.objects.count(),
    )


@pytest.fixture
def world(stub, make_token, player, table):
    """A token with every scope the RPCs use, and real resources for the generator to name."""
    md = auth(make_token(*SCOPES))
    user, wallet = player(funded=100_000)
    table_id = table()
    stub.BuyIn(pb.BuyInRequest(idempotency_key=new_key(), user_id=user, table_id=table_id, amount=5000), metadata=md)
    reservation = stub.Reserve(
        pb.ReserveRequest(idempotency_key=new_key(), user_id=user, table_id=table_id, amount=100), metadata=md
    ).reservation
    fields = {
        "user_id": [user],
        "table_id": [table_id],
        "currency": ["EUR"],
        "hand_id": ["h-1", "h-2"],
        "account_id": [wallet],
        "reservation_id": [reservation.id],
        "amount": [1, 100, 5000],
        "rake": [0, 1],
        "ttl_seconds": [30],
        "owner_ref": [user],
        "kind": ["deposit", "loss", "buy_in", "time_out", "self_exclusion"],
        "period": ["24h", "7d", "30d", ""],
        "value": [1, 1000],
        "days": [7, 200],
    }
    known = {"text": [user, table_id, "EUR"], "ints": [wallet, reservation.id, 100], "fields": fields}
    return md, known


@pytest.mark.parametrize("method", [m.name for m in SERVICE.methods])
def test_no_request_makes_an_rpc_fail_internally_and_a_refused_one_moves_nothing(server, channels, world, method):
    md, known = world
    descriptor = SERVICE.methods_by_name[method]
    stub = balance_pb2_grpc.BalanceServiceStub(channels(server.address))
    call = getattr(stub, method)
    if method == "StartSelfExclusion":  # the kinds of exclusion, with a length each accepts
        known = {**known, "fields": {**known["fields"], "kind": ["time_out"], "days": [7]}}

    @settings(
        max_examples=40,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(request=message(descriptor.input_type, known))
    def check(request):
        before = money()
        try:
            call(request, metadata=md, timeout=10)
            outcomes.append("OK")
        except grpc.RpcError as error:
            outcomes.append(error.code().name)
            assert error.code() not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN), (
                method,
                request,
                error.details(),
            )
            assert money() == before, (method, request, error.code())

    outcomes: list[str] = []
    check()
    # The generator reaches past the input checks: some calls are served or refused by a business rule.
    assert set(outcomes) - {"INVALID_ARGUMENT", "PERMISSION_DENIED", "UNAUTHENTICATED"}, (method, set(outcomes))
