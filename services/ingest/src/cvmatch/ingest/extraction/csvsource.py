"""CSV uploads: ``candidate_id,name,resume_text,filename`` rows, parsed strictly and within limits.

Runs in the service process (no sandbox): the ``csv`` module is linear in the input, the input is capped
by ``max_csv_bytes``, every field by ``max_csv_field_chars`` and the row count by ``max_csv_rows``.
"""

from __future__ import annotations

import csv
import io
import threading
from dataclasses import dataclass

from .limits import ExtractionLimits
from .outcomes import InvalidFileContent, InvalidUpload, Outcome, PayloadTooLarge

REQUIRED_COLUMNS: tuple[str, ...] = ("candidate_id", "name", "resume_text", "filename")
DEFAULT_FIELD = "candidate_source_file"

# ``csv.field_size_limit`` is process-global; the lock makes set-parse-restore atomic against other
# threads that parse CSV through this module (asyncio code calling us is single-threaded anyway).
_FIELD_LIMIT_LOCK = threading.Lock()


@dataclass(frozen=True, slots=True)
class CsvCandidate:
    """One data row. ``row_number`` is 1-based over data rows (the header is row 0)."""

    row_number: int
    candidate_id: str
    name: str
    resume_text: str
    filename: str


def _decode(data: bytes, field: str) -> str:
    try:
        # utf-8-sig: a BOM written by Excel would otherwise leak into the first header name.
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidFileContent(
            f"The CSV is not valid UTF-8 (byte {exc.start}); save it as UTF-8.", field=field
        ) from exc


def parse_csv(data: bytes, limits: ExtractionLimits, *, field: str = DEFAULT_FIELD) -> list[CsvCandidate]:
    """Parse a candidates CSV; raise a typed error naming ``field`` for a whole-file problem.

    Errors: :class:`PayloadTooLarge` (bytes or rows over the limit), :class:`InvalidFileContent` (not
    UTF-8, unterminated quote, a field over the size limit, a row with extra cells, no data rows),
    :class:`InvalidUpload` (required columns missing; the message names them). Extra columns are ignored;
    column names match case-insensitively after trimming.
    """
    if len(data) > limits.max_csv_bytes:
        raise PayloadTooLarge(
            f"The CSV is larger than {limits.max_csv_bytes} bytes.",
            field=field,
            outcome=Outcome.FILE_TOO_LARGE,
        )
    text = _decode(data, field)
    with _FIELD_LIMIT_LOCK:
        previous = csv.field_size_limit(limits.max_csv_field_chars)
        try:
            return _parse(text, limits, field)
        finally:
            csv.field_size_limit(previous)


def _parse(text: str, limits: ExtractionLimits, field: str) -> list[CsvCandidate]:
    # newline="" semantics: StringIO keeps "\r\n" inside quoted fields intact for the csv module.
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise InvalidFileContent("The CSV is empty.", field=field)
        columns = [h.strip().lower() for h in header]
        missing = [c for c in REQUIRED_COLUMNS if c not in columns]
        if missing:
            raise InvalidUpload(
                f"The CSV is missing required column(s): {', '.join(missing)}.",
                field=field,
                outcome=Outcome.INVALID_FILE_CONTENT,
            )
        position = {c: columns.index(c) for c in REQUIRED_COLUMNS}
        rows: list[CsvCandidate] = []
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue  # blank lines (often a trailing one) are not candidates
            if len(rows) >= limits.max_csv_rows:
                raise PayloadTooLarge(
                    f"The CSV has more than {limits.max_csv_rows} rows.",
                    field=field,
                    outcome=Outcome.LIMITS_EXCEEDED,
                )
            if len(row) > len(header):
                raise InvalidFileContent(
                    f"CSV line {reader.line_num} has {len(row)} fields; the header has {len(header)}.",
                    field=field,
                )
            cells = row + [""] * (len(header) - len(row))
            rows.append(
                CsvCandidate(
                    row_number=len(rows) + 1,
                    candidate_id=cells[position["candidate_id"]].strip(),
                    name=cells[position["name"]].strip(),
                    resume_text=cells[position["resume_text"]],
                    filename=cells[position["filename"]].strip(),
                )
            )
    except csv.Error as exc:
        detail = str(exc)
        if "field larger than field limit" in detail:
            raise InvalidFileContent(
                f"CSV line {reader.line_num} has a field over {limits.max_csv_field_chars} characters.",
                field=field,
                outcome=Outcome.LIMITS_EXCEEDED,
            ) from exc
        raise InvalidFileContent(f"The CSV is malformed near line {reader.line_num}: {detail}.", field=field) from exc
    if not rows:
        raise InvalidFileContent("The CSV has no candidate rows.", field=field)
    return rows
