"""The matcher's service rules without I/O: statistics, paging, requirements, the job cache, conversion."""

from __future__ import annotations

import asyncio

import pytest

from cvmatch.matcher import convert, domain
from cvmatch.matcher.engine import InvalidRequirements, JobProfile, MatchResult


def test_summary_stats_count_failures_and_round_the_average() -> None:
    stats = domain.summary_stats(
        domain.BatchCounts(successful=3, errors=2, average=73.26666, highest=94.8, lowest=32.1, above=(2, 1, 1))
    )
    assert (stats.total_candidates, stats.successful_matches, stats.error_count) == (5, 3, 2)
    assert (stats.average_score, stats.highest_score, stats.lowest_score) == (73.3, 94.8, 32.1)
    empty = domain.summary_stats(domain.BatchCounts(0, 1, None, None, None, (0, 0, 0)))
    assert (empty.total_candidates, empty.average_score, empty.highest_score) == (1, 0.0, 0.0)


def test_paging_defaults_and_caps() -> None:
    assert domain.page(0, 0) == (0, domain.DEFAULT_PAGE_SIZE)
    assert domain.page(5, 10) == (5, 10)
    assert domain.page(0, 10**6) == (0, domain.MAX_PAGE_SIZE)


def test_requirements_json_is_checked() -> None:
    assert domain.parse_requirements("").must_have_skills == ()
    assert domain.parse_requirements('{"must_have_skills": ["Python"]}').must_have_skills == ("Python",)
    with pytest.raises(InvalidRequirements) as bad_json:
        domain.parse_requirements("{not json")
    assert bad_json.value.field == "requirements_json"
    with pytest.raises(InvalidRequirements) as bad_field:
        domain.parse_requirements('{"min_years_experience": -3}')
    assert bad_field.value.field == "min_years_experience"


def _profile(title: str) -> JobProfile:
    return JobProfile(title, "", (), (), (), (), None, None, ())


async def test_job_cache_loads_once_for_concurrent_callers_and_evicts_the_oldest() -> None:
    cache = domain.JobCache(size=2)
    loads: list[str] = []

    def loader(key: str) -> object:
        async def load() -> JobProfile:
            loads.append(key)
            await asyncio.sleep(0.01)
            return _profile(key)

        return load

    got = await asyncio.gather(*(cache.get((k, "v"), loader(k)) for k in ("a", "a", "a", "b")))  # type: ignore[arg-type]
    assert [g.job_title for g in got] == ["a", "a", "a", "b"] and loads == ["a", "b"]
    await cache.get(("c", "v"), loader("c"))  # type: ignore[arg-type]
    assert len(cache) == 2
    await cache.get(("a", "v"), loader("a"))  # type: ignore[arg-type]
    assert loads == ["a", "b", "c", "a"]


async def test_job_cache_does_not_keep_failures() -> None:
    cache = domain.JobCache(size=4)

    async def fail() -> JobProfile:
        raise domain.Unscorable(domain.INVALID_JOB_DESCRIPTION, "nothing to match")

    with pytest.raises(domain.Unscorable):
        await cache.get(("x", "v"), fail)
    assert len(cache) == 0


def test_conversion_tolerates_missing_summary_parts() -> None:
    result = MatchResult(
        overall_score=61.0,
        match_score=61,
        verdict="GOOD_MATCH",
        recommendation="Interview",
        skill_match_percentage=50.0,
        core_skill_match_percentage=40.0,
        role_match_percentage=100.0,
        qualification_match_percentage=100.0,
        sector_match_percentage=100.0,
        experience_match_percentage=80.0,
        match_results_summary={
            "skills": {
                "matches": [
                    {
                        "name": "Python",
                        "match_type": "related",
                        "match_score": 0.456,
                        "proficiency_match": 0.55,
                        "duration_match": 1.0,
                        "is_core": True,
                        "evidence": None,
                    }
                ]
            }
        },
        executive_summary="x",
        strengths=(),
        gaps=("Not shown: Go.",),
    )
    msg = convert.match_result(result, convert.CandidateInfo("c"), None)
    skill = msg.match_results_summary.skills.matches[0]
    assert (skill.match_score, skill.proficiency_match, skill.duration_match) == (45.6, False, True)
    assert not skill.evidence and not msg.match_results_summary.roles.matches
    assert msg.match_score.experience_match_percentage == 80.0 and msg.integer_score == 61
    assert convert.serialize(msg) == convert.serialize(convert.match_result(result, convert.CandidateInfo("c")))
