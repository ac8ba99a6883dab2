"""Benchmark the extraction layer: files/second through the sandboxed pool, and where the time goes.

    .venv/bin/python tools/bench_extraction.py [--files 200] [--workers 1 2]

For 2-page text PDFs and DOCX CVs it prints:
- in-process parse time per file (no sandbox), split for PDFs into pypdf (layout-mode extraction) and our
  post-processing (column detection, normalisation);
- sequential round-trip latency through one worker minus the in-process time (the IPC + framing cost);
- throughput with N concurrent callers for each worker count.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import io
import statistics
import sys
import time
from collections.abc import Callable

from cvmatch.ingest.extraction import ExtractionLimits, ExtractionPool, extract_document_unsandboxed
from cvmatch.ingest.extraction.normalize import normalize_text
from cvmatch.ingest.extraction.pdf import split_columns
from cvmatch.testing import filegen as fg


def _per_call(fn: Callable[[], object], repeat: int) -> float:
    """Median seconds per call over ``repeat`` calls (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _pdf_breakdown(data: bytes, repeat: int) -> tuple[float, float]:
    """(pypdf seconds, post-processing seconds) per file for a PDF, measured separately."""
    from pypdf import PdfReader

    def pypdf_only() -> list[str]:
        reader = PdfReader(io.BytesIO(data))
        return [p.extract_text(extraction_mode="layout", layout_mode_space_vertically=False) for p in reader.pages]

    pages = pypdf_only()

    def post() -> str:
        return normalize_text("\n\n".join("\n".join(split_columns(p.split("\n"))) for p in pages))

    return _per_call(pypdf_only, repeat), _per_call(post, repeat)


async def _latency(name: str, data: bytes, limits: ExtractionLimits, repeat: int) -> float:
    async with ExtractionPool(limits, workers=1) as pool:
        await pool.extract(name, data)
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            await pool.extract(name, data)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


async def _throughput(name: str, data: bytes, limits: ExtractionLimits, workers: int, files: int) -> float:
    async with ExtractionPool(limits, workers=workers) as pool:
        await asyncio.gather(*(pool.extract(name, data) for _ in range(workers * 2)))  # warm
        start = time.perf_counter()
        docs = await asyncio.gather(*(pool.extract(name, data) for _ in range(files)))
        elapsed = time.perf_counter() - start
    bad = [d.outcome for d in docs if not d.ok]
    if bad:
        raise SystemExit(f"unexpected outcomes: {set(bad)}")
    return files / elapsed


async def main() -> None:
    """Run the benchmark and print a report."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=200, help="files per throughput run")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=30, help="samples for per-file timings")
    args = parser.parse_args()

    limits = ExtractionLimits()
    inputs = {
        "pdf (2 pages)": ("cv.pdf", fg.cv_pdf(2)),
        "docx": ("cv.docx", fg.docx_from_lines(fg.cv_lines(n_jobs=8) * 2)),
        "txt (baseline)": ("cv.txt", "\n".join(fg.cv_lines()).encode()),
    }
    print(f"python {sys.version.split()[0]}; {args.files} files per run; median of {args.repeat} for timings\n")
    for label, (name, data) in inputs.items():
        in_process = _per_call(functools.partial(extract_document_unsandboxed, name, data, limits), args.repeat)
        latency = await _latency(name, data, limits, args.repeat)
        print(f"{label}: {len(data) / 1024:.1f} KiB")
        print(f"  in-process parse+normalise  {in_process * 1000:7.2f} ms/file")
        if name.endswith(".pdf"):
            pypdf_s, post_s = _pdf_breakdown(data, args.repeat)
            print(f"    of which pypdf layout     {pypdf_s * 1000:7.2f} ms")
            print(f"    of which columns+normalise{post_s * 1000:7.2f} ms")
        print(f"  sandboxed round trip        {latency * 1000:7.2f} ms/file (1 worker, sequential)")
        print(f"    IPC + framing overhead    {(latency - in_process) * 1000:7.2f} ms")
        for workers in args.workers:
            rate = await _throughput(name, data, limits, workers, args.files)
            print(f"  throughput, {workers} worker(s)      {rate:7.1f} files/s")
        print()


if __name__ == "__main__":
    asyncio.run(main())
