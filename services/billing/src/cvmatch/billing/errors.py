"""Errors the billing service raises; each carries its gRPC code and stable public reason."""

from __future__ import annotations

from cvmatch.platform.errors import DomainError, invalid_input, not_found

__all__ = ["DomainError", "invalid_input", "not_found"]
