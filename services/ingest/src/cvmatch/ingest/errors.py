"""Errors the ingest service raises; each carries its gRPC code and stable public reason."""

from __future__ import annotations

from cvmatch.ingest.extraction import ExtractionRequestError, PayloadTooLarge
from cvmatch.platform.errors import (
    DomainError,
    conflict,
    invalid_input,
    not_found,
    payload_too_large,
    unprocessable,
)

__all__ = [
    "DomainError",
    "batch_not_found",
    "candidate_not_found",
    "from_request_error",
    "idempotency_in_flight",
    "idempotency_key_reused",
    "invalid_input",
    "not_found",
    "payload_too_large",
]


def from_request_error(exc: ExtractionRequestError) -> DomainError:
    """The public error for a whole-request problem found while checking an upload."""
    if isinstance(exc, PayloadTooLarge):
        return payload_too_large(exc.message, exc.field, outcome=exc.outcome.value)
    return invalid_input(exc.message, exc.field, reason=exc.reason, outcome=exc.outcome.value)


def idempotency_key_reused() -> DomainError:
    """The key was used in the last 24 h for a different request (422)."""
    return unprocessable("This Idempotency-Key was already used with a different request; use a new key.",
                         "IDEMPOTENCY_KEY_REUSED")


def idempotency_in_flight() -> DomainError:
    """The same request is still being accepted (409); retrying shortly returns its batch."""
    return conflict("A request with this Idempotency-Key is still being processed; retry shortly.",
                    "IDEMPOTENCY_REQUEST_IN_PROGRESS")


def batch_not_found(batch_id: str) -> DomainError:
    """No such batch for this account (another account's batch is reported the same way)."""
    return not_found(f"Batch {batch_id!r} not found")


def candidate_not_found(candidate_id: str) -> DomainError:
    """No such candidate."""
    return not_found(f"Candidate {candidate_id!r} not found")
