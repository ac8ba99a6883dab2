"""Type detection by extension and magic bytes together, and the request-level type checks.

The extension says what the uploader claims; the bytes say what the file is. Both must agree: a ``.pdf``
that is really a ZIP is ``invalid_file_content``, never "try the DOCX parser", because a parser chosen by
the attacker's bytes rather than by the declared type widens the attack surface for no gain.
"""

from __future__ import annotations

import io
import posixpath
import zipfile
from dataclasses import dataclass

from .outcomes import DocumentKind, InvalidFileContent, InvalidUpload, Outcome
from .text import looks_like_text

PDF_MAGIC = b"%PDF-"
ZIP_MAGIC = b"PK\x03\x04"
_EOCD_SIG = b"PK\x05\x06"
_MAX_DOCX_PARTS = 2000
# A PDF may have junk before the header (some generators write a few bytes); readers accept it within
# the first KiB, and so do we.
_PDF_HEADER_WINDOW = 1024

EXTENSION_KINDS: dict[str, DocumentKind] = {
    ".pdf": DocumentKind.PDF,
    ".docx": DocumentKind.DOCX,
    ".txt": DocumentKind.TXT,
    ".text": DocumentKind.TXT,
}

_PDF_CONTENT_TYPES = frozenset({"application/pdf", "application/x-pdf"})


@dataclass(frozen=True, slots=True)
class Detection:
    """The detected kind, or the outcome explaining why the file will not be parsed."""

    kind: DocumentKind
    outcome: Outcome
    message: str


def extension_of(filename: str) -> str:
    """The lower-cased extension of the last path component (``""`` when none)."""
    base = posixpath.basename(filename.replace("\\", "/"))
    _, ext = posixpath.splitext(base)
    return ext.lower()


def is_pdf_bytes(data: bytes) -> bool:
    """True when ``data`` carries a PDF header near its start."""
    return data.startswith(PDF_MAGIC) or PDF_MAGIC in data[:_PDF_HEADER_WINDOW]


def is_docx_bytes(data: bytes) -> bool:
    """True when ``data`` is a ZIP whose central directory lists ``word/document.xml``.

    Reads only the central directory (bounded by the data size); no member is decompressed.
    """
    if not data.startswith(ZIP_MAGIC):
        return False
    # zipfile builds a ZipInfo per central-directory record; a 5 MB file can list ~100,000 of them.
    # Real DOCX files have a few dozen parts, so look at the end record's count before parsing.
    eocd = data.rfind(_EOCD_SIG, max(0, len(data) - 65_557))
    if eocd < 0 or eocd + 12 > len(data) or int.from_bytes(data[eocd + 10 : eocd + 12], "little") > _MAX_DOCX_PARTS:
        return False
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            return any(info.filename == "word/document.xml" for info in zf.infolist())
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError):
        return False


def detect_kind(filename: str, data: bytes, content_type: str | None = None) -> Detection:
    """Decide what ``data`` is from its extension and magic bytes.

    ``content_type`` is advisory only (browsers and ATS exports send ``application/octet-stream``); the
    extension selects the parser and the bytes must confirm it.
    """
    ext = extension_of(filename)
    kind = EXTENSION_KINDS.get(ext)
    if kind is None:
        # No usable extension: accept only a type the bytes prove unambiguously.
        if not ext:
            if is_pdf_bytes(data):
                return Detection(DocumentKind.PDF, Outcome.OK, "")
            if is_docx_bytes(data):
                return Detection(DocumentKind.DOCX, Outcome.OK, "")
        return Detection(DocumentKind.UNKNOWN, Outcome.UNSUPPORTED_TYPE, f"Unsupported file type {ext or '(none)'!r}.")
    if kind is DocumentKind.PDF and not is_pdf_bytes(data):
        return Detection(kind, Outcome.INVALID_FILE_CONTENT, "The file is not a PDF (no %PDF- header).")
    if kind is DocumentKind.DOCX and not is_docx_bytes(data):
        return Detection(kind, Outcome.INVALID_FILE_CONTENT, "The file is not a DOCX document.")
    if kind is DocumentKind.TXT and (is_pdf_bytes(data[:8]) or data.startswith(ZIP_MAGIC) or not looks_like_text(data)):
        return Detection(kind, Outcome.INVALID_FILE_CONTENT, "The file is not plain text.")
    return Detection(kind, Outcome.OK, "")


def check_pdf_upload(filename: str | None, content_type: str | None, data: bytes, *, field: str = "file") -> None:
    """CVDeepMatch's PDF-only upload check; raises on failure, returns ``None`` when the upload is a PDF.

    - the filename must end in ``.pdf`` and the content type must be ``application/pdf``, else
      :class:`InvalidUpload` (``INVALID_INPUT``);
    - the bytes must start with ``%PDF-``, else :class:`InvalidFileContent` (``INVALID_FILE_CONTENT``).
    """
    if not filename or extension_of(filename) != ".pdf":
        raise InvalidUpload("Only PDF files are accepted (the file name must end in .pdf).", field=field)
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type not in _PDF_CONTENT_TYPES:
        raise InvalidUpload("Only PDF files are accepted (content type must be application/pdf).", field=field)
    if not data.startswith(PDF_MAGIC):
        raise InvalidFileContent("The file content is not a PDF.", field=field)
