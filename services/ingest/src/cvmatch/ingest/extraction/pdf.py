"""PDF text extraction with pypdf, column-aware.

pypdf's plain mode follows content-stream order, which interleaves the two columns of a CV whose
generator draws line by line across the page. Layout mode places text on a fixed-width character grid;
from that grid we find a vertical gutter (a run of blank character columns with text on both sides)
and emit each two-column block column by column. Lines that cross the gutter (a name spanning the page,
a footer) end a block and stay whole, so headers and single-column pages are unchanged.
"""

from __future__ import annotations

import io
import logging

from pypdf import PageObject, PasswordType, PdfReader
from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError, WrongPasswordError

from .limits import ExtractionLimits
from .outcomes import Outcome
from .rawtext import RawText, TextLimitExceeded

# pypdf logs a warning per oddity in a damaged file; in the sandbox that is noise, not a signal.
logging.getLogger("pypdf").setLevel(logging.ERROR)

# Operators that show text; each one costs pypdf a fixed amount of work during extraction.
_TEXT_OPERATORS = (b"Tj", b"TJ", b"'", b'"')
# A gutter must be at least this many blank character columns wide on every line it separates.
_GUTTER_WIDTH = 3
# Consecutive lines with text on both sides of the gutter needed before a block is read as columns.
_MIN_COLUMN_LINES = 3


def extract_pdf(data: bytes, limits: ExtractionLimits) -> RawText:
    """Extract the text of a PDF; encrypted (non-empty user password) and oversized PDFs get outcomes."""
    reader = PdfReader(io.BytesIO(data), strict=False)
    if reader.is_encrypted:
        try:
            # An empty user password means "anyone may open it": not encrypted for our purpose.
            if reader.decrypt("") == PasswordType.NOT_DECRYPTED:
                return RawText(Outcome.PDF_ENCRYPTED, message=Outcome.PDF_ENCRYPTED.message)
        except (FileNotDecryptedError, WrongPasswordError, NotImplementedError, DependencyError):
            return RawText(Outcome.PDF_ENCRYPTED, message=Outcome.PDF_ENCRYPTED.message)
    try:
        page_count = len(reader.pages)
    except (FileNotDecryptedError, WrongPasswordError):
        return RawText(Outcome.PDF_ENCRYPTED, message=Outcome.PDF_ENCRYPTED.message)
    if page_count > limits.max_pdf_pages:
        return RawText(
            Outcome.LIMITS_EXCEEDED,
            pages=page_count,
            message=f"The PDF has more than {limits.max_pdf_pages} pages.",
        )
    texts: list[str] = []
    total = 0
    for page in reader.pages:
        contents = page.get_contents()
        if contents is not None:
            stream = contents.get_data()
            ops = sum(stream.count(op) for op in _TEXT_OPERATORS)
            if ops > limits.max_pdf_text_ops_per_page:
                return RawText(
                    Outcome.LIMITS_EXCEEDED,
                    pages=page_count,
                    message="A PDF page has too many text operations.",
                )
        text = _page_text(page)
        total += len(text)
        if total > limits.max_text_chars:
            raise TextLimitExceeded
        texts.append(text)
    return RawText(Outcome.OK, text="\n\n".join(texts), pages=page_count)


def _page_text(page: PageObject) -> str:
    """Layout-mode text split into columns; plain mode when layout mode fails or finds nothing."""
    try:
        layout: str = page.extract_text(extraction_mode="layout", layout_mode_space_vertically=False)
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError, ZeroDivisionError):
        layout = ""
    if layout.strip():
        return "\n".join(split_columns(layout.split("\n")))
    plain: str = page.extract_text()
    return plain


def _find_gutter(lines: list[str]) -> int | None:
    """The character column of the most-used gutter, or ``None`` when the page is not two-column."""
    filled = [line.rstrip() for line in lines if line.strip()]
    if len(filled) < 2 * _MIN_COLUMN_LINES:
        return None
    # First and last non-space index per line make "text on both sides of col" two comparisons.
    spans = [(len(line) - len(line.lstrip()), len(line) - 1, line) for line in filled]
    width = max(len(line) for line in filled)
    best_col, best_support = -1, 0
    for col in range(max(_GUTTER_WIDTH, width // 5), (width * 4) // 5):
        support = 0
        for first, last, line in spans:
            if first < col - 1 and last >= col + _GUTTER_WIDTH and line[col - 1 : col - 1 + _GUTTER_WIDTH].isspace():
                support += 1
        if support > best_support:
            best_col, best_support = col, support
    if best_support < max(_MIN_COLUMN_LINES, len(filled) // 4):
        return None
    return best_col


def _crosses(line: str, col: int) -> bool:
    return bool(line[col - 1 : col - 1 + _GUTTER_WIDTH].strip())


def split_columns(lines: list[str]) -> list[str]:
    """Re-order layout-mode lines so that each two-column block reads left column first, then right."""
    col = _find_gutter(lines)
    if col is None:
        return lines
    out: list[str] = []
    block: list[str] = []

    def flush() -> None:
        both = sum(1 for ln in block if ln[: col - 1].strip() and ln[col:].strip())
        if both >= _MIN_COLUMN_LINES:
            for side in (slice(None, col), slice(col, None)):
                for ln in block:
                    part = ln[side].rstrip()
                    if part.strip() or not ln.strip():
                        out.append(part)
                out.append("")
        else:
            out.extend(block)
        block.clear()

    for line in lines:
        if _crosses(line, col):
            flush()
            out.append(line)
        else:
            block.append(line)
    flush()
    return out
