"""pytest fixtures: one PostgreSQL and one nats-server per test session, a fresh database per use; an
S3-compatible server and a Drive v3 server per test module.

Enabled by the root `conftest.py` (`pytest_plugins = ["cvmatch.testing.fixtures"]`).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from cvmatch.testing.drive import DriveServer
from cvmatch.testing.s3 import S3Server
from cvmatch.testing.servers import Nats, Postgres

_db_counter = itertools.count()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Postgres]:
    """A PostgreSQL cluster for the whole session."""
    pg = Postgres().start()
    try:
        yield pg
    finally:
        pg.cleanup()


@pytest.fixture(scope="session")
def nats_server() -> Iterator[Nats]:
    """A nats-server with JetStream for the whole session."""
    server = Nats().start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def database_url(postgres_server: Postgres) -> str:
    """A new, empty database for one test."""
    return postgres_server.create_database(f"t{next(_db_counter)}")


@pytest.fixture
def nats_url(nats_server: Nats) -> str:
    """The session's nats-server URL (tests use unique subjects or consumers)."""
    return nats_server.url


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    """A real S3-compatible server (rclone) for one test module."""
    server = S3Server().start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="module")
def drive() -> Iterator[DriveServer]:
    """The local Drive v3 server for one test module."""
    server = DriveServer().start()
    try:
        yield server
    finally:
        server.stop()
