"""The proto against its released descriptor set (buf breaking), its lint (buf lint), and the
generated code (Python and TypeScript) against the proto: what `make proto-check` runs, so a plain
test run catches the same problems.

buf comes from clients/typescript/node_modules (the @bufbuild/buf npm package, `npm ci` there or any
`make proto`/`make proto-check`). Without it these tests skip, except in CI, where they fail.
"""

from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PROTO_DIR = REPO / "proto"
PROTO = PROTO_DIR / "balance/v1/balance.proto"
RELEASED = PROTO_DIR / "descriptors/balance.v1.binpb"
TS_DIR = REPO / "clients/typescript"
NODE_BIN = TS_DIR / "node_modules/.bin"
BUF = NODE_BIN / "buf"


@pytest.fixture(scope="module")
def buf() -> Path:
    if not BUF.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{BUF} is missing: CI runs `make proto-check` (npm ci) before the tests")
        pytest.skip("buf is not installed: run `make proto-check` (npm ci in clients/typescript)")
    return BUF


def run_buf(buf: Path, *args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{NODE_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run([str(buf), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def edited_module(tmp_path: Path, edits: list[tuple[str, str]], extra: dict[str, str] | None = None) -> Path:
    """A copy of proto/ (buf.yaml included) with text edits to balance.proto, each of which must apply."""
    module = tmp_path / "proto"
    shutil.copytree(PROTO_DIR, module)
    target = module / "balance/v1/balance.proto"
    text = target.read_text()
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new)
    target.write_text(text)
    for path, content in (extra or {}).items():
        (module / path).parent.mkdir(parents=True, exist_ok=True)
        (module / path).write_text(content)
    return module


def test_the_current_proto_keeps_the_released_contract(buf):
    run = run_buf(buf, "breaking", "proto", "--against", str(RELEASED))
    assert run.returncode == 0, run.stdout + run.stderr


def test_buf_lint_is_clean(buf):
    run = run_buf(buf, "lint", "proto")
    assert run.returncode == 0, run.stdout + run.stderr


def test_additions_are_not_breaking(buf, tmp_path):
    module = edited_module(
        tmp_path,
        [
            (
                "  int64 rake = 6;\n}",
                "  int64 rake = 6;\n  string note = 7;\n}\n\nmessage BrandNew {\n  string name = 1;\n}",
            )
        ],
    )
    run = run_buf(buf, "breaking", str(module), "--against", str(RELEASED))
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.parametrize(
    "edits, expected",
    [
        (
            [
                (
                    "int64 amount = 4;\n  optional int32 ttl_seconds = 5;  // unset",
                    "int32 amount = 4;\n  optional int32 ttl_seconds = 5;  // unset",
                )
            ],
            'on message "ReserveRequest" changed type from "int64" to "int32"',
        ),
        ([("int64 chips = 5;", "int64 stack = 5;")], 'on message "Seat" changed name from "chips" to "stack"'),
        ([("repeated Seat seats = 5;", "Seat seats = 5;")], 'on message "Table" changed cardinality'),
        (
            [("optional int64 amount = 4;    // what", "int64 amount = 4;    // what")],
            'on message "CashOutRequest" changed cardinality from "optional with explicit presence"',
        ),
        (
            [("  rpc CashOut(CashOutRequest) returns (CashOutResponse);\n", "")],
            'RPC "CashOut" on service "BalanceService" was deleted',
        ),
        ([("returns (GetBalanceResponse);", "returns (TableResponse);")], "changed response type"),
        (
            [("returns (GetBalanceResponse);", "returns (stream GetBalanceResponse);")],
            "changed from server unary to server streaming",
        ),
        ([("  RESERVATION_STATUS_EXPIRED = 4;\n", "")], 'enum value "4" on enum "ReservationStatus" was deleted'),
        (
            [("SEAT_STATUS_LEFT = 2;", "SEAT_STATUS_GONE = 2;")],
            'changed name from "SEAT_STATUS_LEFT" to "SEAT_STATUS_GONE"',
        ),
        (
            [
                ("message LedgerItem {", "message LedgerEntry {"),
                ("repeated LedgerItem items", "repeated LedgerEntry items"),
            ],
            'Previously present message "LedgerItem" was deleted',
        ),
    ],
)
def test_each_kind_of_breaking_change_is_caught(buf, tmp_path, edits, expected):
    run = run_buf(buf, "breaking", str(edited_module(tmp_path, edits)), "--against", str(RELEASED))
    assert run.returncode != 0
    assert expected in run.stdout, run.stdout + run.stderr


def test_the_lint_exceptions_hold_for_the_released_file_only(buf, tmp_path):
    """buf.yaml excuses v1's shared response messages; a v2 file sharing one is refused."""
    v2 = (
        'syntax = "proto3";\n\npackage balance.v2;\n\nservice BalanceService {\n'
        "  rpc GetTable(GetTableRequest) returns (TableResponse);\n"
        "  rpc CloseTable(CloseTableRequest) returns (TableResponse);\n}\n\n"
        "message GetTableRequest {\n  string table_id = 1;\n}\n\n"
        "message CloseTableRequest {\n  string table_id = 1;\n}\n\n"
        "message TableResponse {\n  string table_id = 1;\n}\n"
    )
    module = edited_module(tmp_path, [], {"balance/v2/balance.proto": v2})
    run = run_buf(buf, "lint", str(module))
    assert run.returncode != 0
    assert "balance/v2/balance.proto" in run.stdout and "balance/v1/" not in run.stdout, run.stdout


def test_the_python_generated_code_is_what_make_proto_writes(tmp_path):
    from grpc_tools import protoc

    status = protoc.main(
        [
            "protoc",
            f"-Ibalance_client/_pb={PROTO_DIR}",
            f"--python_out={tmp_path}",
            f"--grpc_python_out={tmp_path}",
            f"--pyi_out={tmp_path}",
            str(PROTO),
        ]
    )
    assert status == 0
    fresh, committed = tmp_path / "balance_client/_pb/balance/v1", REPO / "balance_client/_pb/balance/v1"
    names = sorted(p.name for p in fresh.iterdir())
    assert names == ["balance_pb2.py", "balance_pb2.pyi", "balance_pb2_grpc.py"]
    _match, mismatch, errors = filecmp.cmpfiles(fresh, committed, names, shallow=False)
    assert (mismatch, errors) == ([], []), "generated code is stale: run `make proto`"


def test_the_typescript_generated_code_is_what_make_proto_writes(buf, tmp_path):
    run = run_buf(buf, "generate", "-o", str(tmp_path), cwd=TS_DIR)
    assert run.returncode == 0, run.stdout + run.stderr
    fresh, committed = tmp_path / "src/gen", TS_DIR / "src/gen"
    compared = filecmp.dircmp(fresh, committed)
    stale = []

    def walk(cmp: filecmp.dircmp) -> None:
        stale.extend(cmp.left_only + cmp.right_only + cmp.diff_files + cmp.funny_files)
        for sub in cmp.subdirs.values():
            walk(sub)

    walk(compared)
    assert stale == [], "clients/typescript/src/gen is stale: run `make proto`"
