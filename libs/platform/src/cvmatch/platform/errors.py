"""Domain errors: raised where the problem is found, mapped once to gRPC at the server edge.

Each error has a gRPC code, a stable reason (the public `error.code`), a message safe to show, optional
field violations and details, and, where gRPC has no matching code, the HTTP status the public edge
must use (402, 413, 422, ...). The interceptor in `cvmatch.platform.server` turns them into a
`google.rpc.Status` with `ErrorInfo` and `BadRequest`, plus response metadata for Envoy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import grpc


@dataclass(frozen=True)
class FieldViolation:
    """One invalid field of a request."""

    field: str
    description: str


@dataclass
class DomainError(Exception):
    """Base of every error a service raises on purpose."""

    message: str
    reason: str = "INTERNAL"
    code: grpc.StatusCode = grpc.StatusCode.INTERNAL
    http_status: int | None = None
    violations: Sequence[FieldViolation] = field(default_factory=tuple)
    details: Mapping[str, str] = field(default_factory=dict)
    retry_after_seconds: int | None = None
    # Response headers the edge must still send with the error (e.g. X-RateLimit-*).
    headers: Sequence[tuple[str, str]] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"


def invalid_input(message: str, field_name: str | None = None, reason: str = "INVALID_INPUT",
                  **details: str) -> DomainError:
    """A request field failed validation (400)."""
    violations = (FieldViolation(field_name, message),) if field_name else ()
    d = dict(details)
    if field_name:
        d.setdefault("field", field_name)
    return DomainError(message, reason, grpc.StatusCode.INVALID_ARGUMENT, 400, violations, d)


def not_found(message: str, reason: str = "NOT_FOUND") -> DomainError:
    """The named resource does not exist or belongs to another account (404)."""
    return DomainError(message, reason, grpc.StatusCode.NOT_FOUND, 404)


def unauthenticated(message: str = "Invalid or missing API key") -> DomainError:
    """No valid credentials (401)."""
    return DomainError(message, "INVALID_API_KEY", grpc.StatusCode.UNAUTHENTICATED, 401)


def permission_denied(message: str, reason: str = "MISSING_PERMISSION") -> DomainError:
    """Authenticated but not allowed (403)."""
    return DomainError(message, reason, grpc.StatusCode.PERMISSION_DENIED, 403)


def rate_limited(message: str, retry_after_seconds: int) -> DomainError:
    """Too many requests (429 with Retry-After)."""
    return DomainError(message, "RATE_LIMIT_EXCEEDED", grpc.StatusCode.RESOURCE_EXHAUSTED, 429,
                       retry_after_seconds=max(1, retry_after_seconds))


def insufficient_credits(message: str, **details: str) -> DomainError:
    """The credit balance is short (402; gRPC has no such code, FAILED_PRECONDITION carries it)."""
    return DomainError(message, "INSUFFICIENT_CREDITS", grpc.StatusCode.FAILED_PRECONDITION, 402,
                       details=dict(details))


def payload_too_large(message: str, field_name: str | None = None, **details: str) -> DomainError:
    """An upload exceeds a size limit (413)."""
    violations = (FieldViolation(field_name, message),) if field_name else ()
    return DomainError(message, "PAYLOAD_TOO_LARGE", grpc.StatusCode.INVALID_ARGUMENT, 413, violations,
                       dict(details))


def conflict(message: str, reason: str = "CONFLICT") -> DomainError:
    """A concurrent request holds the same resource (409)."""
    return DomainError(message, reason, grpc.StatusCode.ABORTED, 409)


def unprocessable(message: str, reason: str) -> DomainError:
    """The request is well formed but contradicts an earlier one (422)."""
    return DomainError(message, reason, grpc.StatusCode.FAILED_PRECONDITION, 422)


def unavailable(message: str, reason: str = "UNAVAILABLE", http_status: int = 503) -> DomainError:
    """A dependency is down; safe to retry."""
    return DomainError(message, reason, grpc.StatusCode.UNAVAILABLE, http_status)


def already_exists(message: str, reason: str = "ALREADY_EXISTS") -> DomainError:
    """The resource exists already (409)."""
    return DomainError(message, reason, grpc.StatusCode.ALREADY_EXISTS, 409)
