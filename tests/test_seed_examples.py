"""The seed documents' own example programs, run unchanged except for the base URL and the key.

`tests/seed_examples/` holds faithful copies of SkillMatchIQ's Python quick start and curl examples and of
the CV Matching API's "Complete Example" and curl examples (the pages flatten code onto one line; the copies
restore the line breaks and nothing else). Each is run against the whole system behind the real Envoy, with
real PDF CVs made in code, and its printed output is checked for sensible results.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from cvmatch.testing.filegen import pdf_pages, zip_of
from cvmatch.testing.stack import Stack

EXAMPLES = Path(__file__).parent / "seed_examples"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"

SOFTWARE_CV = [
    "Alex Rivera", "Senior Software Engineer", "", "Summary",
    "Full-stack engineer with eight years of experience building web products in Python and React.",
    "", "Experience", "Senior Software Engineer, Shopfront Ltd (Jan 2019 - Present)",
    "• Built Python and Django services and a React and TypeScript front end.",
    "• Ran PostgreSQL, Docker and Kubernetes in production on AWS.",
    "Software Engineer, Webworks (Mar 2016 - Dec 2018)", "• Developed REST APIs in Python with Flask.",
    "", "Skills", "Python, React, JavaScript, TypeScript, Django, PostgreSQL, Docker, Kubernetes, AWS",
    "", "Education", "BSc Computer Science, University of Leeds",
]
JAVA_CV = [
    "Sam Okafor", "Java Developer", "", "Experience", "Java Developer, Banking Systems plc (2018 - Present)",
    "• Maintained Java and Spring Boot services, Oracle databases.", "", "Skills", "Java, Spring, Oracle, Maven",
    "", "Education", "BSc Information Systems",
]
NURSE_CV = [
    "Priya Shah", "Registered Nurse", "", "Experience", "Staff Nurse, ICU, St Mary's Hospital (2015 - Present)",
    "• Patient care, medication administration, critical care monitoring.", "", "Skills",
    "Patient care, critical care, BLS, ACLS", "", "Education", "BSc Nursing",
]
CONSTRUCTION_PM_CV = [
    "Alice Chen", "Construction Project Manager", "", "Summary",
    "Construction project manager with nine years of commercial builds: offices, retail and warehouses.",
    "", "Experience", "Project Manager, BuildRight Construction (Feb 2017 - Present)",
    "• Managed commercial construction projects up to $40M: budgets, schedules, subcontractors.",
    "• Led site safety, procurement and contract administration.",
    "Assistant Project Manager, Apex Builders (2014 - 2017)", "• Coordinated commercial builds and site teams.",
    "", "Skills", "Construction management, project management, budgeting, scheduling, contract management",
    "", "Education", "BSc Construction Management",
]


def pdf(lines: list[str]) -> bytes:
    """A two-page text PDF of the CV (the second page repeats the skills, as long CVs do)."""
    return pdf_pages([lines, ["Additional information", *lines[-5:]]])


@pytest.fixture()
def workdir(tmp_path: Path) -> Path:
    """The files the examples open, in the directory they run in."""
    (tmp_path / "resumes.zip").write_bytes(zip_of([
        ("resumes/alex_rivera.pdf", pdf(SOFTWARE_CV)),
        ("resumes/sam_okafor.pdf", pdf(JAVA_CV)),
        ("resumes/priya_shah.pdf", pdf(NURSE_CV)),
        ("__MACOSX/._alex_rivera.pdf", b"\0\5\26\7"),
    ]))
    (tmp_path / "alice.pdf").write_bytes(pdf(CONSTRUCTION_PM_CV))
    (tmp_path / "bob.pdf").write_bytes(pdf(SOFTWARE_CV))
    for name, lines in {"resume.pdf": NURSE_CV, "resume1.pdf": JAVA_CV, "resume2.pdf": SOFTWARE_CV}.items():
        (tmp_path / name).write_bytes(pdf(lines))
    (tmp_path / "job_description.pdf").write_bytes(pdf_pages([[
        "Registered Nurse - ICU Department", "Requirements", "• Registered nurse with critical care experience",
        "• BLS and ACLS certification", "• Patient care in an intensive care unit"]]))
    return tmp_path


def run_program(source: Path, workdir: Path, replacements: dict[str, str]) -> str:
    """Copy an example into ``workdir`` with only the base URL and key replaced, run it, return stdout."""
    text = source.read_text()
    for old, new in replacements.items():
        assert old in text, f"{old!r} not in {source.name}"
        text = text.replace(old, new)
    program = workdir / source.name
    program.write_text(text)
    done = subprocess.run([sys.executable, str(program)], cwd=workdir, capture_output=True, text=True,
                          timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def curl_commands(source: Path, replacements: dict[str, str]) -> list[list[str]]:
    """The curl commands of an example file, each as argv, with the base URL and key replaced."""
    text = source.read_text()
    for old, new in replacements.items():
        text = text.replace(old, new)
    commands: list[list[str]] = []
    for chunk in re.split(r"\n(?=curl )", "\n".join(line for line in text.splitlines()
                                                   if not line.startswith("#"))):
        argv = shlex.split(chunk.replace("\\\n", " "))
        if argv and argv[0] == "curl":
            commands.append(["curl", "--silent", "--show-error", *argv[1:]])
    return commands


def test_skillmatchiq_python_quick_start(stack: Stack, api_key: str, workdir: Path) -> None:
    out = run_program(EXAMPLES / "skillmatchiq_quickstart.py", workdir,
                      {"your_api_key_here": api_key, "https://yourdomain.com": stack.url})
    assert re.search(rf"^Batch submitted: {UUID}$", out, re.M), out
    assert re.search(r"^Progress: 3/3 candidates$", out, re.M), out
    assert "Batch failed" not in out
    top = re.findall(r"^Top match: (\S+) - ([\d.]+)%$", out, re.M)
    assert top and top[0][0] == "resumes/alex_rivera.pdf", out
    scores = [float(score) for _, score in top]
    assert len(scores) == 3 and scores == sorted(scores, reverse=True) and all(0 <= s <= 100 for s in scores)
    assert scores[0] > scores[-1]


def test_cv_matching_complete_example(stack: Stack, api_key: str, workdir: Path) -> None:
    out = run_program(EXAMPLES / "cv_matching_complete_example.py", workdir,
                      {"sk_live_your_key_here": api_key, "https://cv-matching-api.fly.dev": stack.url})
    assert re.search(rf"^Job created: {UUID}$", out, re.M), out
    assert re.search(r"^ 2/2 done$", out, re.M), out
    lines = {name: (int(score), verdict)
             for name, score, verdict in re.findall(r"^(\w+\.pdf): (\d+)/100 — (\S+)$", out, re.M)}
    assert set(lines) == {"alice.pdf", "bob.pdf"}, out
    assert lines["alice.pdf"][0] > lines["bob.pdf"][0], out
    verdicts = {"STRONG_MATCH", "GOOD_MATCH", "MODERATE_MATCH", "WEAK_MATCH", "NOT_SUITABLE"}
    assert {v for _, v in lines.values()} <= verdicts


def test_skillmatchiq_curl_examples(stack: Stack, api_key: str, workdir: Path) -> None:
    submit, status, results = curl_commands(EXAMPLES / "skillmatchiq_curl.sh",
                                            {"YOUR_API_KEY": api_key, "https://yourdomain.com": stack.url})
    created = json.loads(subprocess.run(submit, cwd=workdir, capture_output=True, text=True, check=True).stdout)
    assert created["status"] == "pending" and re.fullmatch(UUID, created["batch_job_id"]), created
    batch = created["batch_job_id"]
    for _ in range(240):
        argv = [a.replace("abc123-def456-ghi789", batch) for a in status]
        body = json.loads(subprocess.run(argv, capture_output=True, text=True, check=True).stdout)
        if body["status"] in ("completed", "failed"):
            break
        subprocess.run(["sleep", "0.5"], check=True)
    assert body["status"] == "completed", body
    argv = [a.replace("abc123-def456-ghi789", batch) for a in results]
    page = json.loads(subprocess.run(argv, capture_output=True, text=True, check=True).stdout)
    assert len(page["processed_items"]) == 3
    assert page["processed_items"][0]["original_filename"] == "resumes/alex_rivera.pdf"


def test_cv_matching_curl_examples(stack: Stack, api_key: str, workdir: Path) -> None:
    commands = curl_commands(EXAMPLES / "cv_matching_curl.sh",
                             {"sk_live_your_key_here": api_key, "https://cv-matching-api.fly.dev": stack.url})
    *submissions, progress = commands
    job_ids = []
    for argv, cv_count in zip(submissions, (1, 2, 1), strict=True):
        body = json.loads(subprocess.run(argv, cwd=workdir, capture_output=True, text=True, check=True).stdout)
        assert body["status"] == "pending" and body["cv_count"] == cv_count and body["skipped_cvs"] == [], body
        job_ids.append(body["job_id"])
    # The progress example names a job of the page; with our job's id it answers the documented shape.
    argv = [a.replace("550e8400-e29b-41d4-a716-446655440000", job_ids[-1]) for a in progress]
    body = json.loads(subprocess.run(argv, capture_output=True, text=True, check=True).stdout)
    assert set(body) >= {"status", "total", "completed", "pending", "processing"}, body
    assert body["total"] == 1
    # The page's own example id is unknown here: a JSON 404, never a 500.
    missing = subprocess.run([*progress, "--write-out", "\n%{http_code}"], capture_output=True, text=True,
                             check=True).stdout
    assert missing.rsplit("\n", 1)[1] == "404"
