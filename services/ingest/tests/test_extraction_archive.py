"""ZIP uploads: junk, nesting, and every hostile shape from NOTES.md "Hostile files"."""

from __future__ import annotations

import time
import zipfile

import psutil
import pytest

from cvmatch.ingest.extraction import (
    ArchiveEntry,
    ExtractionLimits,
    InvalidFileContent,
    Outcome,
    PayloadTooLarge,
    SkippedEntry,
    UploadFormat,
    count_candidates,
    expand_zip,
    scan_zip,
)
from cvmatch.testing import filegen as fg

LIMITS = ExtractionLimits()
CV_TXT = "\n".join(fg.cv_lines()).encode()
MB = 1024 * 1024


def _rss() -> int:
    return int(psutil.Process().memory_info().rss)


def test_nested_folders_and_junk() -> None:
    data = fg.zip_of(
        [
            ("resumes/", b""),
            ("resumes/2024/alice.txt", CV_TXT),
            ("resumes/bob.pdf", fg.cv_pdf(1)),
            ("carol.docx", fg.docx_with_table()),
            ("__MACOSX/resumes/._bob.pdf", b"\x00\x05\x16\x07junk"),
            ("resumes/.DS_Store", b"\x00\x00\x00\x01Bud1"),
            ("resumes/._alice.txt", b"junk"),
            ("photo.png", b"\x89PNG\r\n"),
        ]
    )
    items = expand_zip(data, LIMITS)
    names = [i.name for i in items]
    assert names == ["resumes/2024/alice.txt", "resumes/bob.pdf", "carol.docx", "photo.png"]
    assert isinstance(items[0], ArchiveEntry) and items[0].data == CV_TXT
    assert isinstance(items[3], SkippedEntry) and items[3].outcome is Outcome.UNSUPPORTED_TYPE
    count = count_candidates(UploadFormat.ZIP, data, LIMITS)
    assert (count.to_extract, count.skipped) == (3, 1)


def test_overlapping_entry_bomb_is_rejected_before_inflating() -> None:
    bomb = fg.zip_overlapping_bomb(n_files=60, kernel_size=4 * MB)  # 240 MB of "a" from ~8 KB
    assert len(bomb) < 64 * 1024
    before = _rss()
    started = time.monotonic()
    with pytest.raises(InvalidFileContent) as err:
        expand_zip(bomb, LIMITS)
    assert time.monotonic() - started < 1.0
    assert "overlapping" in err.value.message
    assert err.value.reason == "INVALID_FILE_CONTENT" and err.value.field == "candidate_source_file"
    assert err.value.outcome is Outcome.LIMITS_EXCEEDED
    with pytest.raises(InvalidFileContent):
        count_candidates(UploadFormat.ZIP, bomb, LIMITS)
    assert _rss() - before < 32 * MB


def test_high_ratio_member_fails_alone() -> None:
    data = fg.zip_of([("a.txt", CV_TXT), ("bomb.txt", b"\x00" * (40 * MB)), ("small-bomb.txt", b"A" * (4 * MB))])
    assert len(data) < 200 * 1024
    before = _rss()
    items = expand_zip(data, LIMITS)
    assert [type(i).__name__ for i in items] == ["ArchiveEntry", "SkippedEntry", "SkippedEntry"]
    assert items[1].outcome is Outcome.LIMITS_EXCEEDED  # type: ignore[union-attr]
    assert items[2].outcome is Outcome.LIMITS_EXCEEDED  # type: ignore[union-attr]
    assert _rss() - before < 16 * MB


def test_large_but_honest_member_is_file_too_large() -> None:
    import os

    noise = os.urandom(6 * MB)  # incompressible: ratio ~1, size over the 5 MB limit
    items = expand_zip(fg.zip_of([("big.txt", noise), ("ok.txt", CV_TXT)]), LIMITS)
    assert isinstance(items[0], SkippedEntry) and items[0].outcome is Outcome.FILE_TOO_LARGE
    assert isinstance(items[1], ArchiveEntry)


def test_bzip2_and_lzma_members_are_skipped() -> None:
    data = fg.zip_with_methods(
        [
            ("a.txt", CV_TXT, zipfile.ZIP_DEFLATED),
            ("b.txt", b"\x00" * MB, zipfile.ZIP_BZIP2),
            ("c.txt", CV_TXT, zipfile.ZIP_LZMA),
            ("d.txt", CV_TXT, zipfile.ZIP_STORED),
        ]
    )
    items = expand_zip(data, LIMITS)
    outcomes = [i.outcome if isinstance(i, SkippedEntry) else Outcome.OK for i in items]
    assert outcomes == [Outcome.OK, Outcome.UNSUPPORTED_TYPE, Outcome.UNSUPPORTED_TYPE, Outcome.OK]
    assert "bzip2" in items[1].message  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "name", ["../../etc/cron.d/evil.txt", "/etc/evil.txt", "a/../../evil.txt", "C:/x/evil.txt", "..\\evil.txt"]
)
def test_zip_slip_entries_fail_alone(name: str) -> None:
    items = expand_zip(fg.zip_of([(name, CV_TXT), ("good.txt", CV_TXT)]), LIMITS)
    assert isinstance(items[0], SkippedEntry) and items[0].outcome is Outcome.INVALID_FILE_CONTENT
    assert isinstance(items[1], ArchiveEntry) and items[1].name == "good.txt"


def test_dot_dot_inside_the_archive_is_allowed() -> None:
    items = expand_zip(fg.zip_of([("a/b/../c.txt", CV_TXT)]), LIMITS)
    assert isinstance(items[0], ArchiveEntry) and items[0].name == "a/c.txt"


def test_too_many_entries_is_rejected_from_the_end_record() -> None:
    data = fg.zip_of([(f"cv{i}.txt", b"x") for i in range(30)])
    with pytest.raises(PayloadTooLarge) as err:
        scan_zip(data, ExtractionLimits(max_archive_entries=20))
    assert err.value.reason == "PAYLOAD_TOO_LARGE"


def test_total_uncompressed_limit() -> None:
    data = fg.zip_of([(f"cv{i}.txt", CV_TXT) for i in range(10)])
    with pytest.raises(PayloadTooLarge):
        scan_zip(data, ExtractionLimits(max_archive_total_uncompressed=len(CV_TXT) * 5))


def test_lying_header_is_caught_by_the_crc() -> None:
    data = bytearray(fg.zip_of([("a.txt", CV_TXT * 50)]))
    # Shrink the declared size in both headers: zipfile stops early and the CRC no longer matches.
    real = len(CV_TXT * 50)
    for sig, off in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        pos = data.find(sig)
        assert int.from_bytes(data[pos + off : pos + off + 4], "little") == real
        data[pos + off : pos + off + 4] = (real // 2).to_bytes(4, "little")
    items = expand_zip(bytes(data), LIMITS)
    assert isinstance(items[0], SkippedEntry) and items[0].outcome is Outcome.INVALID_FILE_CONTENT


@pytest.mark.parametrize("data", [b"", b"not a zip", b"PK\x03\x04" + b"\x00" * 100, fg.cv_pdf(1)])
def test_not_a_zip(data: bytes) -> None:
    with pytest.raises(InvalidFileContent):
        expand_zip(data, LIMITS)


def test_encrypted_member_is_skipped() -> None:
    data = bytearray(fg.zip_of([("a.txt", CV_TXT), ("b.txt", CV_TXT)]))
    # Set the "encrypted" flag bit on the second member in the central directory.
    first = data.find(b"PK\x01\x02")
    second = data.find(b"PK\x01\x02", first + 1)
    data[second + 8] |= 0x01
    items = expand_zip(bytes(data), LIMITS)
    assert isinstance(items[0], ArchiveEntry)
    assert isinstance(items[1], SkippedEntry) and items[1].outcome is Outcome.UNSUPPORTED_TYPE
