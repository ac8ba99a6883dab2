"""CSV uploads: BOM, quoted multi-line fields, strictness and limits."""

from __future__ import annotations

import time

import psutil
import pytest

from cvmatch.ingest.extraction import (
    ExtractionLimits,
    InvalidFileContent,
    InvalidUpload,
    PayloadTooLarge,
    UploadFormat,
    count_candidates,
    parse_csv,
)
from cvmatch.testing import filegen as fg

LIMITS = ExtractionLimits()
MB = 1024 * 1024


@pytest.mark.parametrize("bom", [True, False])
def test_bom_and_multiline_quoted_fields(bom: bool) -> None:
    resume = 'Summary\r\nSoftware engineer, "Pythonista".\r\n\r\nSkills\r\n• Python, Go'
    data = fg.csv_bytes(
        [["1", "John Doe", resume, "john.pdf"], ["2", "Jane Smith", "Data scientist", "jane.docx"]], bom=bom
    )
    rows = parse_csv(data, LIMITS)
    assert [r.candidate_id for r in rows] == ["1", "2"]
    assert rows[0].name == "John Doe" and rows[0].filename == "john.pdf"
    assert rows[0].resume_text == resume
    assert rows[1].row_number == 2
    assert count_candidates(UploadFormat.CSV, data, LIMITS).to_extract == 2


def test_columns_in_any_order_and_extra_columns() -> None:
    data = fg.csv_bytes(
        [["a.pdf", "Some text", "7", "Ann", "x"]], header=["Filename", "resume_text", "CANDIDATE_ID", "name", "extra"]
    )
    (row,) = parse_csv(data, LIMITS)
    assert (row.candidate_id, row.name, row.filename, row.resume_text) == ("7", "Ann", "a.pdf", "Some text")


def test_missing_columns_are_named() -> None:
    data = fg.csv_bytes([["1", "text"]], header=["candidate_id", "resume"])
    with pytest.raises(InvalidUpload) as err:
        parse_csv(data, LIMITS, field="candidate_file")
    assert err.value.reason == "INVALID_INPUT" and err.value.field == "candidate_file"
    assert "name" in err.value.message and "resume_text" in err.value.message and "filename" in err.value.message


def test_unterminated_quote_is_an_error_not_a_merge() -> None:
    data = b'candidate_id,name,resume_text,filename\r\n1,A,"never closed,a.pdf\r\n2,B,text,b.pdf\r\n'
    with pytest.raises(InvalidFileContent) as err:
        parse_csv(data, LIMITS)
    assert err.value.reason == "INVALID_FILE_CONTENT"


def test_ten_megabyte_field_is_refused_quickly_with_bounded_memory() -> None:
    data = fg.csv_bytes([["1", "A", "x" * (10 * MB), "a.pdf"]])
    before = psutil.Process().memory_info().rss
    started = time.monotonic()
    with pytest.raises(InvalidFileContent) as err:
        parse_csv(data, LIMITS)
    assert time.monotonic() - started < 2.0
    assert "field" in err.value.message
    assert psutil.Process().memory_info().rss - before < 64 * MB


def test_field_limit_is_restored() -> None:
    import csv

    previous = csv.field_size_limit()
    parse_csv(fg.csv_bytes([["1", "A", "text", "a.pdf"]]), LIMITS)
    assert csv.field_size_limit() == previous


def test_row_limit() -> None:
    data = fg.csv_bytes([[str(i), "N", "text", "f.pdf"] for i in range(11)])
    with pytest.raises(PayloadTooLarge):
        parse_csv(data, ExtractionLimits(max_csv_rows=10))
    assert len(parse_csv(data, ExtractionLimits(max_csv_rows=11))) == 11


def test_not_utf8() -> None:
    data = "candidate_id,name,resume_text,filename\n1,José,texte,a.pdf\n".encode("latin-1")
    with pytest.raises(InvalidFileContent):
        parse_csv(data, LIMITS)


@pytest.mark.parametrize(
    "data",
    [b"", b"candidate_id,name,resume_text,filename\r\n", b"candidate_id,name,resume_text,filename\n1,a,b,c,EXTRA\n"],
)
def test_empty_or_malformed(data: bytes) -> None:
    with pytest.raises(InvalidFileContent):
        parse_csv(data, LIMITS)


def test_blank_lines_are_not_candidates() -> None:
    data = b"candidate_id,name,resume_text,filename\n1,A,text,a.pdf\n\n2,B,text,b.pdf\n\n"
    assert len(parse_csv(data, LIMITS)) == 2


def test_too_large() -> None:
    with pytest.raises(PayloadTooLarge):
        parse_csv(b"x" * 2000, ExtractionLimits(max_csv_bytes=1000))
