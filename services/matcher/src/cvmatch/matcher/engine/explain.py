"""Plain-language explanations built only from evidence the scorer found (no invented claims)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SkillFact:
    """What the explanation may say about one job skill."""

    name: str
    is_core: bool
    match_type: str | None  # None: missing
    years: float
    in_work_history: bool
    knockout: bool


@dataclass(frozen=True)
class FitFact:
    """What the explanation may say about the work history's fit to the job's occupation."""

    occupation: str
    fit: float  # 0-1, the work-history part of the role match
    closest: str | None  # the occupation the CV reads most like
    terms: tuple[str, ...]  # the CV's words and phrases that drove the fit, largest first


# A fit this high is a strength worth naming; one below WEAK_FIT is a gap (the CV reads as something else).
STRONG_FIT = 0.8
WEAK_FIT = 0.5


def _fmt_years(y: float) -> str:
    return f"{y:.1f} year" + ("" if y == 1.0 else "s")


def _join(names: list[str]) -> str:
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def executive_summary(
    job_title: str,
    overall: float,
    verdict: str,
    facts: list[SkillFact],
    candidate_years: float,
    required_years: float | None,
    role_titles: list[str],
    knocked_out: bool,
    fit: FitFact | None = None,
) -> str:
    core = [f for f in facts if f.is_core]
    pool = core or facts
    matched = [f for f in pool if f.match_type in ("exact", "synonym")]
    related = [f for f in pool if f.match_type == "related"]
    missing = [f.name for f in pool if f.match_type is None]
    target = f" for {job_title}" if job_title else ""
    parts = [f"Overall score {overall:.1f}/100 ({verdict.replace('_', ' ').lower()}){target}."]
    if pool:
        kind = "core" if core else "listed"
        s = f"The CV shows {len(matched)} of {len(pool)} {kind} skills"
        if related:
            s += f" and related experience for {len(related)} more"
        parts.append(s + ".")
    if required_years:
        parts.append(
            f"It documents {_fmt_years(candidate_years)} of dated experience against "
            f"{_fmt_years(required_years)} required."
        )
    elif candidate_years:
        parts.append(f"It documents {_fmt_years(candidate_years)} of dated experience.")
    if role_titles:
        parts.append(f"Relevant roles: {_join(role_titles[:3])}.")
    if fit is not None:
        parts.append(f"Work history fit with {fit.occupation}: {100.0 * fit.fit:.0f}%.")
    if missing:
        parts.append(f"Missing: {_join(missing[:5])}.")
    if knocked_out:
        parts.append("A must-have skill is missing, so the score is capped.")
    return " ".join(parts)


def strengths(
    facts: list[SkillFact],
    role_titles: list[str],
    qualification_matches: list[str],
    candidate_years: float,
    required_years: float | None,
    fit: FitFact | None = None,
) -> list[str]:
    out: list[str] = []
    if fit is not None and fit.fit >= STRONG_FIT and fit.terms:
        out.append(f"Work history fits {fit.occupation}: {_join(list(fit.terms[:4]))}.")
    worked = [f for f in facts if f.match_type in ("exact", "synonym") and f.in_work_history]
    worked.sort(key=lambda f: (not f.is_core, -f.years))
    for f in worked[:5]:
        if f.years > 0:
            out.append(f"Used {f.name} in work history ({_fmt_years(f.years)}).")
        else:
            out.append(f"Used {f.name} in work history.")
    listed = [f.name for f in facts if f.match_type in ("exact", "synonym") and not f.in_work_history]
    if listed:
        out.append(f"Lists {_join(listed[:5])}.")
    if role_titles:
        out.append(f"Held a matching role: {_join(role_titles[:2])}.")
    if required_years and candidate_years >= required_years:
        out.append(
            f"{_fmt_years(candidate_years).capitalize()} of experience meets the "
            f"{_fmt_years(required_years)} asked for."
        )
    for q in qualification_matches[:2]:
        out.append(f"Holds {q}.")
    return out


def gaps(
    facts: list[SkillFact],
    missing_qualifications: list[str],
    candidate_years: float,
    required_years: float | None,
    fit: FitFact | None = None,
) -> list[str]:
    out: list[str] = []
    if fit is not None and fit.fit < WEAK_FIT:
        if fit.closest and fit.closest != fit.occupation:
            out.append(f"Work history reads more like {fit.closest} than {fit.occupation}.")
        else:
            out.append(f"Work history shows little of {fit.occupation}.")
    for f in facts:
        if f.match_type is None and (f.is_core or f.knockout):
            label = "must-have" if f.knockout else "core requirement"
            out.append(f"No evidence of {f.name} ({label}).")
    for f in facts:
        if f.match_type == "related" and f.is_core:
            out.append(f"{f.name} only through related experience.")
    optional = [f.name for f in facts if f.match_type is None and not f.is_core and not f.knockout]
    if optional:
        out.append(f"Not shown: {_join(optional[:5])}.")
    if required_years and candidate_years < required_years:
        out.append(
            f"{_fmt_years(candidate_years).capitalize()} of dated experience; the role asks for "
            f"{_fmt_years(required_years)}."
        )
    for q in missing_qualifications[:3]:
        out.append(f"Required qualification not found: {q}.")
    return out
