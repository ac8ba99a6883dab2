"""The sandboxed pool: hostile files fail alone, quickly, with bounded memory; good files go on."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import time
import zipfile

import psutil
import pytest

from cvmatch.ingest.extraction import (
    DocumentKind,
    ExtractionLimits,
    ExtractionPool,
    Outcome,
    PoolClosed,
    expand_zip,
)
from cvmatch.ingest.extraction.archive import ArchiveEntry
from cvmatch.testing import filegen as fg

MB = 1024 * 1024
GOOD = {
    "cv.pdf": fg.cv_pdf(2),
    "cv.docx": fg.docx_with_table(),
    "cv.txt": "\n".join(fg.cv_lines("Zoë Brontë")).encode("cp1252", errors="replace"),
}


def _rss() -> int:
    return int(psutil.Process().memory_info().rss)


def _huge_docx(paragraphs: int) -> bytes:
    """A small DOCX whose document.xml (~36 bytes per paragraph) parses into millions of elements."""
    body = b"<w:p><w:r><w:t>a</w:t></w:r></w:p>" * paragraphs
    xml = (
        b'<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        b"<w:body>" + body + b"</w:body></w:document>"
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("word/document.xml", xml)
    return buf.getvalue()


async def _good_ones(pool: ExtractionPool, copies: int = 1) -> None:
    docs = await asyncio.gather(*(pool.extract(n, d) for _ in range(copies) for n, d in GOOD.items()))
    assert [d.outcome for d in docs] == [Outcome.OK] * len(docs), [d.message for d in docs]


async def test_good_files_and_type_checks() -> None:
    async with ExtractionPool(ExtractionLimits(), workers=2) as pool:
        docs = {n: await pool.extract(n, d) for n, d in GOOD.items()}
        assert docs["cv.pdf"].kind is DocumentKind.PDF and docs["cv.pdf"].pages == 2
        assert "Python | 8 years" in docs["cv.docx"].text
        assert docs["cv.txt"].text.startswith("Zoë Brontë\n")
        assert (await pool.extract("cv.pdf", b"not a pdf")).outcome is Outcome.INVALID_FILE_CONTENT
        assert (await pool.extract("cv.png", b"\x89PNG")).outcome is Outcome.UNSUPPORTED_TYPE
        assert (await pool.extract("scan.pdf", fg.pdf_image_only())).outcome is Outcome.NO_EXTRACTABLE_TEXT
        locked = fg.pdf_pages([fg.cv_lines()], encrypt=("pw", "owner"))
        assert (await pool.extract("locked.pdf", locked)).outcome is Outcome.PDF_ENCRYPTED
        assert (await pool.extract("big.txt", b"a " * (3 * MB))).outcome is Outcome.FILE_TOO_LARGE
        pids = pool.worker_pids
    # close() stops every worker.
    for pid in pids:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    with pytest.raises(PoolClosed):
        await pool.extract("cv.txt", GOOD["cv.txt"])


async def test_runaway_text_operators_are_rejected_before_parsing() -> None:
    bomb = fg.pdf_text_ops_bomb(2_000_000)  # ~12 MB of "(A)Tj " in ~30 KB
    assert len(bomb) < 64 * 1024
    async with ExtractionPool(ExtractionLimits(), workers=2) as pool:
        started = time.monotonic()
        doc, *_ = await asyncio.gather(pool.extract("bomb.pdf", bomb), _good_ones(pool))
        assert doc.outcome is Outcome.LIMITS_EXCEEDED
        assert time.monotonic() - started < 5


async def test_cpu_limit_kills_a_runaway_parse_and_the_pool_goes_on() -> None:
    # With the operator pre-check disabled only the process limits stand between pypdf and ~100 s of CPU.
    limits = ExtractionLimits(max_pdf_text_ops_per_page=10**9, cpu_seconds=1, wall_seconds=10)
    bomb = fg.pdf_text_ops_bomb(2_000_000)
    async with ExtractionPool(limits, workers=2) as pool:
        before_pids = set(pool.worker_pids)
        rss_before = _rss()
        started = time.monotonic()
        results = await asyncio.gather(pool.extract("bomb.pdf", bomb), _good_ones(pool, copies=3))
        elapsed = time.monotonic() - started
        assert results[0].outcome is Outcome.LIMITS_EXCEEDED
        assert elapsed < 8  # 1 s of CPU (plus the decode) then SIGXCPU, far below the wall limit
        assert pool.stats.killed == 1
        await _good_ones(pool, copies=2)
        assert set(pool.worker_pids) != before_pids  # the killed worker was replaced
        assert _rss() - rss_before < 32 * MB


async def test_wall_clock_limit_kills_a_slow_parse() -> None:
    limits = ExtractionLimits(max_pdf_text_ops_per_page=10**9, cpu_seconds=60, wall_seconds=1.5)
    async with ExtractionPool(limits, workers=1) as pool:
        started = time.monotonic()
        doc = await pool.extract("bomb.pdf", fg.pdf_text_ops_bomb(2_000_000))
        assert doc.outcome is Outcome.LIMITS_EXCEEDED and "longer than" in doc.message
        assert time.monotonic() - started < 4
        await _good_ones(pool)  # waits for the replacement worker


async def test_memory_limit() -> None:
    limits = ExtractionLimits(memory_bytes=300 * MB)
    huge = _huge_docx(800_000)  # ~29 MB of XML, well under max_docx_xml_bytes, in a ~60 KB file
    async with ExtractionPool(limits, workers=1) as pool:
        rss_before = _rss()
        doc = await pool.extract("huge.docx", huge)
        assert doc.outcome is Outcome.LIMITS_EXCEEDED, doc.message
        assert _rss() - rss_before < 32 * MB
        await _good_ones(pool)


@pytest.mark.parametrize("kind", ["array", "dict"])
async def test_deeply_nested_pdf_objects(kind: str) -> None:
    async with ExtractionPool(ExtractionLimits(wall_seconds=10), workers=1) as pool:
        started = time.monotonic()
        doc = await pool.extract("nested.pdf", fg.pdf_deeply_nested(50_000, kind=kind))
        assert doc.outcome in {Outcome.PARSE_ERROR, Outcome.LIMITS_EXCEEDED, Outcome.NO_EXTRACTABLE_TEXT}
        assert time.monotonic() - started < 10
        await _good_ones(pool)


async def test_zip_of_good_and_hostile_members_through_the_pool() -> None:
    archive = fg.zip_of(
        [
            ("a/cv.pdf", GOOD["cv.pdf"]),
            ("a/bomb.pdf", fg.pdf_text_ops_bomb(2_000_000)),
            ("b/cv.docx", GOOD["cv.docx"]),
            ("b/nested.pdf", fg.pdf_deeply_nested(20_000)),
            ("scan.pdf", fg.pdf_image_only()),
            ("fake.pdf", b"just text"),
            ("zeros.txt", b"\x00" * (20 * MB)),
        ]
    )
    async with ExtractionPool(ExtractionLimits(), workers=2) as pool:
        outcomes: dict[str, Outcome] = {}
        items = expand_zip(archive, pool.limits)
        entries = [i for i in items if isinstance(i, ArchiveEntry)]
        docs = await asyncio.gather(*(pool.extract(e.name, e.data) for e in entries))
        outcomes = {e.name: d.outcome for e, d in zip(entries, docs, strict=True)}
        outcomes.update({i.name: i.outcome for i in items if not isinstance(i, ArchiveEntry)})
    assert outcomes["a/cv.pdf"] is Outcome.OK and outcomes["b/cv.docx"] is Outcome.OK
    assert outcomes["a/bomb.pdf"] is Outcome.LIMITS_EXCEEDED
    assert outcomes["b/nested.pdf"] in {Outcome.PARSE_ERROR, Outcome.LIMITS_EXCEEDED}
    assert outcomes["scan.pdf"] is Outcome.NO_EXTRACTABLE_TEXT
    assert outcomes["fake.pdf"] is Outcome.INVALID_FILE_CONTENT
    assert outcomes["zeros.txt"] is Outcome.LIMITS_EXCEEDED


async def test_a_worker_killed_while_idle_is_replaced_transparently() -> None:
    async with ExtractionPool(ExtractionLimits(), workers=1) as pool:
        (pid,) = pool.worker_pids
        os.kill(pid, signal.SIGKILL)
        await asyncio.sleep(0.1)
        await _good_ones(pool)
        assert pool.worker_pids != [pid]


async def test_cancelled_caller_does_not_poison_the_pool() -> None:
    limits = ExtractionLimits(max_pdf_text_ops_per_page=10**9, cpu_seconds=60, wall_seconds=60)
    async with ExtractionPool(limits, workers=1) as pool:
        task = asyncio.create_task(pool.extract("bomb.pdf", fg.pdf_text_ops_bomb(2_000_000)))
        await asyncio.sleep(0.5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.wait_for(_good_ones(pool), timeout=10)
