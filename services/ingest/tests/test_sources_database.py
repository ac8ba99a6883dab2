"""Database sources against a real PostgreSQL (the test fixture's), SQLite files, and MySQL/MariaDB when
``MYSQL_URL`` names a reachable server (``mysql://user:password@host:port/``; skipped otherwise)."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import aiomysql  # type: ignore[import-untyped]
import asyncpg
import pytest

from cvmatch.ingest.extraction import ExtractionLimits, document_from_text, extract_document_unsandboxed
from cvmatch.ingest.sources import (
    DatabaseConfig,
    Outcome,
    SourceError,
    SourceFailure,
    SourceItem,
    SourceSettings,
    count_items,
    fetch,
    iter_fetch,
    list_items,
    open_source,
    parse_source_config,
)
from cvmatch.testing.filegen import cv_lines, docx_from_lines
from cvmatch.testing.servers import free_port

SETTINGS = SourceSettings(max_file_bytes=200_000, connect_timeout_seconds=3, db_statement_timeout_seconds=5)
PASSWORD = "Sup3r-Secret-Pw"
CVS = {i: "\n".join(cv_lines(name)) for i, name in ((1, "Jane Doe"), (2, "John Roe"), (3, "Ann Lee"))}


def _config(db_type: str, conn: str, query: str, **extra: object) -> DatabaseConfig:
    cfg = parse_source_config(
        "DATABASE", json.dumps({"type": db_type, "connection_string": conn, "query": query, **extra})
    )
    assert isinstance(cfg, DatabaseConfig)
    return cfg


def _with_password(url: str, password: str = PASSWORD) -> str:
    # The test cluster trusts local connections, so any password is accepted: what matters is that it is
    # carried through the code and never comes back out.
    p = urlsplit(url)
    return urlunsplit(p._replace(netloc=f"{p.username}:{password}@{p.hostname}:{p.port}"))


def _assert_no_secret(*texts: object) -> None:
    for text in texts:
        assert PASSWORD not in str(text) and PASSWORD not in repr(text)


# ---------------------------------------------------------------------------------------------- PostgreSQL


@pytest.fixture
async def pg_url(database_url: str) -> str:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("""
            CREATE TABLE applicants (id int PRIMARY KEY, name text, resume_content text, position_id int);
            CREATE TABLE files (applicant int, fname text, body bytea);
            CREATE TABLE audit (n int);
            CREATE FUNCTION bump() RETURNS int LANGUAGE sql AS $$ INSERT INTO audit VALUES (1) RETURNING 1 $$;
        """)
        await conn.executemany(
            "INSERT INTO applicants VALUES ($1, $2, $3, 12345)",
            [(i, text.splitlines()[0], text) for i, text in CVS.items()],
        )
        await conn.execute("INSERT INTO applicants VALUES (4, 'Other Position', 'x', 999)")
        await conn.executemany(
            "INSERT INTO files VALUES ($1, $2, $3)",
            [
                (1, "jane.docx", docx_from_lines(cv_lines("Jane Doe"))),
                (2, "scan.png", b"\x89PNG\r\n\x1a\n"),
                (3, "huge.pdf", b"%PDF-1.4\n" + b"0" * 250_000),
            ],
        )
    finally:
        await conn.close()
    return _with_password(database_url)


async def test_postgres_seed_example_query_gives_rows_with_inline_text(pg_url: str):
    # SkillMatchIQ's documented example: the text column is resume_content, found without a mapping.
    cfg = _config(
        "postgresql", pg_url, "SELECT id, name, resume_content FROM applicants WHERE position_id = 12345 ORDER BY id"
    )
    async with open_source(cfg, settings=SETTINGS) as source:
        items = await source.list_items()
        fetched = [f async for f in iter_fetch(source, items)]
    assert [(i.id, i.name, i.filename) for i in items] == [
        ("1", "Jane Doe", "row-1.txt"),
        ("2", "John Roe", "row-2.txt"),
        ("3", "Ann Lee", "row-3.txt"),
    ]
    limits = ExtractionLimits()
    for f in fetched:
        assert f.ok and f.text == CVS[int(f.item.id)]
        # The same as a CSV row with that text.
        assert document_from_text(f.text, limits).content_sha256 == f.sha256
        assert f.item.source_hash == f"sha256:{f.sha256}"
    _assert_no_secret(items, [i.to_json() for i in items], cfg, cfg.storable())


async def test_postgres_file_column_with_mapping(pg_url: str):
    cfg = _config(
        "postgres",
        pg_url,
        "SELECT applicant, fname, body FROM files ORDER BY applicant",
        columns={"id": "applicant", "file": "body", "filename": "fname"},
        id_column=None,
    )
    items = await list_items(cfg, settings=SETTINGS)
    assert [(i.id, i.filename, i.skip) for i in items] == [
        ("1", "jane.docx", None),
        ("2", "scan.png", Outcome.UNSUPPORTED_TYPE),
        ("3", "huge.pdf", Outcome.FILE_TOO_LARGE),
    ]
    assert count_items(items).to_fetch == 1
    got = await fetch(cfg, items[0], settings=SETTINGS)
    doc = extract_document_unsandboxed(got.item.filename, got.data or b"", ExtractionLimits())
    assert doc.ok and "Jane Doe" in doc.text


async def test_postgres_runs_read_only_even_when_a_select_writes(pg_url: str):
    # bump() is an innocent-looking function that INSERTs: the SELECT check cannot know, the read-only
    # transaction stops it.
    cfg = _config("postgresql", pg_url, "SELECT bump() AS id, name, resume_content FROM applicants")
    with pytest.raises(SourceError) as info:
        await list_items(cfg, settings=SETTINGS)
    assert info.value.failure is SourceFailure.QUERY_ERROR and "tried to write" in info.value.message
    conn = await asyncpg.connect(pg_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM audit") == 0
    finally:
        await conn.close()


async def test_postgres_statement_timeout(pg_url: str):
    cfg = _config(
        "postgresql",
        pg_url,
        "SELECT 1 AS id, 'x' AS resume_text FROM (SELECT count(*) FROM generate_series(1, 500000000)) s",
    )
    with pytest.raises(SourceError) as info:
        await list_items(cfg, settings=SourceSettings(db_statement_timeout_seconds=0.3))
    assert info.value.failure is SourceFailure.QUERY_ERROR and "longer than 0.3 seconds" in info.value.message


async def test_postgres_row_limit(pg_url: str):
    query = "SELECT id, name, resume_content FROM applicants ORDER BY id"
    with pytest.raises(SourceError) as info:
        await list_items(_config("postgresql", pg_url, query), settings=SourceSettings(db_max_rows=3))
    assert info.value.failure is SourceFailure.TOO_MANY_ITEMS
    assert info.value.to_domain_error().http_status == 413
    items = await list_items(_config("postgresql", pg_url, query, max_rows=2), settings=SETTINGS)
    assert [i.id for i in items] == ["1", "2"]
    # The content budget is enforced while rows stream, before they are all held.
    files = _config(
        "postgresql",
        pg_url,
        "SELECT applicant AS id, fname, body FROM files",
        columns={"file": "body", "filename": "fname"},
    )
    with pytest.raises(SourceError) as info:
        await list_items(files, settings=SourceSettings(max_total_inline_bytes=100_000))
    assert info.value.failure is SourceFailure.TOO_MANY_ITEMS and "100000 bytes" in info.value.message


async def test_postgres_errors_are_clear_and_secret_free(pg_url: str, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    cases = [
        ("SELECT id, name, resume_text FROM no_such_table", SourceFailure.QUERY_ERROR, "does not exist"),
        ("SELECT id, name FROM applicants", SourceFailure.QUERY_ERROR, "no resume text column"),
        ("SELECT id, name, resume_content FROM applicants WHERE false", SourceFailure.EMPTY, "no rows"),
    ]
    for query, failure, words in cases:
        with pytest.raises(SourceError) as info:
            await list_items(_config("postgresql", pg_url, query), settings=SETTINGS)
        assert info.value.failure is failure and words in info.value.message, info.value
        _assert_no_secret(info.value, info.value.to_domain_error())
    missing_db = urlunsplit(urlsplit(pg_url)._replace(path="/no_such_db"))
    with pytest.raises(SourceError) as info:
        await list_items(_config("postgresql", missing_db, "SELECT 1"), settings=SETTINGS)
    assert info.value.failure is SourceFailure.NOT_FOUND
    down = f"postgresql://hr:{PASSWORD}@127.0.0.1:{free_port()}/ats"
    with pytest.raises(SourceError) as info:
        await list_items(_config("postgresql", down, "SELECT 1"), settings=SETTINGS)
    assert info.value.failure is SourceFailure.UNREACHABLE
    _assert_no_secret(info.value, caplog.text)


# ---------------------------------------------------------------------------------------------- SQLite


@pytest.fixture
def sqlite_dir(tmp_path: Path) -> Path:
    db = sqlite3.connect(tmp_path / "ats.db")
    db.execute("CREATE TABLE applicants (id INTEGER PRIMARY KEY, name TEXT, resume_text TEXT, position_id INT)")
    db.executemany("INSERT INTO applicants VALUES (?, ?, ?, 7)", [(i, t.splitlines()[0], t) for i, t in CVS.items()])
    db.commit()
    db.close()
    return tmp_path.resolve()


async def test_sqlite_query_reads_rows(sqlite_dir: Path):
    settings = SourceSettings(sqlite_dirs=(sqlite_dir,))
    for conn in (f"sqlite:///{sqlite_dir / 'ats.db'}", "sqlite:///ats.db"):  # absolute, and relative to the dir
        items = await list_items(
            _config("sqlite", conn, "SELECT * FROM applicants WHERE position_id = 7"), settings=settings
        )
        assert [(i.id, i.name, i.text) for i in items] == [(str(k), v.splitlines()[0], v) for k, v in CVS.items()]


async def test_sqlite_paths_are_confined_to_the_configured_directories(sqlite_dir: Path, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside")
    sqlite3.connect(outside / "other.db").close()
    (sqlite_dir / "link.db").symlink_to(outside / "other.db")
    settings = SourceSettings(sqlite_dirs=(sqlite_dir,))
    for conn in (
        f"sqlite:///{outside / 'other.db'}",
        "sqlite:///../" + outside.name + "/other.db",
        "sqlite:///link.db",
    ):
        with pytest.raises(SourceError) as info:
            await list_items(_config("sqlite", conn, "SELECT 1 AS id, 'x' AS resume_text"), settings=settings)
        assert info.value.failure is SourceFailure.NOT_ALLOWED, conn
    with pytest.raises(SourceError) as info:  # SQLite is off unless directories are configured
        await list_items(_config("sqlite", "sqlite:///ats.db", "SELECT 1"), settings=SourceSettings())
    assert info.value.failure is SourceFailure.NOT_ALLOWED
    with pytest.raises(SourceError) as info:
        await list_items(_config("sqlite", "sqlite:///missing.db", "SELECT 1"), settings=settings)
    assert info.value.failure is SourceFailure.NOT_FOUND


async def test_sqlite_timeout_and_query_error(sqlite_dir: Path):
    settings = SourceSettings(sqlite_dirs=(sqlite_dir,), db_statement_timeout_seconds=0.3)
    endless = (
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
        "SELECT 1 AS id, (SELECT count(*) FROM c) AS resume_text"
    )
    with pytest.raises(SourceError) as info:
        await list_items(_config("sqlite", "sqlite:///ats.db", endless), settings=settings)
    assert info.value.failure is SourceFailure.QUERY_ERROR and "longer than" in info.value.message
    with pytest.raises(SourceError) as info:
        await list_items(_config("sqlite", "sqlite:///ats.db", "SELECT * FROM nope"), settings=settings)
    assert info.value.failure is SourceFailure.QUERY_ERROR and "no such table" in info.value.message


# ---------------------------------------------------------------------------------------------- MySQL


@pytest.fixture
async def mysql_url() -> AsyncIterator[str]:
    base = os.environ.get("MYSQL_URL")
    if not base:
        pytest.skip(
            "MYSQL_URL is not set: MySQL/MariaDB source tests need a reachable server "
            "(e.g. MYSQL_URL=mysql://root@127.0.0.1:3306/)"
        )
    p = urlsplit(base)
    name = f"cvmatch_src_{uuid.uuid4().hex[:10]}"
    try:
        conn = await aiomysql.connect(
            host=p.hostname,
            port=p.port or 3306,
            user=p.username or "root",
            password=p.password or "",
            autocommit=True,
            connect_timeout=3,
        )
    except Exception as exc:
        pytest.skip(f"MYSQL_URL is set but the server is not reachable ({type(exc).__name__})")
    async with conn.cursor() as cur:
        await cur.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
        await cur.execute(f"CREATE TABLE {name}.applicants (id INT PRIMARY KEY, name TEXT, resume_text MEDIUMTEXT)")
        for i, text in CVS.items():
            await cur.execute(f"INSERT INTO {name}.applicants VALUES (%s, %s, %s)", (i, text.splitlines()[0], text))
    try:
        yield urlunsplit(p._replace(path=f"/{name}"))
    finally:
        async with conn.cursor() as cur:
            await cur.execute(f"DROP DATABASE {name}")
        conn.close()


async def test_mysql_query_reads_rows(mysql_url: str):
    items = await list_items(
        _config("mysql", mysql_url, "SELECT id, name, resume_text FROM applicants ORDER BY id"), settings=SETTINGS
    )
    assert [(i.id, i.name, i.text) for i in items] == [(str(k), v.splitlines()[0], v) for k, v in CVS.items()]


async def test_mysql_errors(mysql_url: str):
    with pytest.raises(SourceError) as info:
        await list_items(_config("mysql", mysql_url, "SELECT * FROM nope"), settings=SETTINGS)
    assert info.value.failure is SourceFailure.QUERY_ERROR and "nope" in info.value.message
    with pytest.raises(SourceError) as info:
        await list_items(_config("mysql", mysql_url, "SELECT * FROM applicants WHERE id < 0"), settings=SETTINGS)
    assert info.value.failure is SourceFailure.EMPTY
    with pytest.raises(SourceError) as info:
        await list_items(
            _config("mysql", mysql_url, "SELECT * FROM applicants"), settings=SourceSettings(db_max_rows=2)
        )
    assert info.value.failure is SourceFailure.TOO_MANY_ITEMS
    down = f"mysql://hr:{PASSWORD}@127.0.0.1:{free_port()}/ats"
    with pytest.raises(SourceError) as info:
        await list_items(_config("mysql", down, "SELECT 1"), settings=SETTINGS)
    assert info.value.failure is SourceFailure.UNREACHABLE
    _assert_no_secret(info.value)


async def test_mysql_runs_read_only_with_a_statement_timeout(mysql_url: str):
    p = urlsplit(mysql_url)
    db = p.path.strip("/")
    conn = await aiomysql.connect(
        host=p.hostname,
        port=p.port or 3306,
        user=p.username or "root",
        password=p.password or "",
        db=db,
        autocommit=True,
    )
    try:
        async with conn.cursor() as cur:
            await cur.execute("CREATE TABLE audit (n INT)")
            await cur.execute(
                "CREATE FUNCTION bump() RETURNS INT MODIFIES SQL DATA BEGIN INSERT INTO audit VALUES (1); RETURN 1; END"
            )
        with pytest.raises(SourceError) as info:
            await list_items(_config("mysql", mysql_url, "SELECT bump() AS id, 'x' AS resume_text"), settings=SETTINGS)
        assert info.value.failure is SourceFailure.QUERY_ERROR and "tried to write" in info.value.message
        async with conn.cursor() as cur:
            await cur.execute("SELECT count(*) FROM audit")
            assert (await cur.fetchone())[0] == 0
    finally:
        conn.close()
    slow = (
        "SELECT 1 AS id, (SELECT count(*) FROM information_schema.columns a, information_schema.columns b, "
        "information_schema.columns c) AS resume_text"
    )
    with pytest.raises(SourceError) as info:
        await list_items(_config("mysql", mysql_url, slow), settings=SourceSettings(db_statement_timeout_seconds=0.3))
    assert info.value.failure is SourceFailure.QUERY_ERROR and "longer than" in info.value.message


def test_items_round_trip_through_json_without_content():
    item = SourceItem(
        id="7",
        filename="row-7.txt",
        size=3,
        content_type="text/plain",
        source_hash="sha256:ab",
        text="abc",
        name="Jane",
    )
    back = SourceItem.from_json(json.loads(json.dumps(item.to_json())))
    assert back.text is None and back == SourceItem(**{**item.to_json(), "skip": None})
