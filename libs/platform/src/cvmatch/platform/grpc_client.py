"""gRPC clients for calling other services: deadlines, retries on UNAVAILABLE, request-id propagation."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import grpc

from cvmatch.platform.logging import request_id_var

MAX_MESSAGE_BYTES = 64 * 1024 * 1024


def _service_config(max_attempts: int) -> str:
    return json.dumps({
        "methodConfig": [{
            "name": [{}],
            "retryPolicy": {
                "maxAttempts": max_attempts,
                "initialBackoff": "0.1s",
                "maxBackoff": "2s",
                "backoffMultiplier": 2,
                "retryableStatusCodes": ["UNAVAILABLE"],
            },
        }]
    })


class _Propagate(grpc.aio.UnaryUnaryClientInterceptor, grpc.aio.StreamUnaryClientInterceptor):
    """Adds the current request id and a default deadline to every outgoing call."""

    def __init__(self, default_timeout: float) -> None:
        self._timeout = default_timeout

    def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        metadata = list(details.metadata or [])
        rid = request_id_var.get()
        if rid and not any(k == "x-request-id" for k, _ in metadata):
            metadata.append(("x-request-id", rid))
        timeout = details.timeout if details.timeout is not None else self._timeout
        return grpc.aio.ClientCallDetails(details.method, timeout, grpc.aio.Metadata(*metadata),
                                          details.credentials, details.wait_for_ready)

    async def intercept_unary_unary(self, continuation: Callable[..., Any],
                                    client_call_details: grpc.aio.ClientCallDetails, request: Any) -> Any:
        return await continuation(self._details(client_call_details), request)

    async def intercept_stream_unary(self, continuation: Callable[..., Any],
                                     client_call_details: grpc.aio.ClientCallDetails,
                                     request_iterator: Any) -> Any:
        return await continuation(self._details(client_call_details), request_iterator)


def open_channel(target: str, *, default_timeout: float = 10.0, max_attempts: int = 4) -> grpc.aio.Channel:
    """An insecure channel inside the cluster (mTLS belongs to the mesh) with retries and deadlines."""
    return grpc.aio.insecure_channel(
        target,
        options=[
            ("grpc.enable_retries", 1),
            ("grpc.service_config", _service_config(max_attempts)),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.keepalive_time_ms", 30_000),
        ],
        interceptors=[_Propagate(default_timeout)],
    )
