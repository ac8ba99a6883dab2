"""Determinism of what the service stores: the same job and CV give byte-identical results across two
engine loads in two processes, and across the service's job-profile cache (JSON round trip)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path

import pytest

from cvmatch.matcher import convert
from cvmatch.matcher.engine import JobProfile, MatchEngine, RequirementsConfig

from .service_texts import JD, MEDIUM, STRONG

TODAY = date(2026, 1, 15)
WHO = convert.CandidateInfo(
    "00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002", "alex.pdf", "ext-1"
)


def _stored_bytes(engine: MatchEngine, job: JobProfile, cv: str) -> bytes:
    cand = engine.parse_candidate(cv)
    return convert.serialize(convert.match_result(engine.score(job, cand, RequirementsConfig()), WHO, cand.seniority))


@pytest.fixture(scope="module")
def engine() -> MatchEngine:
    """A fresh engine (``today`` bypasses the per-process cache) with a fixed reference date for "Present"."""
    return MatchEngine.load(today=TODAY)


def test_cached_job_profile_scores_like_a_fresh_parse(engine: MatchEngine) -> None:
    # The service may score against a profile read back from `job_profiles` (jsonb): it must not drift.
    fresh = engine.parse_job(JD)
    stored = JobProfile.from_dict(json.loads(json.dumps(fresh.to_dict(), sort_keys=True)))
    for cv in (STRONG, MEDIUM):
        assert _stored_bytes(engine, fresh, cv) == _stored_bytes(engine, stored, cv)


def test_another_engine_load_in_another_process_gives_identical_bytes(engine: MatchEngine) -> None:
    job = engine.parse_job(JD)
    local = [hashlib.sha256(_stored_bytes(engine, job, cv)).hexdigest() for cv in (STRONG, MEDIUM)]
    here = Path(__file__).parent
    script = textwrap.dedent(f"""
        import hashlib, sys
        from datetime import date
        sys.path.insert(0, {str(here)!r})
        from service_texts import JD, MEDIUM, STRONG
        from cvmatch.matcher import convert
        from cvmatch.matcher.engine import MatchEngine, RequirementsConfig
        e = MatchEngine.load(today=date({TODAY.year}, {TODAY.month}, {TODAY.day}))
        who = convert.CandidateInfo({WHO.candidate_id!r}, {WHO.batch_id!r}, {WHO.original_filename!r},
                                    {WHO.external_id!r})
        job = e.parse_job(JD)
        for cv in (STRONG, MEDIUM):
            c = e.parse_candidate(cv)
            r = e.score(job, c, RequirementsConfig())
            print(hashlib.sha256(convert.serialize(convert.match_result(r, who, c.seniority))).hexdigest())
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split() == local
