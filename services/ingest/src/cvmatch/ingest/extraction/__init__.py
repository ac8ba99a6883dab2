"""Text extraction for ingest: type detection, archive and CSV expansion, sandboxed parsing.

Pure of network I/O: the ingest service calls this layer from its workers and servicer. Per-file
problems are :class:`Outcome` values; whole-request problems are :class:`ExtractionRequestError`
subclasses carrying a stable ``reason`` and the request ``field``.
"""

from .archive import ArchiveEntry, SkippedEntry, ZipScan, expand_zip, iter_zip, scan_zip
from .counting import CandidateCount, UploadFormat, count_candidates
from .csvsource import REQUIRED_COLUMNS, CsvCandidate, parse_csv
from .extract import document_from_text, extract_document_unsandboxed
from .limits import ExtractionLimits
from .normalize import normalize_text
from .outcomes import (
    DocumentKind,
    ExtractedDocument,
    ExtractionRequestError,
    InvalidFileContent,
    InvalidUpload,
    Outcome,
    PayloadTooLarge,
)
from .sandbox import ExtractionPool, PoolClosed, PoolStats
from .sniff import Detection, check_pdf_upload, detect_kind

__all__ = [
    "REQUIRED_COLUMNS",
    "ArchiveEntry",
    "CandidateCount",
    "CsvCandidate",
    "Detection",
    "DocumentKind",
    "ExtractedDocument",
    "ExtractionLimits",
    "ExtractionPool",
    "ExtractionRequestError",
    "InvalidFileContent",
    "InvalidUpload",
    "Outcome",
    "PayloadTooLarge",
    "PoolClosed",
    "PoolStats",
    "SkippedEntry",
    "UploadFormat",
    "ZipScan",
    "check_pdf_upload",
    "count_candidates",
    "detect_kind",
    "document_from_text",
    "expand_zip",
    "extract_document_unsandboxed",
    "iter_zip",
    "normalize_text",
    "parse_csv",
    "scan_zip",
]
