"""The seam the ingest service calls: validate a source config, open the source, list it, fetch it.

Wiring in ``CreateBatch`` (admission), for ``input_type`` ``AWS_S3`` / ``GOOGLE_DRIVE`` / ``DATABASE``::

    config = parse_source_config(input_type, source_config_json, max_rows_limit=s.db_max_rows)  # 400s
    credentials = await resolve_credentials(config, str(account_id), store)  # 400 on an unknown name
    try:
        async with open_source(config, credentials, settings=s) as source:
            items = await source.list_items()          # counting; SourceError before anything is kept
            async for fetched in iter_fetch(source, items):
                ...  # fetched.ok: fetched.data -> same detection/sandbox as an upload,
                     #             fetched.text -> same as a CSV row; else fetched.outcome/message
    except SourceError as exc:
        # nothing fetched yet: raise exc.to_domain_error() (400 naming source_config_json, 413 when too
        # many items); after some items: keep them, report the rest with exc.message.
        ...

Only ``config.storable()``, ``SourceItem.to_json()`` and ``SourceError.message`` may be written to the
batch, logs or events; the config itself holds secrets (wrapped in :class:`~.secrets.Secret`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from .base import Source, iter_fetched
from .config import DatabaseConfig, DriveConfig, S3Config, SourceConfig
from .credentials import AwsCredentials, GoogleServiceAccount, OAuthToken, SourceCredentials
from .database import DatabaseSource
from .drive import DriveSource
from .errors import SourceError, SourceFailure
from .items import FetchedItem, SourceItem
from .s3 import S3Source
from .settings import SourceSettings


@asynccontextmanager
async def open_source(
    config: SourceConfig, credentials: SourceCredentials | None = None, *, settings: SourceSettings
) -> AsyncIterator[Source]:
    """Opens the source ``config`` describes with ``credentials`` (the stored credential that
    ``config.credential_name`` names, resolved by the caller; ``None`` for the S3 default identity, a
    Drive ``access_token`` given in the config, or a database). Closed on exit."""
    source: S3Source | DriveSource | DatabaseSource
    if isinstance(config, S3Config):
        if credentials is not None and not isinstance(credentials, AwsCredentials):
            raise _wrong_credential("aws_s3")
        source = S3Source(config, credentials, settings)
    elif isinstance(config, DriveConfig):
        if credentials is not None and not isinstance(credentials, GoogleServiceAccount | OAuthToken):
            raise _wrong_credential("google_drive")
        source = DriveSource(config, credentials, settings)
    else:
        assert isinstance(config, DatabaseConfig)
        source = DatabaseSource(config, settings)
    async with source:
        yield source


def _wrong_credential(source: str) -> SourceError:
    return SourceError(
        "The stored credential is not of a kind this source can use.",
        failure=SourceFailure.ACCESS_DENIED,
        source=source,
    )


async def list_items(
    config: SourceConfig, credentials: SourceCredentials | None = None, *, settings: SourceSettings
) -> list[SourceItem]:
    """Lists every candidate of a source (see :meth:`Source.list_items`); raises :class:`SourceError`."""
    async with open_source(config, credentials, settings=settings) as source:
        return await source.list_items()


async def fetch(
    config: SourceConfig, item: SourceItem, credentials: SourceCredentials | None = None, *, settings: SourceSettings
) -> FetchedItem:
    """Fetches one listed item with a client of its own (a worker handling one item); an item that
    vanished is a per-file outcome, any other failure a :class:`SourceError`."""
    async with open_source(config, credentials, settings=settings) as source:
        async for fetched in iter_fetched(source, [item]):
            return fetched
    raise AssertionError("unreachable")  # pragma: no cover


def iter_fetch(source: Source, items: Sequence[SourceItem]) -> AsyncIterator[FetchedItem]:
    """Yields each item's content in order through an opened source; see :func:`.base.iter_fetched`."""
    return iter_fetched(source, items)


@dataclass(frozen=True, slots=True)
class ItemCount:
    """``to_fetch`` items will be extracted (reserve credits for these); ``skipped`` already have an
    outcome (a ``.png``, a file over the limit) and are never charged. Same meaning as the upload
    path's ``CandidateCount``."""

    to_fetch: int
    skipped: int

    @property
    def total(self) -> int:
        """Every candidate the batch will report on."""
        return self.to_fetch + self.skipped


def count_items(items: Sequence[SourceItem]) -> ItemCount:
    """How many listed items need a credit and how many are already settled."""
    to_fetch = sum(1 for i in items if i.to_fetch)
    return ItemCount(to_fetch=to_fetch, skipped=len(items) - to_fetch)
