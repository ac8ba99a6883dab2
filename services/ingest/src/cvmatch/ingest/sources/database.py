"""Database sources: one read-only SELECT against PostgreSQL (asyncpg), MySQL/MariaDB (aiomysql) or
SQLite (stdlib ``sqlite3`` in a thread).

Every engine runs the query the same careful way: the SELECT-only check at parse time, then a read-only
transaction (PostgreSQL ``READ ONLY`` + ``default_transaction_read_only``; MySQL ``START TRANSACTION READ
ONLY``; SQLite ``mode=ro`` + ``PRAGMA query_only``), a server-side statement timeout (SQLite: a progress
handler), rows streamed from a cursor and cut at the row limit, and a rollback. Rows become items with
their content inline: the query runs once, at listing, so nothing needs the connection string later.

Driver messages can quote connection parameters; every message goes through :func:`~.errors.scrub` with
the connection string and its password before it reaches a :class:`SourceError`.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import asyncpg

from ..extraction.outcomes import Outcome
from .base import classify
from .config import DatabaseConfig, DatabaseType
from .errors import SourceError, SourceFailure, scrub
from .items import FetchedItem, SourceItem
from .settings import SourceSettings

_TEXT_COLUMN_NAMES = ("resume_text", "resume_content", "resume", "cv_text", "cv", "content", "text")
_ID_COLUMN_NAMES = ("id", "candidate_id", "applicant_id")
_NAME_COLUMN_NAMES = ("name", "candidate_name", "full_name")
_FETCH_CHUNK = 500
_MAX_MESSAGE = 300


@dataclass(frozen=True, slots=True)
class QueryResult:
    """Column names and at most ``limit + 1`` rows (the extra row tells that the limit was passed)."""

    columns: tuple[str, ...]
    rows: list[Sequence[Any]]


class DatabaseSource:
    """A query source; :meth:`list_items` runs the query, :meth:`fetch` hands back the inline content."""

    def __init__(self, config: DatabaseConfig, settings: SourceSettings) -> None:
        self.config = config
        self.settings = settings
        conn = config.connection_string.reveal()
        parts = urlsplit(conn) if config.type is not DatabaseType.SQLITE else None
        self._secrets: tuple[str, ...] = (
            conn,
            unquote(parts.password or "") if parts else "",
            parts.password or "" if parts else "",
        )

    async def __aenter__(self) -> DatabaseSource:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Nothing to release: each query opens and closes its own connection."""

    # -- errors -------------------------------------------------------------------------------------
    def _error(self, message: str, failure: SourceFailure, *, retryable: bool = False) -> SourceError:
        clean = scrub(message, self._secrets)
        if len(clean) > _MAX_MESSAGE:
            clean = clean[: _MAX_MESSAGE - 3] + "..."
        return SourceError(clean, failure=failure, source=f"database:{self.config.type.value}", retryable=retryable)

    def _timeout_error(self) -> SourceError:
        return self._error(
            f"The query took longer than {self.settings.db_statement_timeout_seconds:g} seconds and was cancelled.",
            SourceFailure.QUERY_ERROR,
        )

    def _unreachable(self) -> SourceError:
        return self._error(
            "Could not connect to the database; check the host, port and that it accepts connections from this server.",
            SourceFailure.UNREACHABLE,
            retryable=True,
        )

    # -- listing ------------------------------------------------------------------------------------
    @property
    def _row_limit(self) -> int:
        return min(self.config.max_rows or self.settings.db_max_rows, self.settings.db_max_rows)

    async def list_items(self) -> list[SourceItem]:
        """Runs the query read-only and turns each row into an item with inline content."""
        limit = self._row_limit
        if self.config.type is DatabaseType.POSTGRESQL:
            result = await self._query_postgres(limit)
        elif self.config.type is DatabaseType.MYSQL:
            result = await self._query_mysql(limit)
        else:
            result = await asyncio.to_thread(self._query_sqlite, limit)
        if len(result.rows) > limit:
            # Over the server's limit (not one the client asked for): refuse rather than cut silently.
            if self.config.max_rows is None or self.config.max_rows > self.settings.db_max_rows:
                raise self._error(
                    f"The query returns more than {limit} rows; add a WHERE clause or LIMIT, or set 'max_rows'.",
                    SourceFailure.TOO_MANY_ITEMS,
                )
            del result.rows[limit:]
        if not result.rows:
            raise self._error("The query returned no rows.", SourceFailure.EMPTY)
        return self._items(result)

    async def fetch(self, item: SourceItem) -> FetchedItem:
        """The row's inline content (nothing to read: the query ran at listing)."""
        if item.text is not None:
            return FetchedItem.of_text(item, item.text)
        if item.data is not None:
            return FetchedItem.of_bytes(item, item.data)
        # An item restored with SourceItem.from_json has lost its content: the service must keep the
        # listed items (or the spooled content) for database sources.
        raise self._error("The row's content is no longer available; submit the batch again.", SourceFailure.PROTOCOL)

    # -- rows -> items --------------------------------------------------------------------------------
    def _pick(
        self, columns: tuple[str, ...], explicit: str | None, default: str | None, fallbacks: tuple[str, ...], what: str
    ) -> int | None:
        lowered = [c.lower() for c in columns]
        if explicit is not None and explicit != default:
            if explicit in columns:
                return columns.index(explicit)
            if explicit.lower() in lowered:
                return lowered.index(explicit.lower())
            raise self._error(
                f"The query result has no column '{explicit}' for {what} (columns: {', '.join(columns)[:200]}).",
                SourceFailure.QUERY_ERROR,
            )
        for name in ((default,) if default else ()) + fallbacks:
            if name.lower() in lowered:
                return lowered.index(name.lower())
        return None

    def _items(self, result: QueryResult) -> list[SourceItem]:
        m, cols = self.config.columns, result.columns
        id_i = self._pick(cols, m.id, "id", _ID_COLUMN_NAMES, "the candidate id")
        name_i = self._pick(cols, m.name, "name", _NAME_COLUMN_NAMES, "the name") if m.name else None
        file_i = self._pick(cols, m.file, None, (), "the file") if m.file else None
        filename_i = self._pick(cols, m.filename, None, (), "the file name") if m.filename else None
        text_i = None
        if file_i is None:
            text_i = self._pick(cols, m.resume_text, None, _TEXT_COLUMN_NAMES, "the resume text")
            if text_i is None:
                raise self._error(
                    "The query result has no resume text column; name it resume_text or map it "
                    f"with columns.resume_text (columns: {', '.join(cols)[:200]}).",
                    SourceFailure.QUERY_ERROR,
                )
        items: list[SourceItem] = []
        total = 0
        for n, row in enumerate(result.rows, start=1):
            row_id = _as_str(row[id_i]) if id_i is not None else None
            row_id = row_id if row_id else str(n)
            name = _as_str(row[name_i]) if name_i is not None else None
            filename = _as_str(row[filename_i]) if filename_i is not None else None
            if file_i is not None:
                data = _as_bytes(row[file_i])
                if data is None:
                    raise self._error(
                        f"The column '{cols[file_i]}' must hold binary file content.", SourceFailure.QUERY_ERROR
                    )
                item = classify(
                    SourceItem(
                        id=row_id,
                        filename=filename or f"row-{row_id}",
                        size=len(data),
                        content_type=None,
                        source_hash=_sha(data),
                        name=name,
                        data=data,
                    ),
                    self.settings,
                )
            else:
                assert text_i is not None
                text = _as_text(row[text_i])
                raw = text.encode("utf-8")
                item = SourceItem(
                    id=row_id,
                    filename=filename or f"row-{row_id}.txt",
                    size=len(raw),
                    content_type="text/plain",
                    source_hash=_sha(raw),
                    name=name,
                    text=text,
                )
                if len(raw) > self.settings.max_file_bytes:
                    item = item.skipped(
                        Outcome.FILE_TOO_LARGE,
                        f"The resume text is larger than the per-file limit of {self.settings.max_file_bytes} bytes.",
                    )
            if item.to_fetch:
                total += item.size or 0
                if total > self.settings.max_total_inline_bytes:
                    raise self._error(
                        f"The query returns more than {self.settings.max_total_inline_bytes} bytes "
                        "of content; split it into several batches.",
                        SourceFailure.TOO_MANY_ITEMS,
                    )
            items.append(item)
        return items

    # -- PostgreSQL -----------------------------------------------------------------------------------
    async def _query_postgres(self, limit: int) -> QueryResult:
        dsn = self.config.connection_string.reveal()
        parts = urlsplit(dsn)
        timeout_ms = int(self.settings.db_statement_timeout_seconds * 1000)
        try:
            # user/password passed explicitly so that a DSN without a password can never fall back to the
            # server's own PGPASSWORD or ~/.pgpass.
            conn = await asyncpg.connect(
                dsn,
                user=unquote(parts.username or ""),
                password=unquote(parts.password or ""),
                timeout=self.settings.connect_timeout_seconds,
                statement_cache_size=0,
                server_settings={
                    "default_transaction_read_only": "on",
                    "statement_timeout": str(timeout_ms),
                    "application_name": "cvmatch-ingest",
                },
            )
        except (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError):
            raise self._error("The database rejected the user name or password.", SourceFailure.ACCESS_DENIED) from None
        except asyncpg.InvalidCatalogNameError:
            raise self._error(
                "The database named in the connection string does not exist.", SourceFailure.NOT_FOUND
            ) from None
        except (OSError, TimeoutError, asyncpg.CannotConnectNowError, asyncpg.TooManyConnectionsError):
            raise self._unreachable() from None
        except (asyncpg.PostgresError, asyncpg.InterfaceError, ValueError) as exc:
            raise self._error(f"Could not connect to the database: {exc}", SourceFailure.UNREACHABLE) from None
        try:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                # Again inside the transaction: a DSN option cannot lift it for this query.
                await conn.execute(f"SET LOCAL statement_timeout = {timeout_ms}")
                stmt = await conn.prepare(self.config.query)
                columns = tuple(a.name for a in stmt.get_attributes())
                rows: list[Sequence[Any]] = []
                budget = _Budget(self)
                async for record in stmt.cursor(prefetch=_FETCH_CHUNK):
                    rows.append(budget.take(tuple(record)))
                    if len(rows) > limit:
                        break
            return QueryResult(columns, rows)
        except asyncpg.QueryCanceledError:
            raise self._timeout_error() from None
        except asyncpg.PostgresError as exc:
            raise self._postgres_error(exc) from None
        except (OSError, asyncpg.InterfaceError, TimeoutError):
            raise self._error(
                "The database connection was lost during the query.", SourceFailure.UNREACHABLE, retryable=True
            ) from None
        finally:
            await conn.close(timeout=5)

    def _postgres_error(self, exc: asyncpg.PostgresError) -> SourceError:
        state = str(getattr(exc, "sqlstate", "") or "")
        if state == "25006":
            return self._error(
                "The query tried to write; only read-only SELECT queries are run.", SourceFailure.QUERY_ERROR
            )
        if state == "42501":
            return self._error(f"Permission denied: {exc}", SourceFailure.ACCESS_DENIED)
        if state.startswith("42") or state.startswith("0A") or state == "08P01":
            return self._error(f"The query failed: {exc}", SourceFailure.QUERY_ERROR)
        # Data errors (22xxx) and others can quote row values (personal data): code only.
        return self._error(f"The query failed (SQLSTATE {state or 'unknown'}).", SourceFailure.QUERY_ERROR)

    # -- MySQL / MariaDB ------------------------------------------------------------------------------
    async def _query_mysql(self, limit: int) -> QueryResult:
        import aiomysql  # type: ignore[import-untyped]
        import pymysql  # type: ignore[import-untyped]

        parts = urlsplit(self.config.connection_string.reveal())
        options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        ssl: Any = None
        if options.get("ssl", "").lower() in ("1", "true", "required"):
            import ssl as ssl_module

            ssl = ssl_module.create_default_context()
        try:
            conn = await asyncio.wait_for(
                aiomysql.connect(
                    host=parts.hostname,
                    port=parts.port or 3306,
                    user=unquote(parts.username or ""),
                    password=unquote(parts.password or ""),
                    db=unquote(parts.path.lstrip("/")),
                    charset=options.get("charset", "utf8mb4"),
                    connect_timeout=self.settings.connect_timeout_seconds,
                    autocommit=False,
                    local_infile=False,
                    ssl=ssl,
                ),
                self.settings.connect_timeout_seconds + 1,
            )
        except pymysql.err.OperationalError as exc:
            code = exc.args[0] if exc.args else 0
            if code in (1044, 1045, 1698):
                raise self._error(
                    "The database rejected the user name or password.", SourceFailure.ACCESS_DENIED
                ) from None
            if code == 1049:
                raise self._error(
                    "The database named in the connection string does not exist.", SourceFailure.NOT_FOUND
                ) from None
            raise self._unreachable() from None
        except (OSError, TimeoutError, pymysql.err.MySQLError):
            raise self._unreachable() from None
        try:
            timeout = self.settings.db_statement_timeout_seconds
            # Not `async with`: closing an unbuffered cursor drains every remaining row, and a query over
            # the row limit must stop at limit + 1; closing the connection (finally) drops the stream.
            cur = await conn.cursor(aiomysql.SSCursor)
            if "mariadb" in str(conn.get_server_info()).lower():
                await cur.execute(f"SET SESSION max_statement_time = {timeout:.3f}")
            else:
                await cur.execute(f"SET SESSION max_execution_time = {int(timeout * 1000)}")
            await cur.execute("START TRANSACTION READ ONLY")
            # The client-side timeout backs the server's one (MySQL's applies to SELECT only).
            await asyncio.wait_for(cur.execute(self.config.query), timeout + 5)
            columns = tuple(str(d[0]) for d in (cur.description or ()))
            rows: list[Sequence[Any]] = []
            budget = _Budget(self)
            while len(rows) <= limit:
                chunk = await asyncio.wait_for(cur.fetchmany(_FETCH_CHUNK), timeout + 5)
                if not chunk:
                    break
                rows.extend(budget.take(row) for row in chunk)
            return QueryResult(columns, rows)
        except TimeoutError:
            raise self._timeout_error() from None
        except pymysql.err.MySQLError as exc:
            raise self._mysql_error(exc) from None
        except OSError:
            raise self._error(
                "The database connection was lost during the query.", SourceFailure.UNREACHABLE, retryable=True
            ) from None
        finally:
            conn.close()  # closing without COMMIT ends the read-only transaction; an unread stream dies with it

    def _mysql_error(self, exc: Exception) -> SourceError:
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else 0
        if code in (3024, 1969, 1317):
            return self._timeout_error()
        if code in (1792, 1290):
            return self._error(
                "The query tried to write; only read-only SELECT queries are run.", SourceFailure.QUERY_ERROR
            )
        if code in (1142, 1143, 1044):
            return self._error(f"Permission denied: {exc.args[-1]}", SourceFailure.ACCESS_DENIED)
        if code in (1064, 1146, 1054, 1052, 1049, 1305, 1109, 1248, 1222, 1060):
            return self._error(f"The query failed: {exc.args[-1]}", SourceFailure.QUERY_ERROR)
        return self._error(f"The query failed (MySQL error {code}).", SourceFailure.QUERY_ERROR)

    # -- SQLite ---------------------------------------------------------------------------------------
    def _sqlite_path(self) -> Path:
        if not self.settings.sqlite_dirs:
            raise self._error("SQLite sources are not enabled on this server.", SourceFailure.NOT_ALLOWED)
        rest = self.config.connection_string.reveal().split("://", 1)[1]
        # SQLAlchemy's convention: sqlite:///relative/path and sqlite:////absolute/path.
        raw = Path(unquote(rest[1:]))
        candidates = [raw] if raw.is_absolute() else [d / raw for d in self.settings.sqlite_dirs]
        for candidate in candidates:
            real = candidate.resolve()  # symlinks and .. resolved before the containment check
            if any(real.is_relative_to(d) for d in self.settings.sqlite_dirs):
                if real.is_file():
                    return real
                raise self._error("The SQLite database file does not exist.", SourceFailure.NOT_FOUND)
        raise self._error(
            "The SQLite database file is outside the directories this server may read.", SourceFailure.NOT_ALLOWED
        )

    def _query_sqlite(self, limit: int) -> QueryResult:
        path = self._sqlite_path()
        deadline = time.monotonic() + self.settings.db_statement_timeout_seconds
        try:
            conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=self.settings.connect_timeout_seconds)
        except sqlite3.Error:
            raise self._error("The SQLite database could not be opened.", SourceFailure.NOT_FOUND) from None
        try:
            conn.execute("PRAGMA query_only = ON")
            conn.set_progress_handler(lambda: 1 if time.monotonic() > deadline else 0, 10_000)
            cur = conn.execute(self.config.query)
            columns = tuple(str(d[0]) for d in (cur.description or ()))
            rows: list[Sequence[Any]] = []
            budget = _Budget(self)
            while len(rows) <= limit:
                chunk = cur.fetchmany(_FETCH_CHUNK)
                if not chunk:
                    break
                rows.extend(budget.take(row) for row in chunk)
            return QueryResult(columns, rows)
        except sqlite3.OperationalError as exc:
            if "interrupted" in str(exc):
                raise self._timeout_error() from None
            if "readonly" in str(exc) or "read-only" in str(exc):
                raise self._error(
                    "The query tried to write; only read-only SELECT queries are run.", SourceFailure.QUERY_ERROR
                ) from None
            raise self._error(f"The query failed: {exc}", SourceFailure.QUERY_ERROR) from None
        except sqlite3.DatabaseError as exc:
            if "not a database" in str(exc):
                raise self._error("The file is not a SQLite database.", SourceFailure.NOT_FOUND) from None
            raise self._error("The query failed.", SourceFailure.QUERY_ERROR) from None
        except (sqlite3.Warning, sqlite3.ProgrammingError) as exc:
            raise self._error(f"The query failed: {exc}", SourceFailure.QUERY_ERROR) from None
        finally:
            conn.close()


class _Budget:
    """Counts the bytes of the rows read so far and stops a result that would not fit in memory, while it
    streams (the per-row content checks come after, on rows already held)."""

    def __init__(self, source: DatabaseSource) -> None:
        self.source = source
        self.total = 0

    def take(self, row: Sequence[Any]) -> Sequence[Any]:
        self.total += sum(len(v) for v in row if isinstance(v, str | bytes | bytearray | memoryview))
        limit = self.source.settings.max_total_inline_bytes
        if self.total > limit:
            raise self.source._error(
                f"The query returns more than {limit} bytes of content; split it into several batches.",
                SourceFailure.TOO_MANY_ITEMS,
            )
        return row


def _sha(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def _as_str(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "replace").strip()
    return str(value).strip()


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def _as_bytes(value: Any) -> bytes | None:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    return None
