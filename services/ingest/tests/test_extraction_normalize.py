"""Normalisation: ligatures, bullets, de-hyphenation, whitespace, NFC, and kept line structure."""

from __future__ import annotations

import unicodedata

from cvmatch.ingest.extraction import ExtractionLimits, Outcome, document_from_text, normalize_text
from cvmatch.ingest.extraction.normalize import has_enough_text


def test_ligatures_are_expanded() -> None:
    assert normalize_text("ﬁnance ﬂow eﬀort oﬃce baﬄe") == "finance flow effort office baffle"


def test_bullets_become_dashes_only_at_line_start() -> None:
    text = "Skills\n• Python\n▪ Go\n◦ Rust\n– Kafka\n\uf0b7 SQL\n  ●   Terraform\nC • D"
    assert normalize_text(text).split("\n") == [
        "Skills",
        "- Python",
        "- Go",
        "- Rust",
        "- Kafka",
        "- SQL",
        "- Terraform",
        "C • D",
    ]


def test_hyphenated_line_ends_are_joined_but_real_dashes_kept() -> None:
    assert normalize_text("experi-\nence in Python") == "experience in Python"
    assert normalize_text("2019 -\n2021") == "2019 -\n2021"
    assert normalize_text("Front-\nEnd team") == "Front-\nEnd team"  # capital: a compound, not a break


def test_whitespace_and_line_structure() -> None:
    text = "Experience\r\n\r\n\r\n\r\nAcme\u00a0\u00a0Corp\t\tEngineer   \rSkills\f\u200bPython\u00adic"
    assert normalize_text(text) == "Experience\n\nAcme Corp Engineer\nSkills\nPythonic"


def test_nfc() -> None:
    decomposed = "Jose\u0301 Mu\u0308ller"
    out = normalize_text(decomposed)
    assert out == "José Müller"
    assert unicodedata.is_normalized("NFC", out)


def test_control_characters_removed() -> None:
    assert normalize_text("a\x00b\x07c\x1bd") == "abcd"


def test_minimum_text() -> None:
    assert not has_enough_text("Page 1", min_chars=40, min_words=8)
    assert not has_enough_text("x" * 100, min_chars=40, min_words=8)
    assert has_enough_text(
        "Senior engineer with Python, Go and Kubernetes experience in fintech.", min_chars=40, min_words=8
    )


def test_document_from_text_for_csv_rows() -> None:
    limits = ExtractionLimits()
    doc = document_from_text("Data scientist • ﬁve years of machine learning, Python, SQL and statistics.", limits)
    assert doc.outcome is Outcome.OK and "five years" in doc.text
    assert document_from_text("   ", limits).outcome is Outcome.NO_EXTRACTABLE_TEXT
    assert len(doc.content_sha256) == 64
