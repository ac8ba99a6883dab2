"""Every limit the extraction layer enforces, in one frozen, configurable value."""

from __future__ import annotations

from dataclasses import dataclass

_MB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ExtractionLimits:
    """Limits for uploads, archives, CSVs and the sandboxed parsers.

    The defaults suit CVs and job descriptions; the service builds one from its ``Settings`` and passes
    it down (nothing here reads the environment).
    """

    #: Largest single file (a CV, a job description, one ZIP member), in bytes.
    max_file_bytes: int = 5 * _MB
    #: Largest ZIP upload, in bytes (the compressed archive itself).
    max_archive_bytes: int = 100 * _MB
    #: Most members a ZIP may list in its central directory (junk entries included).
    max_archive_entries: int = 2000
    #: Largest sum of declared uncompressed sizes of a ZIP's members.
    max_archive_total_uncompressed: int = 500 * _MB
    #: Largest uncompressed:compressed ratio of one member; a CV/DOCX part is far below this.
    max_compression_ratio: float = 100.0
    #: Members smaller than this are exempt from the ratio check (tiny files compress oddly).
    ratio_exempt_bytes: int = 64 * 1024
    #: Largest CSV upload, in bytes.
    max_csv_bytes: int = 50 * _MB
    #: Largest single CSV field, in characters.
    max_csv_field_chars: int = 1 * _MB
    #: Most data rows in a CSV (the header excluded).
    max_csv_rows: int = 10_000
    #: Largest XML part read from a DOCX (uncompressed), in bytes.
    max_docx_xml_bytes: int = 30 * _MB
    #: Most pages read from a PDF.
    max_pdf_pages: int = 100
    #: Most text-showing operators on one PDF page: pypdf's cost is linear in them, and a runaway
    #: stream of millions of ``(A)Tj`` is rejected before extraction instead of burning the CPU limit.
    max_pdf_text_ops_per_page: int = 20_000
    #: Longest extracted text, in characters; more is a hostile or non-CV document.
    max_text_chars: int = 1_000_000
    #: Fewest non-space characters for text to count as extracted.
    min_text_chars: int = 40
    #: Fewest words for text to count as extracted.
    min_text_words: int = 8
    #: CPU seconds one extraction may use in the sandbox (RLIMIT_CPU, re-armed per task).
    cpu_seconds: int = 10
    #: Address-space limit of a sandbox worker (RLIMIT_AS), in bytes.
    memory_bytes: int = 512 * _MB
    #: Wall-clock seconds one extraction may take, enforced by the parent (kill and replace the worker).
    wall_seconds: float = 20.0
    #: Tasks a worker serves before it is replaced, bounding slow leaks and fragmentation.
    max_tasks_per_worker: int = 500

    def __post_init__(self) -> None:
        for name in (
            "max_file_bytes",
            "max_archive_bytes",
            "max_archive_entries",
            "max_archive_total_uncompressed",
            "max_csv_bytes",
            "max_csv_field_chars",
            "max_csv_rows",
            "max_docx_xml_bytes",
            "max_pdf_pages",
            "max_pdf_text_ops_per_page",
            "max_text_chars",
            "cpu_seconds",
            "memory_bytes",
            "max_tasks_per_worker",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"ExtractionLimits.{name} must be positive")
        if self.max_compression_ratio < 1 or self.wall_seconds <= 0:
            raise ValueError("ExtractionLimits: ratio must be >= 1 and wall_seconds > 0")
