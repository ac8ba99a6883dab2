"""What a source lists (:class:`SourceItem`) and what fetching one gives (:class:`FetchedItem`)."""

from __future__ import annotations

import hashlib
import posixpath
from dataclasses import dataclass, field, replace
from typing import Any

from ..extraction.outcomes import Outcome
from ..extraction.sniff import EXTENSION_KINDS

#: Extensions of the files a source passes on to extraction (those the upload path parses).
CV_EXTENSIONS = frozenset(EXTENSION_KINDS)

def extension(name: str) -> str:
    """The lower-cased extension of the last path component."""
    return posixpath.splitext(posixpath.basename(name))[1].lower()


@dataclass(frozen=True, slots=True)
class SourceItem:
    """One candidate in a source, as listed (before any content is read).

    * ``id``: the item's key in the source (S3 object key, Drive file id, the row's id column). Stable
      across runs, so the service can report per item.
    * ``filename``: what the upload path would call it; its extension selects the parser.
    * ``size``: bytes when the source says (Google Docs exports have none until fetched).
    * ``source_hash``: the source's own content fingerprint when it gives one: ``md5:<hex>`` (S3
      single-part ETag, Drive ``md5Checksum``) or ``sha256:<hex>`` (database rows, computed here). Equal
      values mean equal content; it lets the service skip unchanged items on a re-run without fetching.
      ``None`` when the source gives nothing reliable (S3 multipart ETags, Google Docs).
    * ``skip``: set when the item will not be fetched: ``unsupported_type`` (not PDF/DOCX/TXT) or
      ``file_too_large``; it is still a candidate with that outcome, never charged.
    * ``text`` / ``data``: database rows carry their content inline (there is nothing to fetch later).
    * ``name``: the candidate's name when the source has one (database ``name`` column).
    """

    id: str
    filename: str
    size: int | None
    content_type: str | None
    source_hash: str | None = None
    skip: Outcome | None = None
    skip_message: str = ""
    name: str | None = None
    text: str | None = field(default=None, repr=False)
    data: bytes | None = field(default=None, repr=False)
    #: Drive only: the MIME type a Google Doc is exported as.
    export_mime_type: str | None = None

    @property
    def to_fetch(self) -> bool:
        """True when the item will be fetched and extracted (and so needs a credit reserved)."""
        return self.skip is None

    def skipped(self, outcome: Outcome, message: str | None = None) -> SourceItem:
        """This item, marked as not to be fetched, with ``outcome``; inline content is dropped."""
        return replace(self, skip=outcome, skip_message=message or outcome.message, text=None, data=None)

    def to_json(self) -> dict[str, Any]:
        """A JSON-able form (for a spool or work-queue row) without inline content: secrets never appear
        in an item, and inline text/bytes belong in the service's spool, not in metadata."""
        return {
            "id": self.id,
            "filename": self.filename,
            "size": self.size,
            "content_type": self.content_type,
            "source_hash": self.source_hash,
            "skip": self.skip.value if self.skip else None,
            "skip_message": self.skip_message,
            "name": self.name,
            "export_mime_type": self.export_mime_type,
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> SourceItem:
        """The inverse of :meth:`to_json` (inline content is not restored)."""
        skip = obj.get("skip")
        return cls(
            id=str(obj["id"]),
            filename=str(obj["filename"]),
            size=obj.get("size"),
            content_type=obj.get("content_type"),
            source_hash=obj.get("source_hash"),
            skip=Outcome(skip) if skip else None,
            skip_message=obj.get("skip_message") or "",
            name=obj.get("name"),
            export_mime_type=obj.get("export_mime_type"),
        )


@dataclass(frozen=True, slots=True)
class FetchedItem:
    """The content of one item, or the per-file outcome that replaces it.

    ``outcome is None``: ``data`` (a file for detection and sandboxed extraction, exactly like an
    upload) or ``text`` (a database text column, for ``document_from_text`` like a CSV row) is set and
    ``sha256`` is the hex SHA-256 of the bytes (UTF-8 for text), the same hash the upload path stores.
    Otherwise ``outcome``/``message`` say why there is no content (``file_too_large`` found while
    streaming, ``unsupported_type``, an item deleted before it was read).
    """

    item: SourceItem
    data: bytes | None = field(default=None, repr=False)
    text: str | None = field(default=None, repr=False)
    outcome: Outcome | None = None
    message: str = ""
    sha256: str = ""

    @classmethod
    def of_bytes(cls, item: SourceItem, data: bytes) -> FetchedItem:
        """Fetched file content."""
        return cls(item=item, data=data, sha256=hashlib.sha256(data).hexdigest())

    @classmethod
    def of_text(cls, item: SourceItem, text: str) -> FetchedItem:
        """Inline text content."""
        return cls(item=item, text=text, sha256=hashlib.sha256(text.encode("utf-8")).hexdigest())

    @classmethod
    def failed(cls, item: SourceItem, outcome: Outcome, message: str | None = None) -> FetchedItem:
        """No content: the per-file outcome to record."""
        return cls(item=item, outcome=outcome, message=message or outcome.message)

    @property
    def ok(self) -> bool:
        """True when there is content to extract."""
        return self.outcome is None
