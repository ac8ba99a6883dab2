"""Account-level stored credentials, referenced by name from ``source_config_json`` (``"credential"``).

The batch row only ever holds the *name*. :class:`FileCredentialStore` is the self-hosted store: a JSON
file the operator manages (mounted from a Kubernetes Secret, for instance), re-read on every lookup so a
rotated key applies to the next batch without a restart::

    {"<account id, or * for every account>": {"<name>": {"kind": "aws", "secret": {...}}}}

with ``kind`` ``aws`` (``{"access_key_id", "secret_access_key", "session_token"?}``) or
``google_service_account`` (the key file Google issues). Another store (a table with encrypted secrets, a
vault) only has to implement :class:`CredentialStore`.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cvmatch.platform.errors import invalid_input

from .config import DatabaseConfig, DriveConfig, S3Config, SourceConfig
from .credentials import AwsCredentials, GoogleServiceAccount, SourceCredentials, parse_stored_credential
from .errors import CONFIG_FIELD

_CREDENTIAL_FIELD = f"{CONFIG_FIELD}.credential"


class CredentialStore(Protocol):
    """Looks up an account's stored credential by name; ``None`` when there is none by that name."""

    async def get(self, account_id: str, name: str) -> SourceCredentials | None:
        """The credential ``name`` of ``account_id``."""
        ...


@dataclass(frozen=True, slots=True)
class FileCredentialStore:
    """Credentials from an operator-managed JSON file (see the module docstring)."""

    path: Path

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    async def get(self, account_id: str, name: str) -> SourceCredentials | None:
        """The account's own entry wins over a ``*`` entry of the same name."""
        data = await asyncio.to_thread(self._read)
        for scope in (account_id, "*"):
            entries = data.get(scope)
            entry = entries.get(name) if isinstance(entries, dict) else None
            if isinstance(entry, dict):
                return parse_stored_credential(
                    str(entry.get("kind", "")), json.dumps(entry.get("secret")), field_name=_CREDENTIAL_FIELD
                )
        return None


async def resolve_credentials(
    config: SourceConfig, account_id: str, store: CredentialStore | None
) -> SourceCredentials | None:
    """The credential a config names, checked against its source; ``None`` when it names none.

    Raises a 400 naming ``source_config_json.credential`` when the name is unknown for the account or the
    credential is of the wrong kind (an AWS key for a Drive folder).
    """
    if isinstance(config, DatabaseConfig) or config.credential_name is None:
        return None
    found = await store.get(account_id, config.credential_name) if store is not None else None
    if found is None:
        raise invalid_input(
            f"No stored credential named '{config.credential_name}' for this account.", _CREDENTIAL_FIELD
        )
    expected: type = AwsCredentials if isinstance(config, S3Config) else GoogleServiceAccount
    if not isinstance(found, expected):
        what = "an AWS access key" if isinstance(config, S3Config) else "a Google service-account key"
        raise invalid_input(f"The stored credential '{config.credential_name}' is not {what}.", _CREDENTIAL_FIELD)
    return found


def restore_config(kind: str, stored: dict[str, Any]) -> SourceConfig | None:
    """Rebuilds a config from its :meth:`storable` form, for a worker that resumes a batch after a
    restart; ``None`` when the source cannot be re-opened without a secret that was never stored (a Drive
    ``access_token`` given for one batch, a database connection string)."""
    if kind == "aws_s3":
        return S3Config(
            bucket=stored["bucket"],
            prefix=stored.get("prefix") or "",
            region=stored.get("region"),
            endpoint_url=stored.get("endpoint_url"),
            credential_name=stored.get("credential"),
            recursive=bool(stored.get("recursive", True)),
        )
    if kind == "google_drive" and stored.get("credential"):
        return DriveConfig(
            folder_id=stored["folder_id"],
            recursive=bool(stored.get("recursive", False)),
            credential_name=stored["credential"],
        )
    return None
