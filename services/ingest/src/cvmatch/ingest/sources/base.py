"""The interface every source implements, and the checks they share."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Protocol

from ..extraction.outcomes import Outcome
from .errors import ItemGone, SourceError, SourceFailure
from .items import CV_EXTENSIONS, FetchedItem, SourceItem, extension
from .settings import SourceSettings


class Source(Protocol):
    """One opened source (a client, a connection); used as ``async with`` and closed after."""

    async def list_items(self) -> list[SourceItem]:
        """Every candidate in the source, with ``skip`` set on those that will not be fetched."""
        ...

    async def fetch(self, item: SourceItem) -> FetchedItem:
        """The content of one listed item (streamed within the per-file limit)."""
        ...

    async def aclose(self) -> None:
        """Releases clients and connections."""
        ...


def classify(item: SourceItem, settings: SourceSettings) -> SourceItem:
    """Marks an item that will not be fetched: not a CV type by extension, or larger than the limit."""
    if extension(item.filename) not in CV_EXTENSIONS:
        return item.skipped(Outcome.UNSUPPORTED_TYPE)
    if item.size is not None and item.size > settings.max_file_bytes:
        return item.skipped(
            Outcome.FILE_TOO_LARGE, f"The file is larger than the per-file limit of {settings.max_file_bytes} bytes."
        )
    return item


def check_count(count: int, settings: SourceSettings, source: str) -> None:
    """Raises when a listing grows past ``max_items`` (checked while paging, not after)."""
    if count > settings.max_items:
        raise SourceError(
            f"The source lists more than {settings.max_items} files; narrow it (a prefix, a "
            "sub-folder, a WHERE clause) or split it into several batches.",
            failure=SourceFailure.TOO_MANY_ITEMS,
            source=source,
        )


def too_large(item: SourceItem, settings: SourceSettings) -> FetchedItem:
    """The outcome of an item found over the limit while it was streamed."""
    return FetchedItem.failed(
        item, Outcome.FILE_TOO_LARGE, f"The file is larger than the per-file limit of {settings.max_file_bytes} bytes."
    )


def gone(item: SourceItem) -> FetchedItem:
    """The outcome of an item removed from the source between listing and fetching."""
    return FetchedItem.failed(
        item, Outcome.INVALID_FILE_CONTENT, "The file was deleted or moved in the source before it could be read."
    )


async def iter_fetched(source: Source, items: Sequence[SourceItem]) -> AsyncIterator[FetchedItem]:
    """Yields each item's content in order; a skipped item yields its outcome without any I/O.

    An item that vanished yields a per-file outcome and the rest go on. Any other :class:`SourceError`
    (credentials revoked, source down) propagates *after* everything fetched before it was yielded, so
    the caller keeps what was ingested and reports the rest.
    """
    for item in items:
        if item.skip is not None:
            yield FetchedItem.failed(item, item.skip, item.skip_message)
            continue
        try:
            fetched = await source.fetch(item)
        except ItemGone:
            fetched = gone(item)
        yield fetched
