"""Value types of the matching engine: parsed profiles, requirements, results and typed errors.

Every public type is a frozen dataclass whose ``to_dict()`` returns plain JSON-able data with the
public (snake_case) field names, so the service can store it and the API can return it unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

SKILL_GROUPS = ("hard_skill", "tool", "soft_skill", "language", "certification")
WEIGHT_KEYS = ("skills", "roles", "experience", "qualifications", "sectors")
# Tuned on the livecareer development set (tools/bench_ranking.py): the role (titles and the work history's
# fit to the job's occupation) is the strongest signal of fit.  A sector is a coarse SOC major group
# ("Management") already implied by the titles; it lowered MAP there, so by default it is reported
# (sector_match_percentage) but not weighed; a configuration may weigh it.
DEFAULT_WEIGHTS: dict[str, float] = {
    "skills": 0.25,
    "roles": 0.55,
    "experience": 0.10,
    "qualifications": 0.10,
    "sectors": 0.0,
}
DEFAULT_KNOCKOUT_CAP = 39.0


class EngineError(Exception):
    """Base class of the engine's typed errors (mapped to API errors by the service)."""


class CandidateTooSparse(EngineError):
    """The CV has too little text or structure to be scored; a 0 score would be a lie."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class JobTooSparse(EngineError):
    """The job description has no recognisable skill, title or requirement."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequirements(EngineError):
    """A requirements configuration field is invalid; ``field`` names it for the API's field violation."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Mention:
    """One piece of evidence: character offsets into the parsed text and the section it sits in."""

    start: int
    end: int
    section: str
    snippet: str = ""
    dated: bool = False  # CVs: inside a dated job of the work history

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "end": self.end,
            "section": self.section,
            "snippet": self.snippet,
            "dated": self.dated,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Mention:
        return cls(
            int(d["start"]), int(d["end"]), str(d["section"]), str(d.get("snippet", "")), bool(d.get("dated", False))
        )


@dataclass(frozen=True)
class SkillOccurrence:
    """A skill found in a text with all its evidence (mentions in document order)."""

    id: str
    name: str  # canonical taxonomy name
    surface: str  # as first written in the text ("JS", "k8s")
    group: str
    mentions: tuple[Mention, ...]
    years: float = 0.0  # years of dated work in which the skill was used (CVs)
    required: bool = True  # JDs: required vs preferred
    is_core: bool = False  # JDs: counts towards the core-skill percentage and the knock-out
    min_years: float | None = None  # JDs: "5+ years of Python"

    @property
    def experience_mentions(self) -> int:
        return sum(1 for m in self.mentions if m.section in ("experience", "projects"))

    @property
    def dated_mentions(self) -> int:
        """Mentions inside a dated job (the work history a recruiter can check)."""
        return sum(1 for m in self.mentions if m.dated)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "surface": self.surface,
            "group": self.group,
            "mentions": [m.to_dict() for m in self.mentions],
            "years": self.years,
            "required": self.required,
            "is_core": self.is_core,
            "min_years": self.min_years,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SkillOccurrence:
        return cls(
            id=str(d["id"]),
            name=str(d["name"]),
            surface=str(d.get("surface", d["name"])),
            group=str(d["group"]),
            mentions=tuple(Mention.from_dict(m) for m in d.get("mentions", [])),
            years=float(d.get("years", 0.0)),
            required=bool(d.get("required", True)),
            is_core=bool(d.get("is_core", False)),
            min_years=None if d.get("min_years") is None else float(d["min_years"]),
        )


@dataclass(frozen=True)
class Role:
    """A job title found in a text, normalised to an occupation when the taxonomy knows it."""

    title: str
    occupation_id: str | None
    occupation_name: str | None
    sector: str | None
    start: int
    end: int
    years: float = 0.0
    is_headline: bool = False  # the CV's first line / the JD's title

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "occupation_id": self.occupation_id,
            "occupation_name": self.occupation_name,
            "sector": self.sector,
            "start": self.start,
            "end": self.end,
            "years": self.years,
            "is_headline": self.is_headline,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Role:
        return cls(
            title=str(d["title"]),
            occupation_id=d.get("occupation_id"),
            occupation_name=d.get("occupation_name"),
            sector=d.get("sector"),
            start=int(d.get("start", 0)),
            end=int(d.get("end", 0)),
            years=float(d.get("years", 0.0)),
            is_headline=bool(d.get("is_headline", False)),
        )


@dataclass(frozen=True)
class Qualification:
    """A degree (kind "degree", with level 1-5 and field) or a certification (kind "certification")."""

    kind: str
    name: str
    level: int = 0  # 1 high school, 2 associate/diploma, 3 bachelor, 4 master, 5 doctorate
    field: str = ""
    id: str = ""  # taxonomy id for certifications
    required: bool = True  # JDs only
    start: int = 0
    end: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "level": self.level,
            "field": self.field,
            "id": self.id,
            "required": self.required,
            "start": self.start,
            "end": self.end,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Qualification:
        return cls(
            kind=str(d["kind"]),
            name=str(d["name"]),
            level=int(d.get("level", 0)),
            field=str(d.get("field", "")),
            id=str(d.get("id", "")),
            required=bool(d.get("required", True)),
            start=int(d.get("start", 0)),
            end=int(d.get("end", 0)),
        )


@dataclass(frozen=True)
class JobProfile:
    """A parsed job description (cached by the service as JSON by content hash)."""

    job_title: str
    job_summary: str
    skills: tuple[SkillOccurrence, ...]
    roles: tuple[Role, ...]
    qualifications: tuple[Qualification, ...]
    sectors: tuple[str, ...]
    min_years: float | None
    seniority: str | None
    languages: tuple[str, ...]
    engine_version: str = ""
    # The O*NET occupation the description reads like (title and text against the occupation profiles),
    # with the cosine that chose it; None when the text is too thin to say.  Work-history fit compares CVs
    # with this occupation.
    occupation_id: str | None = None
    occupation_name: str | None = None
    occupation_similarity: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "job_title": self.job_title,
            "job_summary": self.job_summary,
            "skills": [s.to_dict() for s in self.skills],
            "roles": [r.to_dict() for r in self.roles],
            "qualifications": [q.to_dict() for q in self.qualifications],
            "sectors": list(self.sectors),
            "min_years": self.min_years,
            "seniority": self.seniority,
            "languages": list(self.languages),
            "engine_version": self.engine_version,
            "occupation_id": self.occupation_id,
            "occupation_name": self.occupation_name,
            "occupation_similarity": self.occupation_similarity,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> JobProfile:
        return cls(
            job_title=str(d.get("job_title", "")),
            job_summary=str(d.get("job_summary", "")),
            skills=tuple(SkillOccurrence.from_dict(s) for s in d.get("skills", [])),
            roles=tuple(Role.from_dict(r) for r in d.get("roles", [])),
            qualifications=tuple(Qualification.from_dict(q) for q in d.get("qualifications", [])),
            sectors=tuple(str(s) for s in d.get("sectors", [])),
            min_years=None if d.get("min_years") is None else float(d["min_years"]),
            seniority=d.get("seniority"),
            languages=tuple(str(x) for x in d.get("languages", [])),
            engine_version=str(d.get("engine_version", "")),
            occupation_id=d.get("occupation_id"),
            occupation_name=d.get("occupation_name"),
            occupation_similarity=float(d.get("occupation_similarity", 0.0)),
        )


@dataclass(frozen=True)
class CandidateProfile:
    """A parsed CV: what the candidate shows, with evidence offsets into the CV text."""

    skills: tuple[SkillOccurrence, ...]
    roles: tuple[Role, ...]
    qualifications: tuple[Qualification, ...]
    sectors: tuple[str, ...]
    total_years: float
    seniority: str | None
    languages: tuple[str, ...]
    word_count: int
    engine_version: str = ""
    # The parsed text (offsets are into it and into the caller's text alike), where its sections start, and
    # its dated jobs as (start, end, start month, end month): what a free-text requirement is looked up in.
    text: str = field(default="", repr=False)
    section_starts: tuple[tuple[int, str], ...] = field(default=(), repr=False)
    dated_spans: tuple[tuple[int, int, int, int], ...] = field(default=(), repr=False)
    # What the work history reads like: the CV's unit term vector over the occupation-profile vocabulary
    # (term, weight; titles weigh more than prose) and its closest O*NET occupations (id, name, cosine),
    # best first.  Scoring compares the job's occupation with the closest one.
    occupation_terms: tuple[tuple[str, float], ...] = field(default=(), repr=False)
    closest_occupations: tuple[tuple[str, str, float], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "section_starts": [list(x) for x in self.section_starts],
            "dated_spans": [list(x) for x in self.dated_spans],
            "occupation_terms": [list(x) for x in self.occupation_terms],
            "closest_occupations": [list(x) for x in self.closest_occupations],
            "skills": [s.to_dict() for s in self.skills],
            "roles": [r.to_dict() for r in self.roles],
            "qualifications": [q.to_dict() for q in self.qualifications],
            "sectors": list(self.sectors),
            "total_years": self.total_years,
            "seniority": self.seniority,
            "languages": list(self.languages),
            "word_count": self.word_count,
            "engine_version": self.engine_version,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CandidateProfile:
        return cls(
            skills=tuple(SkillOccurrence.from_dict(s) for s in d.get("skills", [])),
            roles=tuple(Role.from_dict(r) for r in d.get("roles", [])),
            qualifications=tuple(Qualification.from_dict(q) for q in d.get("qualifications", [])),
            sectors=tuple(str(s) for s in d.get("sectors", [])),
            total_years=float(d.get("total_years", 0.0)),
            seniority=d.get("seniority"),
            languages=tuple(str(x) for x in d.get("languages", [])),
            word_count=int(d.get("word_count", 0)),
            engine_version=str(d.get("engine_version", "")),
            text=str(d.get("text", "")),
            section_starts=tuple((int(a), str(b)) for a, b in d.get("section_starts", [])),
            dated_spans=tuple((int(a), int(b), int(c), int(e)) for a, b, c, e in d.get("dated_spans", [])),
            occupation_terms=tuple((str(t), float(w)) for t, w in d.get("occupation_terms", [])),
            closest_occupations=tuple((str(i), str(n), float(c)) for i, n, c in d.get("closest_occupations", [])),
        )


def _str_list(d: dict[str, Any], key: str) -> tuple[str, ...]:
    value = d.get(key)
    if value is None:
        return ()
    if not isinstance(value, list | tuple) or not all(isinstance(x, str) for x in value):
        raise InvalidRequirements(key, "must be a list of strings")
    cleaned = tuple(x.strip() for x in value if x.strip())
    if len(cleaned) > 100:
        raise InvalidRequirements(key, "at most 100 items")
    if any(len(x) > 100 for x in cleaned):
        raise InvalidRequirements(key, "items must be at most 100 characters")
    return cleaned


@dataclass(frozen=True)
class RequirementsConfig:
    """Recruiter-set requirements (CVDeepMatch): knock-out skills, weights, minimums; defaults when absent."""

    must_have_skills: tuple[str, ...] = ()
    nice_to_have_skills: tuple[str, ...] = ()
    min_years_experience: float | None = None
    required_qualifications: tuple[str, ...] = ()
    weights: tuple[tuple[str, float], ...] = tuple(DEFAULT_WEIGHTS.items())
    knockout_cap: float = DEFAULT_KNOCKOUT_CAP

    _FIELDS = frozenset(
        {
            "must_have_skills",
            "nice_to_have_skills",
            "min_years_experience",
            "required_qualifications",
            "weights",
            "knockout_cap",
        }
    )

    @property
    def weight_map(self) -> dict[str, float]:
        return dict(self.weights)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> RequirementsConfig:
        """Validate a JSON-like dict; raises ``InvalidRequirements(field, message)`` naming the bad field."""
        if d is None:
            return cls()
        if not isinstance(d, dict):
            raise InvalidRequirements("requirements", "must be an object")
        for key in sorted(d):
            if key not in cls._FIELDS:
                raise InvalidRequirements(key, "unknown field")
        min_years = d.get("min_years_experience")
        if min_years is not None:
            if isinstance(min_years, bool) or not isinstance(min_years, int | float) or not math.isfinite(min_years):
                raise InvalidRequirements("min_years_experience", "must be a number")
            if not 0 <= min_years <= 60:
                raise InvalidRequirements("min_years_experience", "must be between 0 and 60")
            min_years = float(min_years)
        weights = dict(DEFAULT_WEIGHTS)
        raw_weights = d.get("weights")
        if raw_weights is not None:
            if not isinstance(raw_weights, dict):
                raise InvalidRequirements("weights", "must be an object of component -> number")
            for key in sorted(raw_weights):
                value = raw_weights[key]
                if key not in WEIGHT_KEYS:
                    raise InvalidRequirements(f"weights.{key}", f"unknown component; expected one of {WEIGHT_KEYS}")
                if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                    raise InvalidRequirements(f"weights.{key}", "must be a number")
                if value < 0:
                    raise InvalidRequirements(f"weights.{key}", "must not be negative")
                weights[key] = float(value)
            if sum(weights.values()) <= 0:
                raise InvalidRequirements("weights", "at least one weight must be positive")
        cap = d.get("knockout_cap", DEFAULT_KNOCKOUT_CAP)
        if isinstance(cap, bool) or not isinstance(cap, int | float) or not 0 <= cap <= 100:
            raise InvalidRequirements("knockout_cap", "must be a number between 0 and 100")
        return cls(
            must_have_skills=_str_list(d, "must_have_skills"),
            nice_to_have_skills=_str_list(d, "nice_to_have_skills"),
            min_years_experience=min_years,
            required_qualifications=_str_list(d, "required_qualifications"),
            weights=tuple((k, weights[k]) for k in WEIGHT_KEYS),
            knockout_cap=float(cap),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "must_have_skills": list(self.must_have_skills),
            "nice_to_have_skills": list(self.nice_to_have_skills),
            "min_years_experience": self.min_years_experience,
            "required_qualifications": list(self.required_qualifications),
            "weights": dict(self.weights),
            "knockout_cap": self.knockout_cap,
        }


@dataclass(frozen=True)
class MatchResult:
    """The score of one candidate against one job, with its explanation."""

    overall_score: float
    match_score: int
    verdict: str
    recommendation: str
    skill_match_percentage: float
    core_skill_match_percentage: float
    role_match_percentage: float
    qualification_match_percentage: float
    sector_match_percentage: float
    experience_match_percentage: float
    match_results_summary: dict[str, Any]
    executive_summary: str
    strengths: tuple[str, ...]
    gaps: tuple[str, ...]
    knocked_out: bool = False
    candidate_years: float = 0.0
    engine_version: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    # Components the job gives nothing to compare ("skills", "roles", "experience", "qualifications",
    # "sectors"): left out of the overall score, their percentage reported as 0, never a 100 with nothing
    # behind it.
    not_applicable: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "overall_score": self.overall_score,
            "match_score": self.match_score,
            "verdict": self.verdict,
            "recommendation": self.recommendation,
            "skill_match_percentage": self.skill_match_percentage,
            "core_skill_match_percentage": self.core_skill_match_percentage,
            "role_match_percentage": self.role_match_percentage,
            "qualification_match_percentage": self.qualification_match_percentage,
            "sector_match_percentage": self.sector_match_percentage,
            "experience_match_percentage": self.experience_match_percentage,
            "match_results_summary": self.match_results_summary,
            "executive_summary": self.executive_summary,
            "strengths": list(self.strengths),
            "gaps": list(self.gaps),
            "knocked_out": self.knocked_out,
            "candidate_years": self.candidate_years,
            "engine_version": self.engine_version,
            "details": self.details,
            "not_applicable": list(self.not_applicable),
        }
