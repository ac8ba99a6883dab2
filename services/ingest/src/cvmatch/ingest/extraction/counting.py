"""Counting candidates in an upload before any parsing, so credits can be reserved up front."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .archive import DEFAULT_FIELD, scan_zip
from .csvsource import parse_csv
from .limits import ExtractionLimits
from .outcomes import Outcome, PayloadTooLarge
from .sniff import extension_of


class UploadFormat(enum.StrEnum):
    """How an upload holds candidates."""

    ZIP = "zip"
    CSV = "csv"
    FILE = "file"

    @classmethod
    def from_filename(cls, filename: str) -> UploadFormat:
        """``.zip`` and ``.csv`` by extension; anything else is a single file."""
        ext = extension_of(filename)
        if ext == ".zip":
            return cls.ZIP
        if ext == ".csv":
            return cls.CSV
        return cls.FILE


@dataclass(frozen=True, slots=True)
class CandidateCount:
    """``to_extract`` files will be parsed (reserve credits for these); ``skipped`` already have an
    outcome (a bzip2 member, a ``.png``) and are never charged."""

    to_extract: int
    skipped: int

    @property
    def total(self) -> int:
        """Every candidate the batch will report on."""
        return self.to_extract + self.skipped


def count_candidates(
    upload: UploadFormat, data: bytes, limits: ExtractionLimits, *, field: str = DEFAULT_FIELD
) -> CandidateCount:
    """Count the candidates in an upload with the same checks that extraction applies.

    ZIP: central directory only (nothing decompressed). CSV: a full strict parse (bounded by the CSV
    limits). A single file: one candidate, or a :class:`PayloadTooLarge` when it is over the size limit.
    Raises the same typed errors as :func:`~.archive.expand_zip` and :func:`~.csvsource.parse_csv`.
    """
    if upload is UploadFormat.ZIP:
        scan = scan_zip(data, limits, field=field)
        return CandidateCount(to_extract=len(scan.accepted), skipped=len(scan.skipped))
    if upload is UploadFormat.CSV:
        return CandidateCount(to_extract=len(parse_csv(data, limits, field=field)), skipped=0)
    if len(data) > limits.max_file_bytes:
        raise PayloadTooLarge(
            f"The file is larger than {limits.max_file_bytes} bytes.",
            field=field,
            outcome=Outcome.FILE_TOO_LARGE,
        )
    return CandidateCount(to_extract=1, skipped=0)
