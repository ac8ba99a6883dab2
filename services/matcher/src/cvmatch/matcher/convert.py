"""Engine results as contract messages (`cvmatch.api.matcher.v1.MatchResult`), deterministically.

The stored form of a result is the serialized message, so the same job and CV give byte-identical rows
and responses: every list keeps the engine's order and serialization is deterministic.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cvmatch.api.matcher.v1 import match_result_pb2 as pb
from cvmatch.matcher.domain import SummaryStats
from cvmatch.matcher.engine import MatchResult


@dataclass(frozen=True)
class CandidateInfo:
    """Who the result is about (from ingest's candidate record or the sync request)."""

    candidate_id: str
    batch_id: str = ""
    original_filename: str = ""
    external_id: str = ""


def _f(d: Mapping[str, Any], key: str, default: float = 0.0) -> float:
    value = d.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else default


def _items(section: Mapping[str, Any] | None) -> pb.ItemsSummary:
    section = section or {}
    out = pb.ItemsSummary()
    for kind, default, target in (
        ("matches", "match", out.matches),
        ("gaps", "gap", out.gaps),
        ("surpluses", "surplus", out.surpluses),
    ):
        for item in section.get(kind) or ():
            target.add(name=str(item.get("name", "")), type=str(item.get("type", default)))
    return out


def _skills(section: Mapping[str, Any] | None) -> pb.SkillsSummary:
    section = section or {}
    out = pb.SkillsSummary()
    for m in section.get("matches") or ():
        proficiency = _f(m, "proficiency_match")
        duration = _f(m, "duration_match", 1.0)
        skill = out.matches.add(
            name=str(m.get("name", "")),
            match_type=str(m.get("match_type", "")),
            # The engine scores a skill 0-1; the public API speaks percentages.
            match_score=round(100.0 * _f(m, "match_score"), 1),
            # As the contract says: the skill is shown in dated work (not a strength threshold, which
            # undated Experience lines could reach).
            proficiency_match=m.get("in_dated_work") is True,
            duration_match=duration >= 1.0,
            is_core=bool(m.get("is_core", False)),
            skill_id=str(m.get("skill_id", "") or ""),
            cv_name=str(m.get("matched_skill", "") or ""),
            years=_f(m, "years"),
            proficiency_score=proficiency,
            duration_score=duration,
        )
        ev = m.get("evidence")
        if isinstance(ev, Mapping):
            skill.evidence.add(
                start=int(ev.get("start", 0)), end=int(ev.get("end", 0)), text=str(ev.get("snippet", "") or "")
            )
    for kind, target in (("gaps", out.gaps), ("surpluses", out.surpluses)):
        for item in section.get(kind) or ():
            target.add(
                name=str(item.get("name", "")),
                is_core=bool(item.get("is_core", False)),
                skill_id=str(item.get("skill_id", "") or ""),
            )
    return out


def match_result(result: MatchResult, who: CandidateInfo, seniority: str | None = None) -> pb.MatchResult:
    """The contract message of one engine result."""
    summary = result.match_results_summary or {}
    return pb.MatchResult(
        candidate_id=who.candidate_id,
        batch_id=who.batch_id,
        original_filename=who.original_filename,
        external_id=who.external_id,
        match_score=pb.MatchScore(
            overall_score=result.overall_score,
            skill_match_percentage=result.skill_match_percentage,
            core_skill_match_percentage=result.core_skill_match_percentage,
            role_match_percentage=result.role_match_percentage,
            qualification_match_percentage=result.qualification_match_percentage,
            sector_match_percentage=result.sector_match_percentage,
            experience_match_percentage=result.experience_match_percentage,
            not_applicable=list(result.not_applicable),
        ),
        match_results_summary=pb.MatchResultsSummary(
            skills=_skills(summary.get("skills")),
            roles=_items(summary.get("roles")),
            qualifications=_items(summary.get("qualifications")),
            sectors=_items(summary.get("sectors")),
        ),
        verdict=result.verdict,
        recommendation=result.recommendation,
        integer_score=result.match_score,
        executive_summary=result.executive_summary,
        strengths=list(result.strengths),
        gaps=list(result.gaps),
        years_of_experience=result.candidate_years,
        seniority=seniority or "",
        engine_version=result.engine_version,
        knocked_out=result.knocked_out,
    )


def serialize(message: pb.MatchResult) -> bytes:
    """The stored bytes of a result; deterministic so equal results are equal rows."""
    return message.SerializeToString(deterministic=True)


def summary_stats(stats: SummaryStats) -> pb.SummaryStats:
    """The contract message of a batch's statistics (the domain type has exactly its fields)."""
    return pb.SummaryStats(**dataclasses.asdict(stats))
