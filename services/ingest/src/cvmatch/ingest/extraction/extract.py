"""Parse one detected file into normalised text: the code that runs inside a sandbox worker.

:func:`extract_kind` never raises for bad input: every parser failure becomes an outcome. It is also
callable in-process (:func:`extract_document_unsandboxed`) for tests and benchmarks only; the service
always goes through :class:`~.sandbox.ExtractionPool`.
"""

from __future__ import annotations

import hashlib
import struct
import zipfile
import zlib

from pypdf.errors import PdfReadError, PdfStreamError

from .docx import UnsafeXml, extract_docx
from .limits import ExtractionLimits
from .normalize import has_enough_text, normalize_text
from .outcomes import DocumentKind, ExtractedDocument, Outcome
from .pdf import extract_pdf
from .rawtext import RawText, TextLimitExceeded
from .sniff import detect_kind
from .text import decode_text

_PARSE_ERRORS: tuple[type[BaseException], ...] = (
    PdfReadError,
    PdfStreamError,
    zipfile.BadZipFile,
    zlib.error,
    UnsafeXml,
    ValueError,  # UnicodeDecodeError's base too
    SyntaxError,  # xml.etree.ElementTree.ParseError's base
    KeyError,
    TypeError,
    AttributeError,
    IndexError,
    AssertionError,
    EOFError,
    OSError,
    NotImplementedError,
    LookupError,
    ArithmeticError,
    struct.error,
)


def _parse(kind: DocumentKind, data: bytes, limits: ExtractionLimits) -> RawText:
    if kind is DocumentKind.PDF:
        return extract_pdf(data, limits)
    if kind is DocumentKind.DOCX:
        return extract_docx(data, limits)
    if kind is DocumentKind.TXT:
        text, _ = decode_text(data)
        return RawText(Outcome.OK, text=text)
    return RawText(Outcome.UNSUPPORTED_TYPE, message=Outcome.UNSUPPORTED_TYPE.message)


def extract_kind(kind: DocumentKind, data: bytes, limits: ExtractionLimits) -> RawText:
    """Parse ``data`` as ``kind`` and normalise; map every failure to an outcome (never raises for input).

    ``MemoryError`` is left to the caller: in a worker it means the address-space limit was hit and the
    worker must be replaced, because a half-failed allocation can leave parser state inconsistent.
    """
    try:
        raw = _parse(kind, data, limits)
    except TextLimitExceeded:
        return RawText(Outcome.LIMITS_EXCEEDED, message="The extracted text is longer than the limit.")
    except RecursionError:
        return RawText(Outcome.LIMITS_EXCEEDED, message="The file is nested too deeply.")
    except _PARSE_ERRORS as exc:
        return RawText(Outcome.PARSE_ERROR, message=f"{Outcome.PARSE_ERROR.message} ({type(exc).__name__})")
    return finish(raw, limits)


def finish(raw: RawText, limits: ExtractionLimits) -> RawText:
    """Normalise an ``ok`` result and demote it to ``no_extractable_text`` when too little remains."""
    if raw.outcome is not Outcome.OK:
        return raw
    text = normalize_text(raw.text)
    if len(text) > limits.max_text_chars:
        return RawText(Outcome.LIMITS_EXCEEDED, pages=raw.pages, message="The extracted text is longer than the limit.")
    if not has_enough_text(text, min_chars=limits.min_text_chars, min_words=limits.min_text_words):
        return RawText(Outcome.NO_EXTRACTABLE_TEXT, pages=raw.pages, message=Outcome.NO_EXTRACTABLE_TEXT.message)
    return RawText(Outcome.OK, text=text, pages=raw.pages, message=Outcome.OK.message)


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 of the original bytes (dedupe and the matcher's cache key)."""
    return hashlib.sha256(data).hexdigest()


def document_from_text(
    text: str, limits: ExtractionLimits, *, kind: DocumentKind = DocumentKind.CSV_ROW
) -> ExtractedDocument:
    """An :class:`ExtractedDocument` for text that arrives already extracted (a CSV row, a JD field).

    Pure and linear-time, so it runs in the service process without the sandbox.
    """
    raw = finish(RawText(Outcome.OK, text=text), limits)
    return ExtractedDocument(
        outcome=raw.outcome,
        text=raw.text,
        kind=kind,
        message=raw.message,
        content_sha256=sha256_hex(text.encode("utf-8")),
    )


def precheck(
    filename: str, data: bytes, limits: ExtractionLimits, content_type: str | None = None
) -> tuple[DocumentKind, ExtractedDocument | None]:
    """Size and type checks that need no parser; returns the kind and, when the file fails, its result."""
    digest = sha256_hex(data)
    if len(data) > limits.max_file_bytes:
        kind = DocumentKind.UNKNOWN
        return kind, ExtractedDocument(Outcome.FILE_TOO_LARGE, "", kind, Outcome.FILE_TOO_LARGE.message, digest)
    detection = detect_kind(filename, data, content_type)
    if detection.outcome is not Outcome.OK:
        return detection.kind, ExtractedDocument(detection.outcome, "", detection.kind, detection.message, digest)
    return detection.kind, None


def extract_document_unsandboxed(
    filename: str, data: bytes, limits: ExtractionLimits, content_type: str | None = None
) -> ExtractedDocument:
    """Detect and extract in the calling process, WITHOUT resource limits. Tests and benchmarks only."""
    kind, failed = precheck(filename, data, limits, content_type)
    if failed is not None:
        return failed
    raw = extract_kind(kind, data, limits)
    return ExtractedDocument(raw.outcome, raw.text, kind, raw.message, sha256_hex(data), raw.pages)
