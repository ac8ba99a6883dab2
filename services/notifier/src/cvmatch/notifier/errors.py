"""Errors the notifier service raises; each carries its gRPC code and stable public reason."""

from __future__ import annotations

from cvmatch.notifier.webhooks import WebhookDestinationError
from cvmatch.platform.errors import DomainError, invalid_input, not_found

__all__ = ["DomainError", "destination_refused", "invalid_input", "not_found"]


def destination_refused(exc: WebhookDestinationError, field_name: str = "url") -> DomainError:
    """A refused webhook URL as a 400 with the seeds' code (INSECURE_WEBHOOK_URL, PRIVATE_WEBHOOK_URL...)."""
    return invalid_input(exc.message, field_name, reason=exc.reason)
