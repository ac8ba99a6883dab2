"""Deterministic scoring of a candidate profile against a job profile.

Every list in the output is ordered by document position or by explicit sort keys (never by set or dict
hash order), and every number is rounded once at the end, so the same inputs give byte-identical results
in any process.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from typing import Any

from .explain import FitFact, SkillFact, executive_summary, gaps, strengths
from .extract import SENIORITY_YEARS, find_phrase
from .occupations import EVIDENCE_TERMS
from .taxonomy import DEFAULT_SKILL_WEIGHT, Taxonomy, norm, title_words
from .types import (
    DEFAULT_WEIGHTS,
    CandidateProfile,
    JobProfile,
    MatchResult,
    Qualification,
    RequirementsConfig,
    Role,
    SkillOccurrence,
)

SCORING_VERSION = "5"

CORE_WEIGHT = 2.0
REQUIRED_WEIGHT = 1.0
PREFERRED_WEIGHT = 0.5
RELATED_CURATED = 0.5
RELATED_CATEGORY = 0.35
ROLE_MATCH_THRESHOLD = 0.6
# Role match = TITLE_SHARE x title similarity + the rest x work-history fit to the job's occupation.  Titles
# alone miss CVs whose headline is vague ("Consultant") and reward a title with nothing behind it; the
# work history's words say what the candidate actually did.  Tuned on the development set.
TITLE_SHARE = 0.4
# A CV whose cosine to the job's occupation is at least this share of its cosine to its closest occupation
# fits fully (see occupation_fit).
FULL_FIT_RATIO = 0.7
# Undated Experience mentions stay below one mention in a dated job (0.8): see evidence_strength.
UNDATED_CAP = 0.72
# An alternate title of the job's occupation (O*NET lists 50-200 per occupation, some loose) counts less
# than the job's own title.
ALT_TITLE_FACTOR = 0.8
BANDS = (
    (75, "STRONG_MATCH", "Interview"),
    (60, "GOOD_MATCH", "Interview"),
    (40, "MODERATE_MATCH", "Consider"),
    (20, "WEAK_MATCH", "Not recommended"),
    (0, "NOT_SUITABLE", "Not recommended"),
)
_DEGREE_WORDS = re.compile(
    r"\b(?:ph\.?d|doctor|doctorate|master|mba|m\.s|msc|bachelor|b\.s|bsc|b\.a|associate|diploma|high school|ged)",
    re.I,
)
_LEVEL_BY_WORD = [
    ("ph", 5),
    ("doctor", 5),
    ("master", 4),
    ("mba", 4),
    ("m.s", 4),
    ("msc", 4),
    ("bachelor", 3),
    ("b.s", 3),
    ("bsc", 3),
    ("b.a", 3),
    ("associate", 2),
    ("diploma", 2),
    ("high school", 1),
    ("ged", 1),
]
_GENERIC_FIELD_WORDS = {
    "science",
    "sciences",
    "studies",
    "arts",
    "and",
    "of",
    "in",
    "the",
    "related",
    "field",
    "or",
    "a",
    "degree",
    "equivalent",
    "management",
    "engineering",
}


def round1(x: float) -> float:
    """Round half up to one decimal (Python's round() is half-even, which surprises readers of scores)."""
    return math.floor(x * 10.0 + 0.5 + 1e-9) / 10.0


def evidence_strength(skill: SkillOccurrence) -> float:
    """How well a CV demonstrates a skill, 0-1.

    Dated work-history evidence dominates and repetition saturates: a bare skills list (however often it
    repeats the word) stays at 0.55; mentions under Experience with no dates around them (which anyone can
    paste) rise from 0.62 to at most 0.72; one mention in a dated job reaches 0.8, more dated lines / years
    approach 1.0.  Identical lines were already counted once by the extraction.
    """
    n_dated = skill.dated_mentions
    if n_dated:
        s = min(0.95, 0.8 + 0.05 * (n_dated - 1))
        if skill.years >= 1.0:
            s = max(s, min(1.0, 0.85 + 0.05 * skill.years))
        return s
    n_exp = skill.experience_mentions
    if n_exp:
        return min(UNDATED_CAP, 0.62 + 0.05 * (n_exp - 1))
    if any(m.section in ("summary", "header", "other") for m in skill.mentions):
        return 0.6
    return 0.55


@dataclass(frozen=True)
class _SkillOutcome:
    job: SkillOccurrence
    display: str
    match_type: str | None
    cand: SkillOccurrence | None
    score: float
    proficiency: float
    duration: float
    knockout: bool


def skill_weight(tax: Taxonomy, skill: SkillOccurrence, knockout: bool = False) -> float:
    """Weight of one job skill in the skill percentage: importance (core 2, required 1, preferred 0.5) times
    rarity (a tool nearly every occupation lists, such as Excel, counts about a fifth of a specific one).

    Must-have skills from the requirements configuration are the recruiter's explicit choice: full rarity.
    """
    importance = PREFERRED_WEIGHT if not skill.required else CORE_WEIGHT if skill.is_core else REQUIRED_WEIGHT
    if knockout:
        return importance
    entry = tax.skill_by_id(skill.id)
    return importance * (entry.weight if entry is not None else DEFAULT_SKILL_WEIGHT)


def _related_factor(tax: Taxonomy, a_id: str, b_id: str) -> float:
    a, b = tax.skill_by_id(a_id), tax.skill_by_id(b_id)
    if a is None or b is None:
        return 0.0
    if b.id in a.related or a.id in b.related:
        return RELATED_CURATED
    if a.category >= 0 and a.category == b.category and a.group == b.group == "tool":
        return RELATED_CATEGORY
    return 0.0


def _job_skills(tax: Taxonomy, job: JobProfile, req: RequirementsConfig) -> list[tuple[SkillOccurrence, bool]]:
    """Job skills plus the configuration's must-have (knock-out) and nice-to-have skills."""
    items: list[tuple[SkillOccurrence, bool]] = [(s, False) for s in job.skills]
    index = {s.id: i for i, (s, _k) in enumerate(items)}
    for names, required in ((req.must_have_skills, True), (req.nice_to_have_skills, False)):
        for name in names:
            entry = tax.lookup_skill(name)
            sid = entry.id if entry else "text:" + norm(name)
            group = entry.group if entry else "hard_skill"
            canonical = entry.name if entry else name
            occ = SkillOccurrence(sid, canonical, name, group, (), 0.0, required, required, None)
            if sid in index:
                i = index[sid]
                prev = items[i][0]
                if required:
                    items[i] = (
                        SkillOccurrence(
                            prev.id, prev.name, prev.surface, prev.group, prev.mentions, 0.0, True, True, prev.min_years
                        ),
                        True,
                    )
                continue
            index[sid] = len(items)
            items.append((occ, required))
    return items


def _text_occurrence(js: SkillOccurrence, cand: CandidateProfile) -> SkillOccurrence | None:
    """A requirement the taxonomy does not know, looked for as words in the CV text itself."""
    mentions, years = find_phrase(cand, js.surface)
    if not mentions:
        return None
    first = mentions[0]
    return SkillOccurrence(
        js.id, js.name, cand.text[first.start : first.end], js.group, tuple(mentions), years, True, False, None
    )


def score_skills(
    tax: Taxonomy, job: JobProfile, cand: CandidateProfile, req: RequirementsConfig
) -> tuple[list[_SkillOutcome], list[SkillOccurrence]]:
    """Match every job skill against the candidate; return outcomes and the candidate's surplus skills."""
    by_id = {s.id: s for s in cand.skills}
    by_name = {norm(s.surface): s for s in cand.skills} | {norm(s.name): s for s in cand.skills}
    used: set[str] = set()
    outcomes: list[_SkillOutcome] = []
    for js, knockout in _job_skills(tax, job, req):
        c = by_id.get(js.id)
        if c is None and js.id.startswith("text:"):
            c = by_name.get(js.id[5:]) or _text_occurrence(js, cand)
        match_type: str | None = None
        factor = 0.0
        if c is not None:
            match_type = "exact" if norm(c.surface) in (norm(js.surface), norm(js.name)) else "synonym"
            factor = 1.0
        else:
            best: tuple[float, float, int] | None = None
            for i, cs in enumerate(cand.skills):
                f = _related_factor(tax, js.id, cs.id)
                if f <= 0:
                    continue
                key = (f, evidence_strength(cs), -i)
                if best is None or key > best:
                    best = key
                    c = cs
            if best is not None:
                match_type, factor = "related", best[0]
        if c is None:
            outcomes.append(_SkillOutcome(js, js.surface, None, None, 0.0, 0.0, 0.0, knockout))
            continue
        if match_type != "related":
            used.add(c.id)
        strength = evidence_strength(c)
        duration = 1.0
        if js.min_years:
            duration = min(1.0, c.years / js.min_years)
        score = factor * strength * ((0.6 + 0.4 * duration) if js.min_years else 1.0)
        outcomes.append(_SkillOutcome(js, js.surface, match_type, c, score, strength, duration, knockout))
    surplus = [s for s in cand.skills if s.id not in used and s.group in ("tool", "hard_skill")]
    surplus.sort(key=lambda s: (-evidence_strength(s), s.mentions[0].start if s.mentions else 0, s.id))
    return outcomes, surplus


def _occ_similarity(tax: Taxonomy, a_id: str | None, b_id: str | None) -> float:
    if a_id is None or b_id is None:
        return 0.0
    if a_id == b_id:
        return 1.0
    a, b = tax.occupation(a_id), tax.occupation(b_id)
    if a is None or b is None:
        return 0.0
    if b.id in a.related or a.id in b.related:
        return 0.65
    if not a.id.startswith("esco:") and not b.id.startswith("esco:"):
        if a.id[:6] == b.id[:6]:
            return 0.75
        if a.id[:5] == b.id[:5]:
            return 0.6
    if a.sector == b.sector and a.sector != "Other":
        return 0.4
    return 0.0


def _weighted_overlap(tax: Taxonomy, target: tuple[str, ...], cv: frozenset[str], *, primary: bool) -> float:
    """Similarity 0-1 of a CV title (word set) to a target title (words in order), words weighted by rarity.

    The best of: weighted Jaccard; the target inside the CV title ("Senior Financial Analyst II" holds
    "financial analyst"); and, for the job's own title or occupation name only (``primary``), a less specific
    CV title with the same head noun and no other words ("Teacher" for "Elementary School Teacher", but not
    "Sales Manager" for "Financial Manager").  Alternate titles do not
    get the last rule: "Consultant" is not an exercise trainer because one of its 200 titles is "fitness
    consultant".
    """
    a = frozenset(target)
    common = a & cv
    if not common:
        return 0.0
    idf = tax.title_word_idf
    inter = sum(idf(w) for w in common)
    w_a = sum(idf(w) for w in a)
    w_cv = sum(idf(w) for w in cv)
    union = w_a + w_cv - inter
    sim = max(inter / union if union > 0 else 0.0, 0.9 * inter / w_a if w_a else 0.0)
    if primary and target[-1] in cv and cv <= a and w_a:
        sim = max(sim, 0.6 + 0.3 * inter / w_a)
    return sim


def role_similarity(tax: Taxonomy, job: JobProfile, role: Role) -> float:
    """Similarity 0-1 of one CV title to the job: same occupation, related occupation, or title words.

    Title words are compared with the JD's own title and with every O*NET / ESCO title of the job's
    occupation, so "HR Generalist" meets a "Human Resources Specialist" job through 13-1071's titles.
    """
    job_roles = tuple((jr.occupation_id, jr.occupation_name or "") for jr in job.roles)
    return _role_similarity(tax, job.job_title, job_roles, role.title, role.occupation_id)


@functools.lru_cache(maxsize=65536)
def _role_similarity(
    tax: Taxonomy, job_title: str, job_roles: tuple[tuple[str | None, str], ...], title: str, occupation_id: str | None
) -> float:
    # Cached: a batch compares thousands of CVs with one job, and titles repeat ("Sales Associate").  A pure
    # function of its arguments (the taxonomy is immutable), so caching cannot change a result.
    # The CV title mapped to the job's own occupation through one of its many alternate titles is strong
    # but not the same as holding the job's title ("Banking Center Manager" for a Financial Manager job).
    sim = (
        max(
            (ALT_TITLE_FACTOR if jid == occupation_id and jid else _occ_similarity(tax, jid, occupation_id))
            for jid, _name in job_roles
        )
        if job_roles
        else 0.0
    )
    words = frozenset(title_words(title))
    if not words:
        return sim
    primary = [tuple(title_words(job_title))] + [tuple(title_words(name)) for _jid, name in job_roles]
    for target in primary:
        if target:
            sim = max(sim, _weighted_overlap(tax, target, words, primary=True))
    for jid, _name in job_roles:
        if jid is None:
            continue
        index = tax.titles_by_word(jid)
        seen: set[tuple[str, ...]] = set()
        for w in sorted(words):
            for target in index.get(w, ()):
                if target not in seen:
                    seen.add(target)
                    sim = max(sim, ALT_TITLE_FACTOR * _weighted_overlap(tax, target, words, primary=False))
    return min(1.0, sim)


@dataclass(frozen=True)
class OccupationFit:
    """How well the CV's work history fits the job's occupation, and the words that show it."""

    occupation_id: str
    occupation_name: str
    fit: float  # 0-1: cosine to the job's occupation relative to the CV's closest occupation, see FULL_FIT_RATIO
    cosine: float  # the CV's cosine to the job's occupation profile
    closest_id: str | None  # the occupation the CV is closest to (None: the CV shares no profile word)
    closest_name: str | None
    terms: tuple[str, ...]  # the CV's words and phrases that contribute most to the cosine, largest first


def occupation_fit(tax: Taxonomy, job: JobProfile, cand: CandidateProfile) -> OccupationFit | None:
    """The CV's fit to the job's occupation (None when the job was not placed in an occupation).

    "Is this CV more like this occupation than like any other?": the cosine of the CV's term vector to the
    job's occupation profile divided by its cosine to the occupation it is closest to.  A CV within
    FULL_FIT_RATIO of its best occupation fits fully (neighbouring occupations such as Accountants and
    Financial Examiners share most words, so the job's need not be the very closest); below, the fit falls
    in proportion.  Repeating words gains little: terms are counted sublinearly and identical lines once.
    """
    idx = tax.occupation_index.get(job.occupation_id or "")
    if idx is None or not tax.profiles:
        return None
    name = job.occupation_name or tax.occupations[idx].name
    closest = cand.closest_occupations[0] if cand.closest_occupations else None
    cosine, contrib = tax.profiles.fit_terms(dict(cand.occupation_terms), idx)
    best = max(cosine, closest[2] if closest else 0.0)
    ratio = cosine / best if best > 0 else 0.0
    return OccupationFit(
        occupation_id=tax.occupations[idx].id,
        occupation_name=name,
        fit=min(1.0, ratio / FULL_FIT_RATIO),
        cosine=cosine,
        closest_id=closest[0] if closest else None,
        closest_name=closest[1] if closest else None,
        terms=tuple(t for t, c in contrib[:EVIDENCE_TERMS] if c > 0),
    )


@dataclass(frozen=True)
class RoleScore:
    """The role match and its two parts, so the percentage can be recomputed from what the result shows."""

    percentage: float | None  # None: the job has neither a title nor an occupation to compare with
    items: dict[str, Any]  # matches / gaps / surpluses of titles
    title: float | None  # 0-1 best title similarity (None: the job has no title)
    fit: OccupationFit | None  # work-history fit (None: the job was not placed in an occupation)

    def breakdown(self) -> dict[str, Any]:
        """The parts as reported in the result's details (percentages, rounded like every output)."""
        out: dict[str, Any] = {}
        if self.title is not None:
            out["title_match_percentage"] = round1(100.0 * self.title)
        if self.fit is not None:
            out["work_history"] = _fit_summary(self.fit)
        if self.title is not None and self.fit is not None:
            out["title_share"] = TITLE_SHARE
        return out


def score_roles(tax: Taxonomy, job: JobProfile, cand: CandidateProfile) -> RoleScore:
    """Role match: the candidate's titles against the job's title and occupation, and the work history's fit
    to that occupation; TITLE_SHARE of it is the titles and the rest the work history when the job has both.
    """
    fit = occupation_fit(tax, job, cand)
    job_roles = list(job.roles)
    if not job_roles and not title_words(job.job_title):
        items: dict[str, Any] = {"matches": [], "gaps": [], "surpluses": []}
        return RoleScore(None if fit is None else 100.0 * fit.fit, items, None, fit)
    best = 0.0
    matched: list[str] = []
    surplus: list[str] = []
    n_other = 0
    for cr in cand.roles:
        sim = role_similarity(tax, job, cr)
        # The headline and the latest job say what the candidate does now; older titles count a bit less.
        if cr.is_headline:
            weight = 1.0
        else:
            weight = 0.95 if n_other == 0 else 0.85
            n_other += 1
        best = max(best, sim * weight)
        if sim >= ROLE_MATCH_THRESHOLD:
            if cr.title not in matched:
                matched.append(cr.title)
        elif cr.title not in surplus:
            surplus.append(cr.title)
    items = {
        "matches": [{"name": t, "type": "match"} for t in matched],
        "gaps": []
        if matched
        else [{"name": r.title, "type": "gap"} for r in job_roles]
        or ([{"name": job.job_title, "type": "gap"}] if job.job_title else []),
        "surpluses": [{"name": t, "type": "surplus"} for t in surplus[:10]],
    }
    if fit is None:
        return RoleScore(best * 100.0, items, best, None)
    return RoleScore(100.0 * (TITLE_SHARE * best + (1.0 - TITLE_SHARE) * fit.fit), items, best, fit)


def _fit_summary(fit: OccupationFit) -> dict[str, Any]:
    return {
        "occupation_id": fit.occupation_id,
        "occupation": fit.occupation_name,
        "match_percentage": round1(100.0 * fit.fit),
        "closest_occupation_id": fit.closest_id,
        "closest_occupation": fit.closest_name,
        "evidence_terms": list(fit.terms),
    }


def _required_qualifications(tax: Taxonomy, job: JobProfile, req: RequirementsConfig) -> list[Qualification]:
    quals = [q for q in job.qualifications if q.required]
    for text in req.required_qualifications:
        if _DEGREE_WORDS.search(text):
            low = text.lower()
            level = next((lv for w, lv in _LEVEL_BY_WORD if w in low), 3)
            fm = re.search(r"\b(?:in|of)\s+(.+)$", text)
            quals.append(Qualification("degree", text, level, fm.group(1).strip() if fm else "", "", True))
        else:
            entry = tax.lookup_skill(text)
            quals.append(
                Qualification(
                    "certification",
                    entry.name if entry else text,
                    0,
                    "",
                    entry.id if entry else "text:" + norm(text),
                    True,
                )
            )
    return quals


def _field_match(want: str, have: list[str]) -> bool:
    w = {t for t in re.split(r"\W+", want.lower()) if t and t not in _GENERIC_FIELD_WORDS}
    if not w:
        return True
    return any(w & {t for t in re.split(r"\W+", h.lower()) if t} for h in have)


def score_qualifications(
    tax: Taxonomy, job: JobProfile, cand: CandidateProfile, req: RequirementsConfig
) -> tuple[float | None, dict[str, Any], list[str]]:
    required = _required_qualifications(tax, job, req)
    degrees = [q for q in cand.qualifications if q.kind == "degree"]
    certs = [q for q in cand.qualifications if q.kind == "certification"]
    max_level = max((q.level for q in degrees), default=0)
    matches: list[dict[str, Any]] = []
    gaps: list[dict[str, Any]] = []
    used: list[str] = []
    missing: list[str] = []
    total = 0.0
    for q in required:
        if q.kind == "degree":
            if max_level >= q.level:
                ok_field = not q.field or _field_match(q.field, [d.field for d in degrees if d.level >= q.level])
                total += 1.0 if ok_field else 0.8
                best = max((d for d in degrees if d.level >= q.level), key=lambda d: (d.level, -d.start))
                matches.append({"name": best.name, "type": "match"})
                used.append(best.name)
            else:
                total += 0.5 if max_level == q.level - 1 else 0.0
                gaps.append({"name": q.name, "type": "gap"})
                missing.append(q.name)
        else:
            hit = next((c for c in certs if c.id == q.id or norm(c.name) == norm(q.name)), None)
            if hit is not None:
                total += 1.0
                matches.append({"name": hit.name, "type": "match"})
                used.append(hit.name)
            else:
                gaps.append({"name": q.name, "type": "gap"})
                missing.append(q.name)
    surpluses = [{"name": q.name, "type": "surplus"} for q in cand.qualifications if q.name not in used]
    items = {"matches": matches, "gaps": gaps, "surpluses": surpluses}
    if not required:
        return None, items, missing
    return 100.0 * total / len(required), items, missing


def score_sectors(job: JobProfile, cand: CandidateProfile) -> tuple[float | None, dict[str, Any]]:
    if not job.sectors:
        return None, {"matches": [], "gaps": [], "surpluses": [{"name": s, "type": "surplus"} for s in cand.sectors]}
    matches = [s for s in job.sectors if s in cand.sectors]
    pct = 0.0
    if matches:
        pct = 100.0 if cand.sectors and cand.sectors[0] == job.sectors[0] else 75.0
    items = {
        "matches": [{"name": s, "type": "match"} for s in matches],
        "gaps": [{"name": s, "type": "gap"} for s in job.sectors if s not in cand.sectors],
        "surpluses": [{"name": s, "type": "surplus"} for s in cand.sectors if s not in job.sectors],
    }
    return pct, items


def required_years(job: JobProfile, req: RequirementsConfig) -> float | None:
    if req.min_years_experience is not None:
        return req.min_years_experience or None
    if job.min_years:
        return job.min_years
    if job.seniority:
        return SENIORITY_YEARS.get(job.seniority) or None
    return None


def band(match_score: int) -> tuple[str, str]:
    for floor, verdict, recommendation in BANDS:
        if match_score >= floor:
            return verdict, recommendation
    return BANDS[-1][1], BANDS[-1][2]


__all__ = [
    "DEFAULT_WEIGHTS",
    "SCORING_VERSION",
    "OccupationFit",
    "RoleScore",
    "band",
    "evidence_strength",
    "occupation_fit",
    "required_years",
    "round1",
    "score_match",
    "score_qualifications",
    "score_roles",
    "score_sectors",
    "score_skills",
    "skill_weight",
]


def score_match(
    tax: Taxonomy, job: JobProfile, cand: CandidateProfile, req: RequirementsConfig, version: str
) -> MatchResult:
    """Score ``cand`` against ``job``: sub-scores, weighted overall, knock-out cap, verdict and explanation."""
    outcomes, surplus = score_skills(tax, job, cand, req)
    item_weights = [skill_weight(tax, o.job, o.knockout) for o in outcomes]
    weights_total = sum(item_weights)
    skill_pct: float | None = None
    core_pct = 0.0
    if outcomes:
        skill_pct = 100.0 * sum(w * o.score for w, o in zip(item_weights, outcomes, strict=True)) / weights_total
        core = (
            [(w, o) for w, o in zip(item_weights, outcomes, strict=True) if o.job.is_core]
            or [(w, o) for w, o in zip(item_weights, outcomes, strict=True) if o.job.required]
            or list(zip(item_weights, outcomes, strict=True))
        )
        core_pct = 100.0 * sum(w * o.score for w, o in core) / sum(w for w, _o in core)
    roles = score_roles(tax, job, cand)
    role_pct, role_items, fit = roles.percentage, roles.items, roles.fit
    qual_pct, qual_items, missing_quals = score_qualifications(tax, job, cand, req)
    sector_pct, sector_items = score_sectors(job, cand)
    need_years = required_years(job, req)
    exp_pct = None if not need_years else 100.0 * min(1.0, cand.total_years / need_years)

    weights = req.weight_map
    components = {
        "skills": skill_pct,
        "roles": role_pct,
        "experience": exp_pct,
        "qualifications": qual_pct,
        "sectors": sector_pct,
    }
    not_applicable = tuple(k for k in DEFAULT_WEIGHTS if components[k] is None)
    applicable = [k for k in DEFAULT_WEIGHTS if components[k] is not None and weights[k] > 0]
    total_w = sum(weights[k] for k in applicable)
    overall = sum(weights[k] * (components[k] or 0.0) for k in applicable) / total_w if total_w else 0.0
    knocked_out = any(o.knockout and o.match_type not in ("exact", "synonym") for o in outcomes)
    if knocked_out:
        overall = min(overall, req.knockout_cap)
    overall = round1(max(0.0, min(100.0, overall)))
    match_score = math.floor(overall + 0.5)
    verdict, recommendation = band(match_score)

    skill_matches: list[dict[str, Any]] = []
    skill_gaps: list[dict[str, Any]] = []
    for o in outcomes:
        if o.cand is None or o.match_type is None:
            skill_gaps.append({"name": o.display, "is_core": o.job.is_core, "skill_id": o.job.id})
            continue
        ev = o.cand.mentions[0] if o.cand.mentions else None
        skill_matches.append(
            {
                "name": o.display,
                "skill_id": o.job.id,
                "match_type": o.match_type,
                "match_score": round(o.score, 2),
                "proficiency_match": round(o.proficiency, 2),
                # What the contract's boolean proficiency_match means: the skill is shown in dated work.
                "in_dated_work": o.cand.dated_mentions > 0,
                "duration_match": round(o.duration, 2),
                "is_core": o.job.is_core,
                "matched_skill": o.cand.surface,
                "years": o.cand.years,
                "evidence": {"start": ev.start, "end": ev.end, "snippet": ev.snippet} if ev else None,
            }
        )
    summary = {
        "skills": {
            "matches": skill_matches,
            "gaps": skill_gaps,
            "surpluses": [{"name": s.surface, "is_core": False, "skill_id": s.id} for s in surplus[:15]],
        },
        "roles": role_items,
        "qualifications": qual_items,
        "sectors": sector_items,
    }
    facts = [
        SkillFact(
            o.display,
            o.job.is_core,
            o.match_type,
            o.cand.years if o.cand else 0.0,
            bool(o.cand and o.cand.experience_mentions and o.match_type != "related"),
            o.knockout,
        )
        for o in outcomes
    ]
    role_titles = [m["name"] for m in role_items["matches"]]
    qual_names = [m["name"] for m in qual_items["matches"]]
    fit_fact = FitFact(fit.occupation_name, fit.fit, fit.closest_name, fit.terms) if fit is not None else None
    return MatchResult(
        overall_score=overall,
        match_score=match_score,
        verdict=verdict,
        recommendation=recommendation,
        # A component the job gives nothing to compare is reported as 0 and named in not_applicable (it is
        # also left out of the overall): a "100% sector match" with no sector behind it would be invented.
        skill_match_percentage=round1(skill_pct or 0.0),
        core_skill_match_percentage=round1(core_pct if outcomes else 0.0),
        role_match_percentage=round1(role_pct or 0.0),
        qualification_match_percentage=round1(qual_pct or 0.0),
        sector_match_percentage=round1(sector_pct or 0.0),
        experience_match_percentage=round1(exp_pct or 0.0),
        match_results_summary=summary,
        executive_summary=executive_summary(
            job.job_title, overall, verdict, facts, cand.total_years, need_years, role_titles, knocked_out, fit_fact
        ),
        strengths=tuple(strengths(facts, role_titles, qual_names, cand.total_years, need_years, fit_fact)),
        gaps=tuple(gaps(facts, missing_quals, cand.total_years, need_years, fit_fact)),
        knocked_out=knocked_out,
        candidate_years=cand.total_years,
        engine_version=version,
        details={
            "applicable_components": applicable,
            "weights": {k: weights[k] for k in DEFAULT_WEIGHTS},
            # What role_match_percentage is made of: title similarity and the work history's occupational fit.
            "roles": roles.breakdown(),
        },
        not_applicable=not_applicable,
    )
