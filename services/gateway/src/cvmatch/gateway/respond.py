"""Response helpers: rate-limit headers and the HTTP status the edge must set."""

from __future__ import annotations

import datetime as dt
from typing import Any

import grpc
from google.protobuf import struct_pb2, timestamp_pb2

from cvmatch.api.gateway.v1 import resources_pb2
from cvmatch.gateway.auth import Caller
from cvmatch.platform.interceptors import HTTP_STATUS_KEY
from cvmatch.platform.logging import request_id_var

API_VERSION = "v1.0"


async def send_headers(context: grpc.aio.ServicerContext[Any, Any], caller: Caller | None,
                       http_status: int | None = None) -> None:
    """Sends X-RateLimit-* and, when gRPC cannot express it, the HTTP status (202, 201, ...)."""
    md: list[tuple[str, str]] = list(caller.rate_headers) if caller else []
    if http_status is not None:
        md.append((HTTP_STATUS_KEY, str(http_status)))
    if md:
        await context.send_initial_metadata(tuple(md))


def rfc3339(ts: timestamp_pb2.Timestamp | dt.datetime | None) -> str:
    """RFC 3339 in UTC with a Z, to the second (as in the seeds' examples)."""
    if ts is None:
        return ""
    if isinstance(ts, timestamp_pb2.Timestamp):
        if ts.seconds == 0 and ts.nanos == 0:
            return ""
        ts = ts.ToDatetime(dt.UTC)
    return ts.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def nullable(value: str | None) -> struct_pb2.Value:
    """A JSON value that is the string, or null when empty."""
    v = struct_pb2.Value()
    if value:
        v.string_value = value
    else:
        v.null_value = struct_pb2.NULL_VALUE
    return v


def meta() -> resources_pb2.ResponseMeta:
    """SkillSync's response metadata."""
    return resources_pb2.ResponseMeta(
        timestamp=rfc3339(dt.datetime.now(dt.UTC)), version=API_VERSION, request_id=request_id_var.get())
