"""Scoring tests: bands, anti-stuffing, knock-outs, requirement validation, determinism."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from typing import Any

import pytest

from cvmatch.matcher.engine import InvalidRequirements, MatchEngine, RequirementsConfig

TODAY = date(2025, 1, 15)

JD = """Backend Engineer

Requirements
- 3+ years of experience building backend services
- Python, PostgreSQL, Docker, Kubernetes
"""

WORKED = """Alex Worker
Backend Engineer

Experience
Backend Engineer, Shipfast
Jan 2020 - Dec 2024
- Built order services in Python on PostgreSQL, packaged with Docker and deployed to Kubernetes
- Improved PostgreSQL query latency and Python test coverage

Education
BSc in Computer Science
"""

STUFFED = (
    """Sam Stuffer
Backend Engineer

Skills
"""
    + ", ".join(["Python, PostgreSQL, Docker, Kubernetes"] * 50)
    + "\n"
)

LISTED = """Lee Lister
Backend Engineer

Skills
Python, PostgreSQL, Docker, Kubernetes, Git, Linux, Bash, Redis, Terraform, Jenkins

Education
BSc in Computer Science
"""


@pytest.fixture(scope="module")
def engine() -> MatchEngine:
    return MatchEngine.load(today=TODAY)


def test_result_shape_and_bands(engine):
    job = engine.parse_job(JD)
    r = engine.score(job, engine.parse_candidate(WORKED))
    d = r.to_dict()
    for key in (
        "overall_score",
        "match_score",
        "skill_match_percentage",
        "core_skill_match_percentage",
        "role_match_percentage",
        "qualification_match_percentage",
        "sector_match_percentage",
        "match_results_summary",
        "executive_summary",
        "strengths",
        "gaps",
        "verdict",
        "recommendation",
    ):
        assert key in d
    assert set(d["match_results_summary"]) == {"skills", "roles", "qualifications", "sectors"}
    for part in d["match_results_summary"].values():
        assert set(part) == {"matches", "gaps", "surpluses"}
    m = d["match_results_summary"]["skills"]["matches"][0]
    assert {"name", "match_type", "match_score", "proficiency_match", "duration_match", "is_core", "evidence"} <= set(m)
    assert WORKED[m["evidence"]["start"] : m["evidence"]["end"]].lower() in m["evidence"]["snippet"].lower()
    assert r.overall_score == round(r.overall_score, 1)
    assert r.match_score == int(r.overall_score + 0.5)
    assert r.verdict == "STRONG_MATCH" and r.recommendation == "Interview"
    json.dumps(d)


def test_anti_stuffing(engine):
    job = engine.parse_job(JD)
    worked = engine.score(job, engine.parse_candidate(WORKED))
    stuffed = engine.score(job, engine.parse_candidate(STUFFED))
    listed = engine.score(job, engine.parse_candidate(LISTED))
    assert worked.overall_score > stuffed.overall_score
    assert worked.overall_score > listed.overall_score
    assert worked.skill_match_percentage > stuffed.skill_match_percentage
    assert worked.skill_match_percentage > listed.skill_match_percentage


def test_knockout_caps_score(engine):
    job = engine.parse_job(JD)
    cand = engine.parse_candidate(WORKED)
    req = RequirementsConfig.from_dict({"must_have_skills": ["Rust"], "nice_to_have_skills": ["Go"]})
    r = engine.score(job, cand, req)
    assert r.knocked_out and r.overall_score <= 39.0
    assert any("Rust" in g for g in r.gaps)
    ok = engine.score(job, cand, RequirementsConfig.from_dict({"must_have_skills": ["python"]}))
    assert not ok.knocked_out and ok.overall_score > 39.0


def test_requirements_validation():
    assert RequirementsConfig.from_dict(None) == RequirementsConfig()
    cfg = RequirementsConfig.from_dict({"min_years_experience": 4, "weights": {"skills": 1, "roles": 0}})
    assert cfg.min_years_experience == 4.0 and cfg.weight_map["roles"] == 0.0
    cases: list[tuple[dict[str, Any], str]] = [
        ({"must_have_skills": "python"}, "must_have_skills"),
        ({"min_years_experience": -1}, "min_years_experience"),
        ({"min_years_experience": "five"}, "min_years_experience"),
        ({"weights": {"charisma": 1}}, "weights.charisma"),
        ({"weights": {"skills": -1}}, "weights.skills"),
        ({"weights": {k: 0 for k in ("skills", "roles", "experience", "qualifications", "sectors")}}, "weights"),
        ({"bogus": 1}, "bogus"),
    ]
    for payload, field in cases:
        with pytest.raises(InvalidRequirements) as info:
            RequirementsConfig.from_dict(payload)
        assert info.value.field == field


def test_min_years_requirement_reflected(engine):
    job = engine.parse_job(JD)
    cand = engine.parse_candidate(WORKED)
    r = engine.score(job, cand, RequirementsConfig.from_dict({"min_years_experience": 10}))
    assert r.experience_match_percentage == 50.0
    assert any("10.0 years" in g for g in r.gaps)


_SCRIPT = """
import json, sys
from datetime import date
from cvmatch.matcher.engine import MatchEngine
e = MatchEngine.load(today=date(2025, 1, 15))
job = e.parse_job(sys.argv[1])
print(json.dumps([e.score(job, e.parse_candidate(t)).to_dict() for t in sys.argv[2:]], sort_keys=True))
"""


def test_deterministic_across_processes():
    outs = set()
    for seed in ("0", "1", "12345"):
        env = {"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin"}
        out = subprocess.run(
            [sys.executable, "-c", _SCRIPT, JD, WORKED, LISTED], env=env, check=True, capture_output=True, text=True
        ).stdout
        outs.add(out)
    assert len(outs) == 1


def test_json_profile_cache_gives_same_score(engine):
    job = engine.parse_job(JD)
    cand = engine.parse_candidate(WORKED)
    cached = type(job).from_dict(json.loads(json.dumps(job.to_dict())))
    assert engine.score(cached, cand).to_dict() == engine.score(job, cand).to_dict()
