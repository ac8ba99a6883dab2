"""Real files, extracted in-process (the parsers themselves; the sandbox has its own tests)."""

from __future__ import annotations

import codecs

import pytest

from cvmatch.ingest.extraction import (
    DocumentKind,
    ExtractionLimits,
    InvalidFileContent,
    InvalidUpload,
    Outcome,
    check_pdf_upload,
    detect_kind,
    extract_document_unsandboxed,
)
from cvmatch.testing import filegen as fg

LIMITS = ExtractionLimits()


def extract(name: str, data: bytes):
    return extract_document_unsandboxed(name, data, LIMITS)


def test_text_pdf() -> None:
    doc = extract("cv.pdf", fg.cv_pdf(2))
    assert doc.outcome is Outcome.OK and doc.kind is DocumentKind.PDF and doc.pages == 2
    lines = doc.text.split("\n")
    assert "Experience" in lines and "Skills" in lines  # headings stay on their own lines
    assert "Built and operated Kubernetes services for millions of users." in lines


def test_two_column_pdf_reads_each_column_coherently() -> None:
    left = ["Skills", "Python and Django", "Kubernetes operators", "PostgreSQL tuning", "Languages", "English"]
    right = [
        "Experience",
        "Lead engineer at Acme",
        "Built the billing platform",
        "Education",
        "MSc Computer Science",
        "Oxford University",
    ]
    data = fg.pdf_two_column(left, right, header="Jane Doe, Senior Engineer", footer="References on request")
    doc = extract("two.pdf", data)
    assert doc.outcome is Outcome.OK
    lines = [ln for ln in doc.text.split("\n") if ln]
    assert lines[0] == "Jane Doe, Senior Engineer"
    assert lines[1 : 1 + len(left)] == left
    assert lines[1 + len(left) : 1 + len(left) + len(right)] == right
    assert lines[-1] == "References on request"


def test_single_column_with_right_aligned_dates_is_not_split() -> None:
    lines = []
    for job in range(3):
        lines.append(f"Engineer at Company {job}" + " " * 60 + f"201{job} - 202{job}")
        lines.append("Designed and built large distributed systems across several teams and regions daily.")
    doc = extract("cv.pdf", fg.pdf_pages([lines]))
    assert doc.outcome is Outcome.OK
    assert "Engineer at Company 0 2010 - 2020" in doc.text.split("\n")


def test_image_only_pdf_has_no_extractable_text() -> None:
    doc = extract("scan.pdf", fg.pdf_image_only())
    assert doc.outcome is Outcome.NO_EXTRACTABLE_TEXT and doc.text == ""


def test_page_without_resources_has_no_extractable_text() -> None:
    assert extract("nores.pdf", fg.pdf_without_resources()).outcome is Outcome.NO_EXTRACTABLE_TEXT


def test_encrypted_pdf() -> None:
    doc = extract("locked.pdf", fg.pdf_pages([fg.cv_lines()], encrypt=("secret", "owner")))
    assert doc.outcome is Outcome.PDF_ENCRYPTED and doc.text == ""


def test_pdf_with_empty_user_password_is_opened() -> None:
    doc = extract("open.pdf", fg.pdf_pages([fg.cv_lines()], encrypt=("", "owner")))
    assert doc.outcome is Outcome.OK
    assert "Backend engineer with ten years of experience" in doc.text


def test_docx_paragraphs_and_tables_in_document_order() -> None:
    doc = extract("cv.docx", fg.docx_with_table())
    assert doc.outcome is Outcome.OK and doc.kind is DocumentKind.DOCX
    assert doc.text.split("\n") == [
        "John Smith",
        "Platform engineer focused on reliability and developer tooling.",
        "Skills",
        "Python | 8 years",
        "Kubernetes | 5 years",
        "Go | 3 years",
        "Experience",
        "Staff Engineer at Example Corp, building internal platforms for hundreds of teams.",
    ]


def test_docx_bullets_normalised() -> None:
    doc = extract("cv.docx", fg.docx_from_lines(fg.cv_lines()))
    assert "- Built and operated Python services for millions of users." in doc.text.split("\n")


@pytest.mark.parametrize(
    ("encoding", "prefix"),
    [("latin-1", b""), ("cp1252", b""), ("utf-8", b""), ("utf-8", codecs.BOM_UTF8), ("utf-16-le", codecs.BOM_UTF16_LE)],
)
def test_txt_encodings(encoding: str, prefix: bytes) -> None:
    text = "\n".join(fg.cv_lines("José Müller-Åström")).replace("•", "-")
    text += "\nFrançais courant, expérience à l'étranger, naïveté zéro, Zürich, señor."
    doc = extract("cv.txt", prefix + text.encode(encoding))
    assert doc.outcome is Outcome.OK, doc.message
    assert doc.text.startswith("José Müller-Åström\n")
    assert "expérience à l'étranger, naïveté zéro, Zürich, señor." in doc.text


@pytest.mark.parametrize(
    ("name", "data", "outcome"),
    [
        ("cv.pdf", b"Hello, I am plain text pretending to be a PDF", Outcome.INVALID_FILE_CONTENT),
        ("cv.docx", b"%PDF-1.4 not a docx", Outcome.INVALID_FILE_CONTENT),
        ("cv.txt", b"%PDF-1.7\n binary", Outcome.INVALID_FILE_CONTENT),
        ("cv.txt", b"MZ\x90\x00\x03\x00\x00\x00", Outcome.INVALID_FILE_CONTENT),
        ("cv.exe", b"MZ\x90\x00", Outcome.UNSUPPORTED_TYPE),
        ("cv.doc", b"\xd0\xcf\x11\xe0", Outcome.UNSUPPORTED_TYPE),
        ("cv.pdf", b"%PDF-1.4\ngarbage that is not a pdf at all", Outcome.PARSE_ERROR),
    ],
)
def test_type_mismatch_and_unsupported(name: str, data: bytes, outcome: Outcome) -> None:
    doc = extract(name, data)
    assert doc.outcome is outcome, doc.message
    assert doc.message


def test_docx_detection_needs_word_document_xml() -> None:
    assert detect_kind("cv.docx", fg.docx_with_table()).outcome is Outcome.OK
    plain_zip = fg.zip_of([("a.txt", b"hello")])
    assert detect_kind("cv.docx", plain_zip).outcome is Outcome.INVALID_FILE_CONTENT
    assert detect_kind("noextension", fg.cv_pdf(1)).kind is DocumentKind.PDF


def test_file_too_large() -> None:
    small = ExtractionLimits(max_file_bytes=1000)
    doc = extract_document_unsandboxed("cv.txt", b"word " * 500, small)
    assert doc.outcome is Outcome.FILE_TOO_LARGE


def test_docx_with_dtd_is_refused() -> None:
    import io
    import zipfile

    evil = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">]>'
        b'<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        b"<w:body><w:p><w:r><w:t>&lol;</w:t></w:r></w:p></w:body></w:document>"
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("word/document.xml", evil)
    assert extract("evil.docx", buf.getvalue()).outcome is Outcome.PARSE_ERROR


def test_check_pdf_upload() -> None:
    pdf = fg.cv_pdf(1)
    check_pdf_upload("cv.pdf", "application/pdf", pdf)
    check_pdf_upload("CV.PDF", "application/pdf; charset=binary", pdf)
    for name, ctype in [("cv.docx", "application/pdf"), ("cv.pdf", "text/plain"), (None, "application/pdf")]:
        with pytest.raises(InvalidUpload) as err:
            check_pdf_upload(name, ctype, pdf, field="file")
        assert err.value.reason == "INVALID_INPUT" and err.value.field == "file"
    with pytest.raises(InvalidFileContent) as bad:
        check_pdf_upload("cv.pdf", "application/pdf", b"<html>not a pdf</html>")
    assert bad.value.reason == "INVALID_FILE_CONTENT"


def test_docx_layout_table_is_read_cell_by_cell() -> None:
    import io

    from docx import Document

    doc = Document()
    table = doc.add_table(rows=1, cols=2)
    left, right = table.cell(0, 0), table.cell(0, 1)
    left.text = "Skills"
    for skill in ("Python", "Go", "Kubernetes"):
        left.add_paragraph(skill)
    right.text = "Experience"
    right.add_paragraph("Lead engineer at Acme building payment systems for many customers.")
    nested = right.add_table(rows=1, cols=2)
    nested.cell(0, 0).text = "2019"
    nested.cell(0, 1).text = "Promoted to principal engineer"
    buf = io.BytesIO()
    doc.save(buf)
    out = extract("cv.docx", buf.getvalue())
    assert out.outcome is Outcome.OK
    lines = [ln for ln in out.text.split("\n") if ln]
    assert lines == [
        "Skills",
        "Python",
        "Go",
        "Kubernetes",
        "Experience",
        "Lead engineer at Acme building payment systems for many customers.",
        "2019 | Promoted to principal engineer",
    ]


def test_counting_single_files_and_upload_format() -> None:
    from cvmatch.ingest.extraction import PayloadTooLarge, UploadFormat, count_candidates

    assert UploadFormat.from_filename("Resumes.ZIP") is UploadFormat.ZIP
    assert UploadFormat.from_filename("people.csv") is UploadFormat.CSV
    assert UploadFormat.from_filename("cv.pdf") is UploadFormat.FILE
    assert count_candidates(UploadFormat.FILE, b"x", LIMITS).total == 1
    with pytest.raises(PayloadTooLarge):
        count_candidates(UploadFormat.FILE, b"x" * 11, ExtractionLimits(max_file_bytes=10))


def test_docx_detection_refuses_a_central_directory_with_too_many_entries() -> None:
    many = fg.zip_of([("word/document.xml", b"<x/>"), *[(f"p{i}", b"") for i in range(2100)]])
    assert detect_kind("cv.docx", many).outcome is Outcome.INVALID_FILE_CONTENT
