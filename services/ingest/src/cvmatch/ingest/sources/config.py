"""Parsing and validating ``source_config_json`` into typed, immutable source configurations.

Pure: no I/O. Every problem is a 400 ``INVALID_INPUT`` whose field violation names the exact key
(``source_config_json.bucket``). Secrets in a config (a database connection string, a Drive access token)
are wrapped in :class:`~.secrets.Secret`, so a config can be logged or put in an exception safely, and
:meth:`storable` gives the part that may be written to the batch row.
"""

from __future__ import annotations

import enum
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from cvmatch.platform.errors import DomainError, invalid_input

from .errors import CONFIG_FIELD
from .secrets import Secret
from .sql import QueryRejected, check_select_only

#: Largest ``source_config_json`` accepted, in bytes.
MAX_CONFIG_BYTES = 64 * 1024


class SourceKind(enum.StrEnum):
    """The public ``input_type`` values that are read from a remote source (lower-case, as stored)."""

    AWS_S3 = "aws_s3"
    GOOGLE_DRIVE = "google_drive"
    DATABASE = "database"

    @classmethod
    def parse(cls, input_type: str) -> SourceKind | None:
        """``AWS_S3``, ``aws_s3``, ``INPUT_TYPE_AWS_S3``... -> the kind; ``None`` for upload types."""
        key = input_type.strip().lower().removeprefix("input_type_")
        try:
            return cls(key)
        except ValueError:
            return None


class DatabaseType(enum.StrEnum):
    """The database engines a ``DATABASE`` source may query."""

    POSTGRESQL = "postgresql"
    MYSQL = "mysql"
    SQLITE = "sqlite"


_DB_TYPE_ALIASES = {
    "postgresql": DatabaseType.POSTGRESQL,
    "postgres": DatabaseType.POSTGRESQL,
    "mysql": DatabaseType.MYSQL,
    "mariadb": DatabaseType.MYSQL,
    "sqlite": DatabaseType.SQLITE,
    "sqlite3": DatabaseType.SQLITE,
}
_PG_OPTIONS = frozenset({"sslmode", "target_session_attrs", "connect_timeout", "application_name"})
_MYSQL_OPTIONS = frozenset({"ssl", "charset"})
_DB_SCHEMES = {
    DatabaseType.POSTGRESQL: ("postgresql", "postgres"),
    DatabaseType.MYSQL: ("mysql", "mariadb"),
    DatabaseType.SQLITE: ("sqlite",),
}


@dataclass(frozen=True, slots=True)
class S3Config:
    """An S3 (or S3-compatible) bucket and prefix. ``credential_name`` names a stored credential; ``None``
    means the server's own AWS identity."""

    bucket: str
    prefix: str = ""
    region: str | None = None
    endpoint_url: str | None = None
    credential_name: str | None = None
    recursive: bool = True

    kind = SourceKind.AWS_S3

    def storable(self) -> dict[str, Any]:
        """What may be stored with the batch (no secret in it)."""
        return {
            "bucket": self.bucket,
            "prefix": self.prefix,
            "region": self.region,
            "endpoint_url": self.endpoint_url,
            "credential": self.credential_name,
            "recursive": self.recursive,
        }

    def describe(self) -> str:
        """A short, secret-free label for logs."""
        return f"s3://{self.bucket}/{self.prefix}"


@dataclass(frozen=True, slots=True)
class DriveConfig:
    """A Google Drive folder. Exactly one of ``access_token`` (an OAuth token for this batch) and
    ``credential_name`` (a stored service-account key) is set."""

    folder_id: str
    recursive: bool = False
    access_token: Secret | None = field(default=None, repr=False)
    credential_name: str | None = None

    kind = SourceKind.GOOGLE_DRIVE

    def storable(self) -> dict[str, Any]:
        """What may be stored with the batch: the token is a secret and is left out."""
        return {
            "folder_id": self.folder_id,
            "recursive": self.recursive,
            "credential": self.credential_name,
            "access_token_supplied": self.access_token is not None,
        }

    def describe(self) -> str:
        """A short, secret-free label for logs."""
        return f"drive folder {self.folder_id}"


@dataclass(frozen=True, slots=True)
class ColumnMapping:
    """Which result columns hold what. ``resume_text=None`` with ``file=None`` means "find the text
    column by its usual names" (``resume_text``, ``resume_content``, ...)."""

    id: str = "id"
    name: str | None = "name"
    resume_text: str | None = None
    file: str | None = None
    filename: str | None = None


@dataclass(frozen=True, slots=True)
class DatabaseConfig:
    """A read-only query against a PostgreSQL, MySQL/MariaDB or SQLite database."""

    type: DatabaseType
    connection_string: Secret = field(repr=False)
    query: str
    columns: ColumnMapping = field(default_factory=ColumnMapping)
    max_rows: int | None = None

    kind = SourceKind.DATABASE

    def storable(self) -> dict[str, Any]:
        """What may be stored with the batch: never the connection string."""
        c = self.columns
        return {
            "type": self.type.value,
            "query": self.query,
            "max_rows": self.max_rows,
            "columns": {
                "id": c.id,
                "name": c.name,
                "resume_text": c.resume_text,
                "file": c.file,
                "filename": c.filename,
            },
        }

    def describe(self) -> str:
        """A short, secret-free label for logs (no host, user or database name)."""
        return f"{self.type.value} query"


SourceConfig = S3Config | DriveConfig | DatabaseConfig


def _f(key: str) -> str:
    return f"{CONFIG_FIELD}.{key}"


class _Reader:
    """Typed access to the JSON object that reports unknown keys and names every bad field."""

    def __init__(self, obj: dict[str, Any], aliases: dict[str, str]) -> None:
        self.values: dict[str, Any] = {}
        for key, value in obj.items():
            canonical = aliases.get(key, key)
            if canonical in self.values:
                raise invalid_input(f"'{key}' repeats '{canonical}'; give it once.", _f(key))
            self.values[canonical] = value

    def check_known(self, known: set[str]) -> None:
        for key in self.values:
            if key not in known:
                raise invalid_input(f"Unknown field '{key}'; expected one of: {', '.join(sorted(known))}.", _f(key))

    def text(self, key: str, *, required: bool = False, max_len: int = 1024) -> str | None:
        value = self.values.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                raise invalid_input(f"'{key}' is required.", _f(key))
            return None
        if not isinstance(value, str):
            raise invalid_input(f"'{key}' must be a string.", _f(key))
        if len(value) > max_len:
            raise invalid_input(f"'{key}' is longer than {max_len} characters.", _f(key))
        return value.strip()

    def flag(self, key: str, default: bool) -> bool:
        value = self.values.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise invalid_input(f"'{key}' must be true or false.", _f(key))
        return value

    def positive_int(self, key: str) -> int | None:
        value = self.values.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise invalid_input(f"'{key}' must be a positive integer.", _f(key))
        return value


_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$")
_REGION = re.compile(r"^[a-z0-9][a-z0-9-]{0,30}[a-z0-9]$")
_CREDENTIAL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_DRIVE_ID = re.compile(r"^[A-Za-z0-9_-]{1,200}$")
_DRIVE_FOLDER_URL = re.compile(r"/folders/([A-Za-z0-9_-]+)")
_COLUMN = re.compile(r"^[^\x00-\x1f]{1,128}$")
# Keys a client might try for inline AWS secrets: refused with a pointer to stored credentials.
_INLINE_AWS_SECRETS = (
    "access_key_id",
    "secret_access_key",
    "aws_access_key_id",
    "aws_secret_access_key",
    "session_token",
    "aws_session_token",
)


def _credential_name(r: _Reader) -> str | None:
    name = r.text("credential", max_len=100)
    if name is not None and not _CREDENTIAL_NAME.match(name):
        raise invalid_input(
            "'credential' must be the name of a stored credential (letters, digits, . _ -).", _f("credential")
        )
    return name


def _endpoint_url(value: str | None) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise invalid_input("'endpoint_url' must be an http(s) URL such as https://s3.example.com.", _f("endpoint_url"))
    if parts.username or parts.password:
        raise invalid_input(
            "'endpoint_url' must not contain credentials; reference a stored credential.", _f("endpoint_url")
        )
    if parts.query or parts.fragment or parts.path not in ("", "/"):
        raise invalid_input("'endpoint_url' must be a bare scheme://host[:port].", _f("endpoint_url"))
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise invalid_input("'endpoint_url' has an invalid port.", _f("endpoint_url")) from None
    return f"{parts.scheme}://{parts.netloc}"


def _parse_s3(r: _Reader) -> S3Config:
    for key in _INLINE_AWS_SECRETS:
        if key in r.values:
            raise invalid_input(
                "AWS keys are not accepted in source_config_json; store them as an account "
                "credential and reference it with 'credential'.",
                _f(key),
            )
    r.check_known({"bucket", "prefix", "region", "endpoint_url", "credential", "recursive"})
    bucket = r.text("bucket", required=True, max_len=1100)
    assert bucket is not None
    prefix = r.text("prefix", max_len=1024) or ""
    if bucket.startswith("s3://"):  # "s3://bucket/some/prefix" is what people copy from the console
        bucket, _, url_prefix = bucket.removeprefix("s3://").partition("/")
        if url_prefix and prefix:
            raise invalid_input("Give the prefix either in 'bucket' (s3://bucket/prefix) or in 'prefix'.", _f("prefix"))
        prefix = prefix or url_prefix
    if not _BUCKET.match(bucket) or ".." in bucket:
        raise invalid_input(
            "'bucket' is not a valid bucket name (3-63 lower-case letters, digits, '.', '-').", _f("bucket")
        )
    region = r.text("region", max_len=32)
    if region is not None and not _REGION.match(region):
        raise invalid_input("'region' is not a valid region name, e.g. eu-west-1.", _f("region"))
    return S3Config(
        bucket=bucket,
        prefix=prefix.lstrip("/"),
        region=region,
        endpoint_url=_endpoint_url(r.text("endpoint_url", max_len=2048)),
        credential_name=_credential_name(r),
        recursive=r.flag("recursive", True),
    )


def _parse_drive(r: _Reader) -> DriveConfig:
    r.check_known({"folder_id", "recursive", "access_token", "credential"})
    folder = r.text("folder_id", required=True, max_len=2048)
    assert folder is not None
    if "/" in folder:  # a folder URL pasted from the browser
        m = _DRIVE_FOLDER_URL.search(folder)
        if m is None:
            raise invalid_input("'folder_id' must be a Drive folder id or a .../folders/<id> URL.", _f("folder_id"))
        folder = m.group(1)
    if not _DRIVE_ID.match(folder):
        raise invalid_input("'folder_id' is not a valid Google Drive id.", _f("folder_id"))
    token = r.text("access_token", max_len=4096)
    if token is not None and any(c.isspace() for c in token):
        raise invalid_input("'access_token' must be a bare OAuth access token.", _f("access_token"))
    credential = _credential_name(r)
    if token is None and credential is None:
        raise invalid_input(
            "Give an OAuth 'access_token' or the name of a stored service-account 'credential'.", _f("access_token")
        )
    if token is not None and credential is not None:
        raise invalid_input("Give either 'access_token' or 'credential', not both.", _f("credential"))
    return DriveConfig(
        folder_id=folder,
        recursive=r.flag("recursive", False),
        access_token=Secret(token) if token else None,
        credential_name=credential,
    )


def _column(r: _Reader, key: str, columns: dict[str, Any], ckey: str, default: str | None) -> str | None:
    value = columns.get(ckey, r.values.get(key))
    if value is None:
        return default
    if not isinstance(value, str) or not _COLUMN.match(value):
        where = f"columns.{ckey}" if ckey in columns else key
        raise invalid_input(f"'{where}' must be a column name of the query result.", _f(where))
    return value


def _check_connection_string(db_type: DatabaseType, conn: str) -> None:
    # The messages below never quote the connection string: it holds a password.
    field_name = _f("connection_string")
    scheme, sep, rest = conn.partition("://")
    if not sep or scheme.lower() not in _DB_SCHEMES[db_type]:
        expected = " or ".join(f"{s}://" for s in _DB_SCHEMES[db_type])
        raise invalid_input(f"'connection_string' must start with {expected} for type '{db_type.value}'.", field_name)
    if db_type is DatabaseType.SQLITE:
        if not rest.startswith("/") or len(rest) < 2:
            raise invalid_input("'connection_string' must be sqlite:///<path to the database file>.", field_name)
        return
    try:
        parts = urlsplit(conn)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise invalid_input("'connection_string' is not a valid URL.", field_name) from None
    if not parts.hostname:
        raise invalid_input("'connection_string' has no host.", field_name)
    if not parts.username:
        raise invalid_input("'connection_string' has no user name (scheme://user:password@host/db).", field_name)
    # Only harmless options: others (host=/unix/socket, passfile=, sslkey=...) would make the server use
    # its own sockets, files or identity on behalf of a client.
    allowed = _PG_OPTIONS if db_type is DatabaseType.POSTGRESQL else _MYSQL_OPTIONS
    for key in parse_qs(parts.query, keep_blank_values=True):
        if key not in allowed:
            raise invalid_input(
                f"'connection_string' option '{key[:40]}' is not supported; allowed: {', '.join(sorted(allowed))}.",
                field_name,
            )
    if db_type is DatabaseType.MYSQL and not unquote(parts.path.lstrip("/")):
        raise invalid_input("'connection_string' must name the database (mysql://user:pass@host/db).", field_name)


def _parse_database(r: _Reader, *, max_rows_limit: int) -> DatabaseConfig:
    r.check_known(
        {
            "type",
            "connection_string",
            "query",
            "columns",
            "id_column",
            "name_column",
            "resume_text_column",
            "file_column",
            "filename_column",
            "max_rows",
        }
    )
    raw_type = r.text("type", required=True, max_len=32)
    assert raw_type is not None
    db_type = _DB_TYPE_ALIASES.get(raw_type.lower())
    if db_type is None:
        raise invalid_input(
            f"Unknown database 'type' {raw_type!r}; expected one of: postgresql, mysql, sqlite.",
            _f("type"),
            provided=raw_type[:32],
            expected="postgresql, mysql, sqlite",
        )
    conn = r.text("connection_string", required=True, max_len=4096)
    assert conn is not None
    _check_connection_string(db_type, conn)
    query = r.text("query", required=True, max_len=20_000)
    assert query is not None
    try:
        query = check_select_only(query)
    except QueryRejected as exc:
        raise invalid_input(str(exc), _f("query")) from None
    columns = r.values.get("columns") or {}
    if not isinstance(columns, dict):
        raise invalid_input('\'columns\' must be an object such as {"id": "id", "resume_text": "cv"}.', _f("columns"))
    unknown = set(columns) - {"id", "name", "resume_text", "file", "filename"}
    if unknown:
        key = sorted(unknown)[0]
        raise invalid_input(
            f"Unknown column mapping '{key}'; expected id, name, resume_text, file, filename.", _f(f"columns.{key}")
        )
    mapping = ColumnMapping(
        id=_column(r, "id_column", columns, "id", "id") or "id",
        name=_column(r, "name_column", columns, "name", "name"),
        resume_text=_column(r, "resume_text_column", columns, "resume_text", None),
        file=_column(r, "file_column", columns, "file", None),
        filename=_column(r, "filename_column", columns, "filename", None),
    )
    if mapping.resume_text and mapping.file:
        raise invalid_input("Map either a 'resume_text' column or a 'file' column, not both.", _f("columns.file"))
    if mapping.file and not mapping.filename:
        raise invalid_input(
            "A 'file' column needs a 'filename' column (its extension gives the type).", _f("columns.filename")
        )
    max_rows = r.positive_int("max_rows")
    if max_rows is not None and max_rows > max_rows_limit:
        raise invalid_input(f"'max_rows' must be at most {max_rows_limit}.", _f("max_rows"))
    return DatabaseConfig(type=db_type, connection_string=Secret(conn), query=query, columns=mapping, max_rows=max_rows)


_ALIASES: dict[SourceKind, dict[str, str]] = {
    SourceKind.AWS_S3: {
        "bucket_name": "bucket",
        "region_name": "region",
        "credential_name": "credential",
        "endpoint": "endpoint_url",
    },
    SourceKind.GOOGLE_DRIVE: {
        "folder": "folder_id",
        "folderId": "folder_id",
        "token": "access_token",
        "credential_name": "credential",
    },
    SourceKind.DATABASE: {
        "db_type": "type",
        "database_type": "type",
        "connection_url": "connection_string",
        "dsn": "connection_string",
        "sql": "query",
    },
}


def parse_source_config(input_type: str, source_config_json: str, *, max_rows_limit: int = 10_000) -> SourceConfig:
    """Validates ``source_config_json`` for a remote ``input_type`` and returns its typed config.

    Raises a 400 ``INVALID_INPUT`` :class:`~cvmatch.platform.errors.DomainError` whose field violation
    names the key at fault (``source_config_json.query``), for: an ``input_type`` that has no remote
    source, invalid JSON, a missing or mistyped field, an unknown field, an unknown database ``type``, a
    query that is not a single read-only SELECT, AWS keys given inline. Error messages never quote a
    connection string or token. ``max_rows_limit`` is :attr:`SourceSettings.db_max_rows`.
    """
    kind = SourceKind.parse(input_type)
    if kind is None:
        raise invalid_input(f"input_type {input_type!r} does not read a remote source.", "input_type")
    if not source_config_json or not source_config_json.strip():
        raise invalid_input(f"source_config_json is required for input_type {kind.value}.", CONFIG_FIELD)
    if len(source_config_json.encode("utf-8", "surrogatepass")) > MAX_CONFIG_BYTES:
        raise invalid_input(f"source_config_json is larger than {MAX_CONFIG_BYTES} bytes.", CONFIG_FIELD)
    try:
        obj = json.loads(source_config_json)
    except json.JSONDecodeError as exc:
        # The position only: the text may contain a password.
        raise invalid_input(
            f"source_config_json is not valid JSON (line {exc.lineno}, column {exc.colno}).", CONFIG_FIELD
        ) from None
    if not isinstance(obj, dict):
        raise invalid_input("source_config_json must be a JSON object.", CONFIG_FIELD)
    reader = _Reader(obj, _ALIASES[kind])
    try:
        if kind is SourceKind.AWS_S3:
            return _parse_s3(reader)
        if kind is SourceKind.GOOGLE_DRIVE:
            return _parse_drive(reader)
        return _parse_database(reader, max_rows_limit=max_rows_limit)
    except DomainError:
        raise
    except (ValueError, TypeError) as exc:  # pragma: no cover - a validator bug must still be a 400
        raise invalid_input("source_config_json is invalid.", CONFIG_FIELD) from exc
