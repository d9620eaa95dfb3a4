"""The proto against its released descriptor set, and the generated code against the proto."""
from __future__ import annotations

import filecmp
import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

from balance_project.grpc.breaking import compare, compile_descriptor_set, load_descriptor_set

REPO = Path(__file__).resolve().parents[2]
RELEASED = REPO / "proto/descriptors/balance.v1.binpb"
PROTO = REPO / "proto/balance/v1/balance.proto"


@pytest.fixture(scope="module")
def current() -> descriptor_pb2.FileDescriptorSet:
    return compile_descriptor_set(PROTO, REPO / "proto")


def balance_file(fds):
    return next(f for f in fds.file if f.package == "balance.v1")


def message(fds, name):
    return next(m for m in balance_file(fds).message_type if m.name == name)


def field(fds, message_name, field_name):
    return next(f for f in message(fds, message_name).field if f.name == field_name)


def changed(current, mutate) -> list[str]:
    edited = descriptor_pb2.FileDescriptorSet()
    edited.CopyFrom(current)
    mutate(edited)
    return compare(current, edited)


def test_the_current_proto_keeps_the_released_contract(current):
    assert compare(load_descriptor_set(RELEASED), current) == []


def test_additions_are_not_breaking(current):
    def add(fds):
        message(fds, "BuyInRequest").field.add(name="note", number=99, type=9, label=1)
        balance_file(fds).message_type.add(name="Brand new")
    assert changed(current, add) == []


@pytest.mark.parametrize("mutate, expected", [
    (lambda f: setattr(field(f, "BuyInRequest", "amount"), "type", descriptor_pb2.FieldDescriptorProto.TYPE_INT32),
     "BuyInRequest field 4 (amount): type changed from 'TYPE_INT64' to 'TYPE_INT32'"),
    (lambda f: setattr(field(f, "BuyInRequest", "amount"), "name", "chips"),
     "BuyInRequest field 4 (amount): name changed"),
    (lambda f: message(f, "Seat").field.remove(field(f, "Seat", "chips")), "Seat field 5 (chips) was removed"),
    (lambda f: setattr(field(f, "Table", "seats"), "label", 1), "Table field 5 (seats): label changed"),
    (lambda f: setattr(field(f, "BuyInResponse", "seat"), "type_name", ".balance.v1.Table"),
     "BuyInResponse field 2 (seat): type_name changed"),
    (lambda f: setattr(field(f, "CashOutRequest", "amount"), "proto3_optional", False),
     "CashOutRequest field 4 (amount): explicit presence changed"),
    (lambda f: balance_file(f).message_type.remove(message(f, "LedgerItem")),
     "message balance.v1.LedgerItem was removed"),
    (lambda f: balance_file(f).service[0].method.pop(), "method balance.v1.BalanceService.CashOut was removed"),
    (lambda f: setattr(balance_file(f).service[0].method[0], "output_type", ".balance.v1.TableResponse"),
     "method balance.v1.BalanceService.GetBalance: output_type changed"),
    (lambda f: setattr(balance_file(f).service[0].method[0], "server_streaming", True),
     "method balance.v1.BalanceService.GetBalance: server_streaming changed"),
    (lambda f: balance_file(f).enum_type[0].value.pop(), "enum balance.v1.ReservationStatus value 4"),
    (lambda f: setattr(balance_file(f).enum_type[1].value[1], "name", "SEAT_STATUS_SITTING"),
     "enum balance.v1.SeatStatus value 1 renamed"),
    (lambda f: balance_file(f).service.pop(), "service balance.v1.BalanceService was removed"),
])
def test_each_kind_of_breaking_change_is_caught(current, mutate, expected):
    problems = changed(current, mutate)
    assert any(expected in problem for problem in problems), problems


def test_a_reserved_number_must_stay_reserved(current):
    def reserve(fds):
        message(fds, "Entry").reserved_range.add(start=9, end=10)

    def reuse(fds):
        reserve(fds)
        message(fds, "Entry").reserved_range.pop()
        message(fds, "Entry").field.add(name="recycled", number=9, type=3, label=1)

    released = descriptor_pb2.FileDescriptorSet()
    released.CopyFrom(current)
    reserve(released)
    reused = descriptor_pb2.FileDescriptorSet()
    reused.CopyFrom(current)
    reuse(reused)
    assert compare(released, reused) == ["balance.v1.Entry: reserved number 9 is no longer reserved and reused by "
                                         "field recycled"]


def test_the_breaking_check_command_fails_on_a_breaking_proto(tmp_path):
    proto_dir = tmp_path / "proto/balance/v1"
    proto_dir.mkdir(parents=True)
    (proto_dir / "balance.proto").write_text(PROTO.read_text().replace("int64 amount = 4;", "int32 amount = 4;"))
    run = subprocess.run([sys.executable, "-m", "balance_project.grpc.breaking", str(RELEASED),
                          str(proto_dir / "balance.proto"), "--include", str(tmp_path / "proto")],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and "BREAKING" in run.stdout and "TYPE_INT32" in run.stdout


def test_the_generated_code_is_what_make_proto_writes(tmp_path):
    """What `make proto-check` does, so a plain test run catches a stale balance_client/_pb too."""
    from grpc_tools import protoc

    status = protoc.main(["protoc", f"-Ibalance_client/_pb={REPO / 'proto'}", f"--python_out={tmp_path}",
                          f"--grpc_python_out={tmp_path}", f"--pyi_out={tmp_path}", str(PROTO)])
    assert status == 0
    fresh, committed = tmp_path / "balance_client/_pb/balance/v1", REPO / "balance_client/_pb/balance/v1"
    names = sorted(p.name for p in fresh.iterdir())
    assert names == ["balance_pb2.py", "balance_pb2.pyi", "balance_pb2_grpc.py"]
    match, mismatch, errors = filecmp.cmpfiles(fresh, committed, names, shallow=False)
    assert (mismatch, errors) == ([], []), "generated code is stale: run `make proto`"
