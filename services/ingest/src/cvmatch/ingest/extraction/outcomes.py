"""Per-file outcomes, extracted documents and the typed errors for whole-request problems.

Per-file problems (one CV in a ZIP is encrypted) are *values*: an :class:`Outcome` on the
:class:`ExtractedDocument`, so a batch goes on without that file. Whole-request problems (the uploaded
CSV has no ``resume_text`` column) are *exceptions* carrying a stable reason and the request field, which
the service maps once to ``google.rpc.Status`` at its edge (DESIGN §4, §6 principle 3).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Outcome(enum.StrEnum):
    """The result of extracting one file; the string values are stored and published as-is."""

    OK = "ok"
    INVALID_FILE_CONTENT = "invalid_file_content"
    UNSUPPORTED_TYPE = "unsupported_type"
    FILE_TOO_LARGE = "file_too_large"
    PDF_ENCRYPTED = "pdf_encrypted"
    NO_EXTRACTABLE_TEXT = "no_extractable_text"
    LIMITS_EXCEEDED = "limits_exceeded"
    PARSE_ERROR = "parse_error"

    @property
    def message(self) -> str:
        """A short, user-facing explanation (never contains file content)."""
        return _MESSAGES[self]


_MESSAGES: dict[Outcome, str] = {
    Outcome.OK: "Text extracted.",
    Outcome.INVALID_FILE_CONTENT: "The file content does not match its type.",
    Outcome.UNSUPPORTED_TYPE: "Unsupported file type; use PDF, DOCX or TXT.",
    Outcome.FILE_TOO_LARGE: "The file is larger than the per-file limit.",
    Outcome.PDF_ENCRYPTED: "The PDF is password-protected.",
    Outcome.NO_EXTRACTABLE_TEXT: "No extractable text (is it a scanned image?).",
    Outcome.LIMITS_EXCEEDED: "The file exceeded a processing limit.",
    Outcome.PARSE_ERROR: "The file could not be parsed.",
}


class DocumentKind(enum.StrEnum):
    """What a file was detected to be (by extension and magic bytes together)."""

    PDF = "pdf"
    DOCX = "docx"
    TXT = "txt"
    #: A row of an uploaded CSV: the text arrives already extracted.
    CSV_ROW = "csv_row"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class ExtractedDocument:
    """The result of extracting one file.

    ``text`` is normalised (see :mod:`.normalize`) and empty unless ``outcome`` is ``ok``.
    ``message`` is safe to show to the uploader; it never contains document text.
    """

    outcome: Outcome
    text: str
    kind: DocumentKind
    message: str
    content_sha256: str
    pages: int = 0

    @property
    def ok(self) -> bool:
        """True when text was extracted."""
        return self.outcome is Outcome.OK


class ExtractionRequestError(Exception):
    """A problem with the whole request (not one file in it), mapped at the service edge.

    ``reason`` is the stable public error code (``INVALID_INPUT``, ...); ``field`` is the request field at
    fault so the edge can build a ``BadRequest`` field violation; ``outcome`` classifies it for metrics.
    """

    reason: str = "INVALID_INPUT"

    def __init__(self, message: str, *, field: str, outcome: Outcome = Outcome.INVALID_FILE_CONTENT) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.outcome = outcome

    def __repr__(self) -> str:
        return f"{type(self).__name__}(reason={self.reason!r}, field={self.field!r}, message={self.message!r})"


class InvalidUpload(ExtractionRequestError):
    """The request is malformed: wrong extension or content type, missing CSV columns, ... (400)."""

    reason = "INVALID_INPUT"


class InvalidFileContent(ExtractionRequestError):
    """The bytes do not match what the request claims, or the container is corrupt or hostile (400)."""

    reason = "INVALID_FILE_CONTENT"


class PayloadTooLarge(ExtractionRequestError):
    """The upload exceeds a size or count limit: file size, archive entries, CSV rows (413)."""

    reason = "PAYLOAD_TOO_LARGE"
