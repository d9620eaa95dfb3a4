"""ApplicationError -> gRPC status with google.rpc.ErrorInfo, through the one ERROR_TABLE.

The status code comes from ``ERROR_TABLE`` (the same table the HTTP handler uses); the details carry
``ErrorInfo(reason=<code>, domain="balance.v1", metadata=<details as strings>)`` so a caller can act
on the stable code rather than parse the message.
"""

from __future__ import annotations

import json
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from balance_project.errors import ERROR_DOMAIN, ApplicationError


def metadata_strings(details: dict[str, Any]) -> dict[str, str]:
    """ErrorInfo metadata is string -> string: strings stay as they are, anything else is JSON."""
    return {str(k): v if isinstance(v, str) else json.dumps(v, sort_keys=True, default=str) for k, v in details.items()}


def status_for(error: ApplicationError) -> grpc.Status:
    info = error_details_pb2.ErrorInfo(reason=error.code, domain=ERROR_DOMAIN, metadata=metadata_strings(error.details))
    packed = any_pb2.Any()
    packed.Pack(info)
    status = status_pb2.Status(code=error.spec.grpc_code.value[0], message=error.message, details=[packed])
    return rpc_status.to_status(status)


def abort_with(context: grpc.ServicerContext, error: ApplicationError) -> None:
    """End the call with ``error`` (raises, as ``abort_with_status`` does)."""
    context.abort_with_status(status_for(error))
