"""Throughput of the matching engine on one core: parse_candidate + score of ~700-word CVs against a parsed JD.

Usage (from the repository root)::

    .venv/bin/python tools/bench_matcher_speed.py [--n 300]

CVs are generated here from a fixed seed (no external data).  Throughput is reported per CPU-second
(time.process_time) as well as wall-clock: on a shared machine the wall figure mostly measures the other
processes.  Engine load is measured after importing spaCy (an interpreter cost, not the taxonomy's).
"""

from __future__ import annotations

import argparse
import os
import random
import time

import psutil

from cvmatch.matcher.engine import MatchEngine
from cvmatch.testing.filegen import BACKEND_JD, long_cv_text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=300)
    args = ap.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    proc = psutil.Process()
    import spacy  # noqa: F401  (import cost is the interpreter's, not the taxonomy's)

    t0, c0 = time.perf_counter(), time.process_time()
    engine = MatchEngine.load()
    load_s, load_cpu = time.perf_counter() - t0, time.process_time() - c0
    job = engine.parse_job(BACKEND_JD)
    rng = random.Random(42)
    cvs = [long_cv_text(rng) for _ in range(args.n)]
    mean_words = sum(len(c.split()) for c in cvs) / len(cvs)
    for cv in cvs[:10]:  # warm-up
        engine.score(job, engine.parse_candidate(cv))
    t0, c0 = time.perf_counter(), time.process_time()
    for cv in cvs:
        engine.score(job, engine.parse_candidate(cv))
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    rss = proc.memory_info().rss / 1e6
    print(f"engine {engine.version}")
    print(f"load average (1/5/15 min): {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    print(f"engine load (taxonomy + pipeline): {load_s:.2f} s wall, {load_cpu:.2f} s CPU")
    print(f"{args.n} CVs, mean {mean_words:.0f} words: {args.n / cpu:.1f} CVs per CPU-second "
          f"({1000 * cpu / args.n:.2f} ms CPU per parse_candidate + score); "
          f"wall {args.n / elapsed:.1f} CVs/s pinned to one core (lower when the machine is shared)")
    print(f"process RSS: {rss:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
