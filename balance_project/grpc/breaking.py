"""Breaking-change check of balance.v1 against the released descriptor set.

    python -m balance_project.grpc.breaking proto/descriptors/balance.v1.binpb proto/balance/v1/balance.proto

Compiles the current proto and reports, for every message, enum and service of the released set,
anything a deployed client would trip over: a message, enum, service, method, field or enum value
removed; a field number whose name, type, message type, cardinality, oneof or presence changed; a
method whose request/response type or streaming changed; a reserved number or name that is no
longer reserved or was taken by a new field. Adding things is fine. Exit status 1 on any finding.

Released descriptor sets are made with
``python -m grpc_tools.protoc -Iproto --include_imports --descriptor_set_out=... <proto>``.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from importlib import resources
from pathlib import Path

from google.protobuf import descriptor_pb2

_LABELS = {1: "optional", 2: "required", 3: "repeated"}


def load_descriptor_set(path: str | Path) -> descriptor_pb2.FileDescriptorSet:
    return descriptor_pb2.FileDescriptorSet.FromString(Path(path).read_bytes())


def compile_descriptor_set(proto_path: str | Path, include: str | Path = "proto") -> descriptor_pb2.FileDescriptorSet:
    """Compile ``proto_path`` (under ``include``) the way released sets are made."""
    from grpc_tools import protoc

    well_known = resources.files("grpc_tools") / "_proto"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "current.binpb"
        status = protoc.main(["protoc", f"-I{include}", f"-I{well_known}", "--include_imports",
                              f"--descriptor_set_out={out}", str(proto_path)])
        if status != 0:
            raise RuntimeError(f"protoc failed on {proto_path} (status {status})")
        return load_descriptor_set(out)


def _index(fds: descriptor_pb2.FileDescriptorSet, package_prefix: str):
    messages, enums, services = {}, {}, {}

    def walk(prefix, message_types, enum_types):
        for message in message_types:
            name = f"{prefix}.{message.name}"
            messages[name] = message
            walk(name, message.nested_type, message.enum_type)
        for enum in enum_types:
            enums[f"{prefix}.{enum.name}"] = enum

    for file in fds.file:
        if not file.package.startswith(package_prefix):
            continue  # imports (google.*) are not ours to judge
        walk(file.package, file.message_type, file.enum_type)
        for service in file.service:
            services[f"{file.package}.{service.name}"] = service
    return messages, enums, services


def _field_shape(message, field) -> dict:
    oneof = ""
    if field.HasField("oneof_index") and not field.proto3_optional:
        oneof = message.oneof_decl[field.oneof_index].name
    return {"name": field.name, "type": descriptor_pb2.FieldDescriptorProto.Type.Name(field.type),
            "type_name": field.type_name, "label": _LABELS.get(field.label, str(field.label)),
            "oneof": oneof, "explicit presence": field.proto3_optional}


def _reserved_numbers(message) -> set[int]:
    return {n for r in message.reserved_range for n in range(r.start, r.end)}


def compare(released: descriptor_pb2.FileDescriptorSet, current: descriptor_pb2.FileDescriptorSet,
            package_prefix: str = "balance.") -> list[str]:
    """Every breaking difference, as a sentence naming the element; empty when compatible."""
    problems: list[str] = []
    old_messages, old_enums, old_services = _index(released, package_prefix)
    new_messages, new_enums, new_services = _index(current, package_prefix)

    for name, old in old_messages.items():
        new = new_messages.get(name)
        if new is None:
            problems.append(f"message {name} was removed")
            continue
        new_fields = {f.number: f for f in new.field}
        for field in old.field:
            where = f"{name} field {field.number} ({field.name})"
            if field.number not in new_fields:
                problems.append(f"{where} was removed")
                continue
            before, after = _field_shape(old, field), _field_shape(new, new_fields[field.number])
            for aspect in before:
                if before[aspect] != after[aspect]:
                    problems.append(f"{where}: {aspect} changed from {before[aspect]!r} to {after[aspect]!r}")
        still_reserved = _reserved_numbers(new)
        for number in sorted(_reserved_numbers(old)):
            if number not in still_reserved:
                taken = f" and reused by field {new_fields[number].name}" if number in new_fields else ""
                problems.append(f"{name}: reserved number {number} is no longer reserved{taken}")
        for reserved_name in old.reserved_name:
            if reserved_name not in new.reserved_name:
                problems.append(f"{name}: reserved name {reserved_name!r} is no longer reserved")

    for name, old in old_enums.items():
        new = new_enums.get(name)
        if new is None:
            problems.append(f"enum {name} was removed")
            continue
        new_values = {v.number: v.name for v in new.value}
        for value in old.value:
            if value.number not in new_values:
                problems.append(f"enum {name} value {value.number} ({value.name}) was removed")
            elif new_values[value.number] != value.name:
                problems.append(f"enum {name} value {value.number} renamed from {value.name} "
                                f"to {new_values[value.number]}")

    for name, old in old_services.items():
        new = new_services.get(name)
        if new is None:
            problems.append(f"service {name} was removed")
            continue
        new_methods = {m.name: m for m in new.method}
        for method in old.method:
            if method.name not in new_methods:
                problems.append(f"method {name}.{method.name} was removed")
                continue
            after = new_methods[method.name]
            for aspect in ("input_type", "output_type", "client_streaming", "server_streaming"):
                if getattr(method, aspect) != getattr(after, aspect):
                    problems.append(f"method {name}.{method.name}: {aspect} changed from "
                                    f"{getattr(method, aspect)!r} to {getattr(after, aspect)!r}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m balance_project.grpc.breaking",
                                     description="Fail on a breaking change against a released descriptor set.")
    parser.add_argument("released", help="the released descriptor set (.binpb)")
    parser.add_argument("proto", help="the current .proto file")
    parser.add_argument("--include", default="proto", help="the proto include root (default: %(default)s)")
    args = parser.parse_args(argv)
    problems = compare(load_descriptor_set(args.released), compile_descriptor_set(args.proto, args.include))
    for problem in problems:
        print(f"BREAKING: {problem}")
    if problems:
        return 1
    print(f"no breaking change against {args.released}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
