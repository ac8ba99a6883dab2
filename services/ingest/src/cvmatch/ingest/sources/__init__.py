"""Candidate sources beyond uploads: S3 (and S3-compatible) buckets, Google Drive folders, database queries.

The ingest service's one seam (see :mod:`.api`):

* :func:`parse_source_config` validates ``source_config_json`` for ``AWS_S3`` / ``GOOGLE_DRIVE`` /
  ``DATABASE`` (400 ``INVALID_INPUT`` naming the field);
* :func:`open_source` / :func:`list_items` list the candidates (count them before reserving credits);
* :func:`iter_fetch` / :func:`fetch` stream their content within the per-file limit, as
  :class:`FetchedItem` values that go through the same detection and sandboxed extraction as uploads;
* :class:`SourceError` is a whole-source failure with a secret-free message.
"""

from ..extraction.outcomes import Outcome
from .api import ItemCount, count_items, fetch, iter_fetch, list_items, open_source
from .base import Source
from .config import (
    ColumnMapping,
    DatabaseConfig,
    DatabaseType,
    DriveConfig,
    S3Config,
    SourceConfig,
    SourceKind,
    parse_source_config,
)
from .credentials import AwsCredentials, GoogleServiceAccount, OAuthToken, SourceCredentials, parse_stored_credential
from .errors import CONFIG_FIELD, ItemGone, SourceError, SourceFailure, scrub
from .items import FetchedItem, SourceItem
from .secrets import Secret
from .settings import SourceSettings
from .store import CredentialStore, FileCredentialStore, resolve_credentials, restore_config

__all__ = [
    "CONFIG_FIELD",
    "AwsCredentials",
    "ColumnMapping",
    "CredentialStore",
    "DatabaseConfig",
    "DatabaseType",
    "DriveConfig",
    "FetchedItem",
    "FileCredentialStore",
    "GoogleServiceAccount",
    "ItemCount",
    "ItemGone",
    "OAuthToken",
    "Outcome",
    "S3Config",
    "Secret",
    "Source",
    "SourceConfig",
    "SourceCredentials",
    "SourceError",
    "SourceFailure",
    "SourceItem",
    "SourceKind",
    "SourceSettings",
    "count_items",
    "fetch",
    "iter_fetch",
    "list_items",
    "open_source",
    "parse_source_config",
    "parse_stored_credential",
    "resolve_credentials",
    "restore_config",
    "scrub",
]
