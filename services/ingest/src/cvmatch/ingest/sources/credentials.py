"""Credentials a source reads with, resolved by the ingest service before listing.

A batch's ``source_config_json`` only *names* a stored credential (``credential``) or, for Google Drive,
carries a short-lived OAuth access token; the secret itself is looked up by the service from the account's
credential store and passed here as one of these values. None of them prints its secret.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from cvmatch.platform.errors import DomainError, invalid_input

from .secrets import Secret


@dataclass(frozen=True, slots=True)
class AwsCredentials:
    """An access key pair (and session token, for temporary credentials)."""

    access_key_id: str
    secret_access_key: Secret = field(repr=False)
    session_token: Secret | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class GoogleServiceAccount:
    """The parts of a Google service-account key file the JWT bearer flow needs."""

    client_email: str
    private_key: Secret = field(repr=False)
    private_key_id: str | None = None


@dataclass(frozen=True, slots=True)
class OAuthToken:
    """An OAuth 2.0 access token for one batch (Google Drive)."""

    access_token: Secret = field(repr=False)


SourceCredentials = AwsCredentials | GoogleServiceAccount | OAuthToken


def _field(obj: dict[str, Any], name: str, where: str) -> str:
    value = obj.get(name)
    if not isinstance(value, str) or not value.strip():
        raise invalid_input(f"The stored credential has no '{name}'.", where)
    return value.strip()


def parse_stored_credential(kind: str, secret_json: str, *, field_name: str = "credential") -> SourceCredentials:
    """Builds credentials from a stored JSON secret.

    ``kind`` is ``aws`` (``{"access_key_id", "secret_access_key", "session_token"?}``; the AWS CLI's
    ``aws_access_key_id`` spellings are accepted) or ``google_service_account`` (the key file Google
    issues). Errors name ``field_name`` and never quote the secret.
    """
    try:
        obj = json.loads(secret_json)
    except (json.JSONDecodeError, TypeError):
        raise invalid_input("The stored credential is not valid JSON.", field_name) from None
    if not isinstance(obj, dict):
        raise invalid_input("The stored credential must be a JSON object.", field_name)
    if kind == "aws":
        for long, short in (
            ("aws_access_key_id", "access_key_id"),
            ("aws_secret_access_key", "secret_access_key"),
            ("aws_session_token", "session_token"),
        ):
            if long in obj and short not in obj:
                obj[short] = obj[long]
        token = obj.get("session_token")
        return AwsCredentials(
            access_key_id=_field(obj, "access_key_id", field_name),
            secret_access_key=Secret(_field(obj, "secret_access_key", field_name)),
            session_token=Secret(token) if isinstance(token, str) and token else None,
        )
    if kind == "google_service_account":
        if obj.get("type", "service_account") != "service_account":
            raise invalid_input("The stored credential is not a Google service-account key.", field_name)
        key = _field(obj, "private_key", field_name)
        if "PRIVATE KEY" not in key:
            raise invalid_input("The service-account key has no PEM private key.", field_name)
        key_id = obj.get("private_key_id")
        return GoogleServiceAccount(
            client_email=_field(obj, "client_email", field_name),
            private_key=Secret(key),
            private_key_id=key_id if isinstance(key_id, str) else None,
        )
    raise DomainError(f"Unknown credential kind {kind!r}.")  # a programming error, not bad input
