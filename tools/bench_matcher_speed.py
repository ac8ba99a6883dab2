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

JD = """Senior Backend Engineer

Responsibilities
- Design, build and operate REST APIs and microservices in Python and Go
- Run services on Kubernetes in AWS; automate infrastructure with Terraform

Requirements
- 5+ years of professional software development experience
- Python, PostgreSQL, Docker, Kubernetes, AWS
- Bachelor's degree in Computer Science or related field

Nice to have
- GraphQL, Kafka, React
"""
SKILLS = ["Python", "Go", "Java", "PostgreSQL", "MySQL", "Docker", "Kubernetes", "AWS", "Azure", "Terraform",
          "React", "TypeScript", "Node.js", "Kafka", "Redis", "GraphQL", "Linux", "Git", "Jenkins", "Excel",
          "Tableau", "SQL", "Spark", "Airflow", "Django", "Flask", "Scala", "C++", "Agile", "Scrum"]
FILLER = ("delivered features with the team, reviewed code, wrote documentation, improved reliability and "
          "latency, mentored engineers, planned sprints with product managers and handled on-call duties").split()
TITLES = ["Software Engineer", "Backend Developer", "Data Engineer", "Senior Software Engineer", "DevOps Engineer"]


def make_cv(rng: random.Random, words: int = 700) -> str:
    lines = ["Candidate Name", rng.choice(TITLES), "", "Summary",
             "Engineer with experience in " + ", ".join(rng.sample(SKILLS, 4)) + ".", "", "Experience"]
    year = 2024
    while sum(len(x.split()) for x in lines) < words - 60:
        start = year - rng.randint(1, 4)
        lines += [f"{rng.choice(TITLES)}, Company {rng.randint(1, 99)}", f"Jan {start} - Dec {year}"]
        for _ in range(6):
            bullet = [*rng.sample(FILLER, 12), "using", *rng.sample(SKILLS, 2)]
            lines.append("- " + " ".join(bullet))
        lines.append("")
        year = start - 1
    lines += ["Education", "BSc in Computer Science, 2010 - 2014", "", "Skills", ", ".join(rng.sample(SKILLS, 12))]
    return "\n".join(lines)


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
    job = engine.parse_job(JD)
    rng = random.Random(42)
    cvs = [make_cv(rng) for _ in range(args.n)]
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
