"""Throughput of the matching engine on one core: parse_candidate + score of ~700-word CVs against a parsed JD.

Usage (from the repository root)::

    .venv/bin/python tools/bench_matcher_speed.py [--n 300]

CVs are generated here from a fixed seed (no external data), so the figure is reproducible.
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
    t0 = time.perf_counter()
    engine = MatchEngine.load()
    load_s = time.perf_counter() - t0
    job = engine.parse_job(JD)
    rng = random.Random(42)
    cvs = [make_cv(rng) for _ in range(args.n)]
    mean_words = sum(len(c.split()) for c in cvs) / len(cvs)
    for cv in cvs[:10]:  # warm-up
        engine.score(job, engine.parse_candidate(cv))
    t0 = time.perf_counter()
    for cv in cvs:
        engine.score(job, engine.parse_candidate(cv))
    elapsed = time.perf_counter() - t0
    rss = proc.memory_info().rss / 1e6
    print(f"engine {engine.version}")
    print(f"taxonomy load: {load_s:.2f} s")
    print(f"{args.n} CVs, mean {mean_words:.0f} words: {args.n / elapsed:.1f} CVs/s on one core "
          f"({1000 * elapsed / args.n:.2f} ms per parse_candidate + score)")
    print(f"process RSS: {rss:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
