"""Server interceptor: request ids, and domain errors mapped once to `google.rpc.Status`.

A `DomainError` becomes its gRPC code with `ErrorInfo(reason=...)` and `BadRequest` field violations in
`grpc-status-details-bin`, and metadata for the public edge: `x-cvmatch-http-status` (the seed's status
where gRPC has none), `x-cvmatch-error-body` (the seeds' JSON envelope), `retry-after`. Any other
exception is logged here and leaves as INTERNAL with no exception text.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from cvmatch.platform.errors import DomainError, FieldViolation
from cvmatch.platform.logging import request_id_var

log = logging.getLogger(__name__)

HTTP_STATUS_KEY = "x-cvmatch-http-status"
ERROR_BODY_KEY = "x-cvmatch-error-body"
REQUEST_ID_KEY = "x-request-id"

# Headers every error of the current call carries besides its own: the gateway puts the caller's
# X-RateLimit-* here once the request is admitted, so that no handler attaches them to each error.
error_headers_var: ContextVar[tuple[tuple[str, str], ...]] = ContextVar("error_headers", default=())

INTERNAL_MESSAGE = "An internal error occurred. Retry later; contact support with the request id if it persists."


def error_envelope(err: DomainError, request_id: str) -> dict[str, Any]:
    """The public error body shared by every seed: `detail` keeps CV Matching API clients working,
    `success` and `meta` SkillSync's."""
    details: dict[str, Any] = dict(err.details)
    if err.violations:
        details["fields"] = {v.field: v.description for v in err.violations}
    if err.retry_after_seconds is not None:
        details["retry_after_seconds"] = err.retry_after_seconds
    return {
        "error": {"code": err.reason, "message": err.message, "details": details},
        "detail": err.message,
        "request_id": request_id,
        "success": False,
        "meta": {"timestamp": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "request_id": request_id},
    }


def to_status(err: DomainError, domain: str = "cvmatch") -> status_pb2.Status:
    """The rich status carried in `grpc-status-details-bin`."""
    status = status_pb2.Status(code=err.code.value[0], message=err.message)
    info = error_details_pb2.ErrorInfo(reason=err.reason, domain=domain, metadata=dict(err.details))
    packed = any_pb2.Any()
    packed.Pack(info)
    status.details.append(packed)
    if err.violations:
        bad = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
                for v in err.violations
            ]
        )
        packed = any_pb2.Any()
        packed.Pack(bad)
        status.details.append(packed)
    if err.retry_after_seconds is not None:
        retry = error_details_pb2.RetryInfo()
        retry.retry_delay.seconds = err.retry_after_seconds
        packed = any_pb2.Any()
        packed.Pack(retry)
        status.details.append(packed)
    return status


def error_metadata(err: DomainError, request_id: str) -> list[tuple[str, str | bytes]]:
    """Trailing metadata for a failed call: rich status plus what Envoy's filter renders."""
    md: list[tuple[str, str | bytes]] = [
        ("grpc-status-details-bin", to_status(err).SerializeToString()),
        (ERROR_BODY_KEY, json.dumps(error_envelope(err, request_id), ensure_ascii=True, separators=(",", ":"))),
    ]
    if err.http_status is not None:
        md.append((HTTP_STATUS_KEY, str(err.http_status)))
    if err.retry_after_seconds is not None:
        md.append(("retry-after", str(err.retry_after_seconds)))
    md.extend(err.headers)
    return md


def from_downstream(exc: grpc.aio.AioRpcError) -> DomainError:
    """Rebuilds the domain error another cvmatch service returned, so it reaches the client intact."""
    md = {k: v for k, v in (exc.trailing_metadata() or ())}
    body = md.get(ERROR_BODY_KEY)
    code = exc.code()
    if isinstance(body, str):
        try:
            parsed = json.loads(body)["error"]
            http = md.get(HTTP_STATUS_KEY)
            details = {k: str(v) for k, v in (parsed.get("details") or {}).items() if k not in ("fields",)}
            fields = (parsed.get("details") or {}).get("fields") or {}
            retry = md.get("retry-after")
            return DomainError(
                str(parsed["message"]), str(parsed["code"]), code,
                int(http) if isinstance(http, str) and http.isdigit() else None,
                tuple(FieldViolation(str(f), str(d)) for f, d in fields.items()),
                details, int(retry) if isinstance(retry, str) and retry.isdigit() else None)
        except (ValueError, KeyError, TypeError):
            pass
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return DomainError("A backend service is temporarily unavailable; retry later", "UNAVAILABLE",
                           grpc.StatusCode.UNAVAILABLE, 503)
    return _internal()


def _internal() -> DomainError:
    return DomainError(INTERNAL_MESSAGE, "INTERNAL", grpc.StatusCode.INTERNAL, 500)


async def abort_with(context: grpc.aio.ServicerContext[Any, Any], err: DomainError,
                     extra: list[tuple[str, str]] | None = None) -> None:
    """Ends the call with err; never returns."""
    md = error_metadata(err, request_id_var.get())
    if extra:
        md.extend(extra)
    present = {key for key, _ in md}
    md.extend(h for h in error_headers_var.get() if h[0] not in present)
    await context.abort(err.code, err.message, trailing_metadata=tuple(md))


def _request_id(context: grpc.aio.ServicerContext[Any, Any]) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == REQUEST_ID_KEY and isinstance(value, str) and value:
            return value[:128]
    return uuid.uuid4().hex


Behavior = Callable[..., Any]


def _wrap_unary(behavior: Behavior, method: str) -> Behavior:
    async def wrapper(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        token = request_id_var.set(_request_id(context))
        error_headers_var.set(())
        try:
            return await behavior(request, context)
        except DomainError as err:
            await abort_with(context, err)
        except grpc.aio.AbortError:
            raise
        except grpc.aio.AioRpcError as exc:
            mapped = from_downstream(exc)
            if mapped.reason in ("INTERNAL", "UNAVAILABLE"):
                log.warning("downstream call failed in %s", method, extra={"code": exc.code().name})
            await abort_with(context, mapped)
        except Exception:
            log.exception("unhandled error in %s", method)
            await abort_with(context, _internal())
        finally:
            request_id_var.reset(token)

    return wrapper


def _wrap_stream(behavior: Behavior, method: str) -> Behavior:
    async def wrapper(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
        token = request_id_var.set(_request_id(context))
        error_headers_var.set(())
        try:
            async for item in behavior(request, context):
                yield item
        except DomainError as err:
            await abort_with(context, err)
        except grpc.aio.AbortError:
            raise
        except grpc.aio.AioRpcError as exc:
            mapped = from_downstream(exc)
            if mapped.reason in ("INTERNAL", "UNAVAILABLE"):
                log.warning("downstream call failed in %s", method, extra={"code": exc.code().name})
            await abort_with(context, mapped)
        except Exception:
            log.exception("unhandled error in %s", method)
            await abort_with(context, _internal())
        finally:
            request_id_var.reset(token)

    return wrapper


class ErrorInterceptor(grpc.aio.ServerInterceptor):
    """Sets the request id for logs and maps errors for every method of the server."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method
        if method.startswith("/grpc.health.") or method.startswith("/grpc.reflection."):
            return handler
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                _wrap_unary(handler.unary_unary, method), handler.request_deserializer,
                handler.response_serializer)
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                _wrap_unary(handler.stream_unary, method), handler.request_deserializer,
                handler.response_serializer)
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                _wrap_stream(handler.unary_stream, method), handler.request_deserializer,
                handler.response_serializer)
        if handler.stream_stream:
            return grpc.stream_stream_rpc_method_handler(
                _wrap_stream(handler.stream_stream, method), handler.request_deserializer,
                handler.response_serializer)
        return handler


def status_code_name(code: int) -> str:
    """Name of a google.rpc.Code value, for logs."""
    return str(code_pb2.Code.Name(code))
