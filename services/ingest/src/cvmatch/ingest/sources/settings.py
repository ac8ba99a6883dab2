"""Limits and endpoints of the candidate sources, read once from the environment and passed down."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cvmatch.platform.settings import Env, SettingsError

_MB = 1024 * 1024

DRIVE_API_URL = "https://www.googleapis.com/drive/v3"
DRIVE_TOKEN_URL = "https://oauth2.googleapis.com/token"


@dataclass(frozen=True, slots=True)
class SourceSettings:
    """Everything the sources need; nothing below this reads the environment.

    The ingest service builds one with :meth:`from_env` (``INGEST_SOURCE_*`` variables) next to its
    other settings and passes it to every call of this package.
    """

    #: Largest single file or row, in bytes (the upload per-file limit: 5 MB).
    max_file_bytes: int = 5 * _MB
    #: Most items (objects, files, rows) one source may list; more is a 413 asking to narrow it.
    max_items: int = 10_000
    #: Largest sum of inline row payloads a database query may return (rows are held until spooled).
    max_total_inline_bytes: int = 500 * _MB
    #: Page size of S3 ListObjectsV2 and Drive files.list (both cap at 1000).
    list_page_size: int = 1000
    #: Most folders a recursive Drive listing walks (cycles and runaway trees stop here).
    max_drive_folders: int = 1000
    connect_timeout_seconds: float = 10.0
    read_timeout_seconds: float = 60.0
    #: Attempts for one HTTP call on a transient failure (429, 5xx, connection reset), backoff between.
    max_attempts: int = 3
    #: Server-side statement timeout of a source query.
    db_statement_timeout_seconds: float = 30.0
    #: Most rows a source query may return; more is a 413 asking for a narrower query.
    db_max_rows: int = 10_000
    #: Directories SQLite files may be read from; empty disables SQLite sources (a path supplied by a
    #: client must never open arbitrary files on the ingest host).
    sqlite_dirs: tuple[Path, ...] = ()
    drive_api_url: str = DRIVE_API_URL
    #: Token endpoint of the service-account JWT bearer flow. The ``token_uri`` inside a stored
    #: service-account JSON is ignored: following it would let a crafted key file aim the server at any URL.
    drive_token_url: str = DRIVE_TOKEN_URL
    #: Use the server's own AWS identity (environment, profile, instance or pod role) when a batch names
    #: no stored credential. Multi-tenant deployments turn this off so that one account cannot read
    #: buckets only the server's role may read.
    s3_ambient_credentials: bool = True
    #: Also send the server's own AWS identity to a client-supplied ``endpoint_url``; off by default so a
    #: batch cannot make the server sign requests for a host of the client's choosing.
    s3_ambient_credentials_custom_endpoint: bool = False
    #: The operator-managed credentials file of :class:`~.store.FileCredentialStore` (``None``: no
    #: stored credentials, so only the S3 default identity and Drive access tokens work).
    credentials_file: Path | None = None

    def __post_init__(self) -> None:
        for name in (
            "max_file_bytes",
            "max_items",
            "max_total_inline_bytes",
            "list_page_size",
            "max_drive_folders",
            "max_attempts",
            "db_max_rows",
        ):
            if getattr(self, name) <= 0:
                raise SettingsError(f"SourceSettings.{name} must be positive")
        if not 1 <= self.list_page_size <= 1000:
            raise SettingsError("SourceSettings.list_page_size must be between 1 and 1000")
        if min(self.connect_timeout_seconds, self.read_timeout_seconds, self.db_statement_timeout_seconds) <= 0:
            raise SettingsError("SourceSettings timeouts must be positive")

    @classmethod
    def from_env(cls, env: Env | None = None, *, max_file_bytes: int = 5 * _MB) -> SourceSettings:
        """Reads ``INGEST_SOURCE_*``; ``max_file_bytes`` comes from the service's extraction limits."""
        env = env or Env()
        p = "INGEST_SOURCE_"
        dirs = tuple(Path(d).resolve() for d in (env.optional(f"{p}SQLITE_DIRS") or "").split(":") if d.strip())
        return cls(
            max_file_bytes=max_file_bytes,
            max_items=env.int(f"{p}MAX_ITEMS", 10_000, minimum=1),
            max_total_inline_bytes=env.int(f"{p}MAX_TOTAL_INLINE_BYTES", 500 * _MB, minimum=1),
            list_page_size=env.int(f"{p}LIST_PAGE_SIZE", 1000, minimum=1, maximum=1000),
            max_drive_folders=env.int(f"{p}MAX_DRIVE_FOLDERS", 1000, minimum=1),
            connect_timeout_seconds=env.float(f"{p}CONNECT_TIMEOUT_SECONDS", 10.0, minimum=0.1),
            read_timeout_seconds=env.float(f"{p}READ_TIMEOUT_SECONDS", 60.0, minimum=0.1),
            max_attempts=env.int(f"{p}MAX_ATTEMPTS", 3, minimum=1, maximum=10),
            db_statement_timeout_seconds=env.float(f"{p}DB_STATEMENT_TIMEOUT_SECONDS", 30.0, minimum=0.1),
            db_max_rows=env.int(f"{p}DB_MAX_ROWS", 10_000, minimum=1),
            sqlite_dirs=dirs,
            drive_api_url=env.str(f"{p}DRIVE_API_URL", DRIVE_API_URL).rstrip("/"),
            drive_token_url=env.str(f"{p}DRIVE_TOKEN_URL", DRIVE_TOKEN_URL),
            s3_ambient_credentials=env.bool(f"{p}S3_AMBIENT_CREDENTIALS", True),
            s3_ambient_credentials_custom_endpoint=env.bool(f"{p}S3_AMBIENT_CREDENTIALS_CUSTOM_ENDPOINT", False),
            credentials_file=Path(cf) if (cf := env.optional(f"{p}CREDENTIALS_FILE")) else None,
        )
