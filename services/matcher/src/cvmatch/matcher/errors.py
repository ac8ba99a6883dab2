"""Errors the matcher service raises; each carries its gRPC code and stable public reason."""

from __future__ import annotations

from cvmatch.matcher.engine import InvalidRequirements
from cvmatch.platform.errors import DomainError, invalid_input, not_found

__all__ = ["DomainError", "invalid_input", "invalid_requirements", "not_found", "result_not_found"]


def invalid_requirements(exc: InvalidRequirements) -> DomainError:
    """A requirements configuration field is wrong; the violation names the field inside the JSON."""
    return invalid_input(f"requirements_json.{exc.field}: {exc.message}", f"requirements_json.{exc.field}")


def result_not_found(candidate_id: str) -> DomainError:
    """No stored result or failure for the candidate (it may not have been processed yet)."""
    return not_found(f"No result for candidate {candidate_id!r}")
