"""End-to-end throughput of the whole system, through the real Envoy, on this machine.

1. Builds a ZIP of N two-page PDF CVs (default 1,000; generated, varied), submits it with
   `POST /api/v1/batch-jobs` and polls `GET .../status` until `completed`; prints CVs per minute, the
   time to the 202, to the first and last processed candidate, and the CPU seconds each process of the
   system used during the run (where the time goes).
2. Drives `GET /api/v1/batch-jobs/{id}/status` at a fixed arrival rate (default 200 per second, open loop,
   loopback only, bounded duration) and prints the achieved rate and p50 / p90 / p99 latency.

Usage: .venv/bin/python tools/bench_e2e.py [--cvs 1000] [--rate 200] [--seconds 15]
Starts its own stack (as `make run` does) in a temporary directory and stops it at the end. The load
generator runs on the same two cores as the system, which it competes with; the figures include that.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp
import httpx
import psutil

from cvmatch.testing.filegen import pdf_pages, zip_of
from cvmatch.testing.stack import Stack

SKILLS = ["Python", "React", "TypeScript", "Django", "PostgreSQL", "Docker", "Kubernetes", "AWS", "Java",
          "Spring", "Go", "Kafka", "Terraform", "Node.js", "GraphQL", "Redis", "Linux", "CI/CD", "Scrum", "SQL"]
TITLES = ["Software Engineer", "Senior Software Engineer", "Backend Developer", "Frontend Developer",
          "Data Engineer", "DevOps Engineer", "Full Stack Developer", "Java Developer"]
JOB = """Senior Software Engineer

We are hiring a Senior Software Engineer to build our hiring platform.

Requirements
- 5+ years of professional software development
- Strong Python and React experience
- PostgreSQL, Docker and Kubernetes in production
- BSc in Computer Science or a related field

Nice to have
- TypeScript, AWS, Terraform
"""


def make_cv(i: int, rng: random.Random) -> bytes:
    """A two-page CV: experience on the first page, skills and education on the second."""
    title = rng.choice(TITLES)
    skills = rng.sample(SKILLS, rng.randint(4, 10))
    first = [f"Candidate {i:04d}", title, "", "Summary",
             f"{title} with {rng.randint(1, 15)} years of experience building software products.", "",
             "Experience"]
    year = 2024
    for job in range(3):
        start = year - rng.randint(2, 4)
        first.append(f"{rng.choice(TITLES)}, Company {rng.randint(1, 500)} ({start} - {year})")
        first += [f"• Built and operated {s} services used by thousands of customers." for s in skills[job::3]]
        year = start
    second = ["Skills", ", ".join(skills), "", "Education",
              rng.choice(["BSc Computer Science", "MSc Software Engineering", "BA History", "BEng Electronics"]),
              "", "Languages", "English, Spanish"]
    return pdf_pages([first, second])


def run_billing_json(stack: Stack, *args: str) -> dict[str, object]:
    out = stack.run_billing("admin", *args)
    return json.loads(out[out.index("{"):])


def cpu_seconds(stack: Stack) -> dict[str, float]:
    """CPU time (user + system) used so far by each process of the stack."""
    procs: dict[str, list[int]] = {f"{svc}-{i}": [p.pid] for svc, ps in stack.procs.items()
                                   for i, p in enumerate(ps)}
    for name, server in (("postgres", stack.postgres), ("nats", stack.nats), ("envoy", stack.envoy)):
        proc = getattr(server, "proc", None)
        if proc is not None:
            procs[name] = [proc.pid]
    result: dict[str, float] = {}
    for name, pids in procs.items():
        total = 0.0
        for pid in pids:
            try:
                root = psutil.Process(pid)
                for p in [root, *root.children(recursive=True)]:
                    t = p.cpu_times()
                    total += t.user + t.system + getattr(t, "children_user", 0) + getattr(t, "children_system", 0)
            except psutil.NoSuchProcess:
                continue
        result[name] = total
    return result


def batch_throughput(stack: Stack, key: str, n: int) -> str:
    rng = random.Random(20261124)
    t0 = time.perf_counter()
    archive = zip_of([(f"cvs/candidate_{i:04d}.pdf", make_cv(i, rng)) for i in range(n)])
    print(f"built {n} two-page PDF CVs, ZIP {len(archive) / 1e6:.1f} MB, in {time.perf_counter() - t0:.1f} s")
    headers = {"Authorization": f"Bearer {key}"}
    before = cpu_seconds(stack)
    start = time.perf_counter()
    with httpx.Client(base_url=stack.url, headers=headers, timeout=120) as client:
        r = client.post("/api/v1/batch-jobs", data={"input_type": "ZIP_FILE", "job_description_text": JOB},
                        files={"candidate_source_file": ("cvs.zip", archive, "application/zip")})
        accepted = time.perf_counter() - start
        if r.status_code != 202:
            raise SystemExit(f"submission refused: {r.status_code} {r.text}")
        batch = r.json()["batch_job_id"]
        first = None
        while True:
            status = client.get(f"/api/v1/batch-jobs/{batch}/status").json()
            now = time.perf_counter() - start
            if first is None and status["processed_candidates"] > 0:
                first = now
            if status["status"] in ("completed", "failed"):
                break
            if now > 3600:
                raise SystemExit(f"not completed after an hour: {status}")
            time.sleep(0.25)
        total = time.perf_counter() - start
        results = client.get(f"/api/v1/batch-jobs/{batch}/results", params={"skip": 0, "limit": 5}).json()
    after = cpu_seconds(stack)
    print(f"batch {batch}: {status['status']}, {status['processed_candidates']}/{status['total_candidates']} "
          f"processed, error_message={status.get('error_message')!r}")
    print(f"202 after {accepted:.2f} s; first candidate processed after {first or 0:.2f} s; "
          f"completed after {total:.2f} s")
    print(f"throughput: {n / total * 60:.0f} CVs per minute")
    print("CPU seconds used during the batch, per process:")
    for name in sorted(after, key=lambda k: -(after[k] - before.get(k, 0.0))):
        print(f"  {name:12s} {after[name] - before.get(name, 0.0):8.1f}")
    top = results.get("summary_stats", {})
    print(f"summary_stats: {json.dumps(top)}")
    return batch


async def status_under_load(stack: Stack, key: str, batch: str, rate: float, seconds: float) -> None:
    # aiohttp rather than httpx here: with many requests waiting, httpx's pool costs the load generator
    # more CPU than the system under test (measured), and the generator shares the machine's two cores.
    latencies: list[float] = []
    codes: dict[int, int] = {}
    connector = aiohttp.TCPConnector(limit=128)
    async with aiohttp.ClientSession(base_url=stack.url, headers={"X-API-Key": key}, connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=30)) as session:

        async def one() -> None:
            t = time.perf_counter()
            async with session.get(f"/api/v1/batch-jobs/{batch}/status") as r:
                await r.read()
            latencies.append(time.perf_counter() - t)
            codes[r.status] = codes.get(r.status, 0) + 1

        tasks = []
        start = time.perf_counter()
        n = int(rate * seconds)
        for i in range(n):
            # Open loop: requests leave on schedule whether or not earlier ones have answered.
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one()))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    q = statistics.quantiles(latencies, n=100)
    print(f"status endpoint at a fixed {rate:.0f} req/s for {seconds:.0f} s: {len(latencies) / elapsed:.0f} req/s "
          f"achieved, status codes {codes}")
    print(f"latency p50 {q[49] * 1000:.1f} ms, p90 {q[89] * 1000:.1f} ms, p99 {q[98] * 1000:.1f} ms, "
          f"max {max(latencies) * 1000:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cvs", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cvmatch-bench-") as tmp:
        stack = Stack(Path(tmp)).start()
        try:
            account = run_billing_json(stack, "create-account", "--name", "benchmark", "--plan", "enterprise",
                                       "--credits", str(args.cvs * 2))
            account_id = account["account"]["account_id"]  # type: ignore[index]
            # A Custom plan, so the status load test measures the system rather than the rate limiter.
            run_billing_json(stack, "set-plan", "--account", str(account_id), "--plan", "custom",
                             "--rpm", "100000", "--rpd", "10000000", "--burst", "100000",
                             "--concurrency", "1000", "--max-cvs", "10000")
            key = str(run_billing_json(stack, "create-key", "--account", str(account_id),
                                       "--scopes", "match:execute")["secret"])
            batch = batch_throughput(stack, key, args.cvs)
            asyncio.run(status_under_load(stack, key, batch, args.rate, args.seconds))
        finally:
            stack.stop()


if __name__ == "__main__":
    main()
