"""Turn an annotated ``Doc`` into a :class:`CandidateProfile` (CV) or :class:`JobProfile` (job description)."""

from __future__ import annotations

import bisect
import itertools
import re
from dataclasses import dataclass, field

from spacy.tokens import Doc

from .dates import DateRange, merge_intervals, total_years
from .pipeline import Line, doc_text, line_at
from .taxonomy import Taxonomy, fold
from .types import CandidateProfile, JobProfile, Mention, Qualification, Role, SkillOccurrence

MIN_CV_WORDS = 12
# In the occupation term vector a job title counts like this many lines of prose (a headline twice that):
# "Staff Accountant" says more about what a CV is than a page of duties.  Tuned on the development set.
TITLE_TERM_WEIGHT = 5.0
# A job description is placed in the occupation its title names (the recruiter's own word for the job)
# unless its text reads clearly as another: the title's occupation must reach this share of the cosine of
# the occupation the text is closest to.  Without a known title, the text's closest occupation is used
# when it is this close (cosine over the profile vocabulary): three lines of tools say too little.
TITLE_OCCUPATION_SHARE = 0.5
MIN_JOB_OCCUPATION_COSINE = 0.2
# How many non-empty lines at the top of a text may be a name and contact block (see _profile_text).
HEADER_LINES = 6
MAX_MENTIONS = 8
SNIPPET_MENTIONS = 3
SNIPPET_RADIUS = 60

EXPERIENCE_SECTIONS = ("experience", "projects")
NOT_EMPLOYMENT = ("education", "certifications", "other", "languages", "skills")

_DEGREES: list[tuple[int, str, re.Pattern[str]]] = [
    (
        5,
        "Doctorate",
        re.compile(
            r"\b(?:ph\.?\s?d\.?|doctor(?:ate)? of [a-z]+|doctorate|d\.phil|ed\.d\.?|j\.d\.?"
            r"|m\.d\.)(?![a-z])",
            re.I,
        ),
    ),
    (
        4,
        "Master's",
        re.compile(
            r"\b(?:master'?s?|m\.s\.|m\.sc\.?|msc|mba|m\.b\.a\.?|m\.a\.|m\.eng\.?|meng"
            r"|m\.tech|mtech|mca|m\.ed\.?|mph|llm|ms(?= in )|ma(?= in ))(?![a-z])",
            re.I,
        ),
    ),
    (
        3,
        "Bachelor's",
        re.compile(
            r"\b(?:bachelor'?s?|b\.s\.|b\.sc\.?|bsc|b\.a\.|b\.e\.|b\.eng\.?|beng|b\.tech"
            r"|btech|bba|b\.b\.a\.?|b\.com|bcom|bca|llb|undergraduate degree|bs(?= in )"
            r"|ba(?= in )|be(?= in ))(?![a-z])",
            re.I,
        ),
    ),
    (
        2,
        "Associate",
        re.compile(
            r"\b(?:associate'?s? (?:degree|of)|a\.a\.s?\.|a\.s\.|aas|diploma in"
            r"|higher national diploma|hnd)(?![a-z])",
            re.I,
        ),
    ),
    (1, "High school", re.compile(r"\b(?:high school diploma|high school|ged|secondary school)(?![a-z])", re.I)),
]
_FIELD = re.compile(
    r"^\s*(?:degree\s+)?(?:of\s+(?:science|arts|engineering|business administration)\s+)?"
    r"(?:in|of|,)\s+(?P<field>[A-Za-z][A-Za-z&/ -]{2,60})"
)
_FIELD_STOP = re.compile(r"\s+(?:from|at|or|and related|with|-|–|\d).*$|[,;.(|].*$", re.I)
_YEARS_REQ = re.compile(
    r"(?<![\d.])(\d{1,2})(?:\.\d)?\s*\+?\s*(?:(?:-|–|to)\s*\d{1,2}\s*)?\+?\s*(?:years?|yrs?)\b"
    r"(?:\s+of)?",
    re.I,
)
_YEARS_CLAIM = re.compile(
    r"(?<![\d.])(\d{1,2})(?:\.\d)?\s*\+?\s*(?:years?|yrs?)\b(?:\s+of)?\s+(?:\w+\s+){0,3}"
    r"?experience",
    re.I,
)
_PREFERRED_CUE = re.compile(
    r"\b(?:nice[ -]to[ -]have|preferred|preferably|is a plus|a plus|bonus|desirable"
    r"|ideally|good to have|advantage|advantageous|not required|optional)\b",
    re.I,
)
_REQUIRED_CUE = re.compile(r"\b(?:must|required|requires|mandatory|essential|minimum|at least)\b", re.I)
# A language name counts as a language someone speaks (or a job needs) only on a line that says so:
# "Danish Universities", "apply in English" and "free German classes" are not language skills.
_LANGUAGE_CUE = re.compile(
    r"\b(?:fluent|fluency|native|bilingual|proficien|speak|spoken|written|writing|language"
    r"|conversational|mother tongue|[abc][12]\b|intermediate|advanced|business level|oral|verbal"
    r"|communicat|command of|skills?\b)",
    re.I,
)
_TITLE_PREFIX = re.compile(r"^\s*(?:job\s+title|position|role|title|vacancy|job)\s*[:\-–]\s*", re.I)
_SENIORITY = [
    ("executive", re.compile(r"\b(?:chief|cto|ceo|cfo|coo|vp|vice president|president|head of)\b", re.I)),
    ("director", re.compile(r"\bdirector\b", re.I)),
    ("lead", re.compile(r"\b(?:lead|principal|staff|architect|manager)\b", re.I)),
    ("senior", re.compile(r"\b(?:senior|sr\.?)(?![a-z])", re.I)),
    ("junior", re.compile(r"\b(?:junior|jr\.?|entry[- ]level|graduate|trainee)(?![a-z])", re.I)),
    ("intern", re.compile(r"\b(?:intern|internship|apprentice)\b", re.I)),
]
SENIORITY_YEARS = {
    "intern": 0.0,
    "junior": 0.0,
    "mid": 2.0,
    "senior": 5.0,
    "lead": 7.0,
    "director": 8.0,
    "executive": 10.0,
}


@dataclass
class _Block:
    """A dated stretch of the work history: one job."""

    start: int
    end: int
    date: DateRange
    line: int


@dataclass
class _SkillAcc:
    id: str
    name: str
    group: str
    surface: str
    mentions: list[Mention] = field(default_factory=list)
    intervals: list[tuple[int, int]] = field(default_factory=list)
    required: bool = False
    preferred: bool = False
    core: bool = False
    min_years: float | None = None
    first: int = 0


def _snippet(text: str, start: int, end: int) -> str:
    a = max(0, start - SNIPPET_RADIUS)
    b = min(len(text), end + SNIPPET_RADIUS)
    # Cut at line ends so the snippet reads as the line the evidence sits on.
    nl = text.rfind("\n", a, start)
    if nl >= 0:
        a = nl + 1
    nl = text.find("\n", end, b)
    if nl >= 0:
        b = nl
    else:
        while b < len(text) and text[b].isalnum():
            b += 1
    if a > 0 and text[a - 1].isalnum():
        while a < start and not text[a].isspace():
            a += 1
    return " ".join(text[a:b].split())


def _section_of(line: Line) -> str:
    return line.inline or line.section


def language_in_context(text: str, line: Line) -> bool:
    """Whether a language name on ``line`` is a language skill: a languages section or a cue on the line."""
    return _section_of(line) == "languages" or bool(_LANGUAGE_CUE.search(text[line.start : line.end]))


def detect_seniority(titles: list[str], years: float | None) -> str | None:
    """Seniority from title words, else from years of experience."""
    for title in titles:
        for level, pattern in _SENIORITY:
            if pattern.search(title):
                return level
    if years is None:
        return None
    if years < 2:
        return "junior"
    if years < 5:
        return "mid"
    if years < 10:
        return "senior"
    return "lead"


def find_degrees(text: str, lines: list[Line], *, job: bool) -> list[Qualification]:
    """Degrees with level and field ("Bachelor of Science in Computer Science" -> level 3, field)."""
    out: list[Qualification] = []
    seen: set[tuple[int, str]] = set()
    for line in lines:
        raw = text[line.start : line.end]
        if not raw.strip() or len(raw) > 400:
            continue
        section = _section_of(line)
        if not job and section in ("experience", "skills", "summary") and "degree" not in raw.lower():
            # CV prose ("worked with MBA students") is not a degree the candidate holds.
            continue
        for level, label, pattern in _DEGREES:
            m = pattern.search(raw)
            if not m:
                continue
            if level == 1 and any(lv > 1 for lv, _n, p in _DEGREES if p.search(raw)):
                break
            fm = _FIELD.match(raw[m.end() :])
            fld = ""
            if fm:
                fld = _FIELD_STOP.sub("", fm.group("field")).strip()
                if len(fld.split()) > 6 or fld.lower() in ("a", "an", "the", "related field"):
                    fld = ""
            key = (level, fld.lower())
            if key in seen:
                break
            seen.add(key)
            required = not (job and (section == "preferred" or _PREFERRED_CUE.search(raw)))
            name = f"{label} in {fld}" if fld else f"{label} degree"
            out.append(
                Qualification("degree", name, level, fld, "", required, line.start + m.start(), line.start + m.end())
            )
            break
    return out


class Extractor:
    """Extraction rules over the pipeline's annotations; stateless apart from the shared taxonomy."""

    def __init__(self, taxonomy: Taxonomy) -> None:
        self.tax = taxonomy

    # -- shared ------------------------------------------------------------------------------------------

    def _headline(self, text: str, lines: list[Line]) -> tuple[int, int] | None:
        for line in lines[:8]:
            raw = text[line.start : line.end]
            if raw.strip() and not line.is_heading:
                m = _TITLE_PREFIX.match(raw)
                lead = len(raw) - len(raw.lstrip())
                start = line.start + (m.end() if m else lead)
                return start, line.start + len(raw.rstrip())
        return None

    def _roles_in(self, text: str, start: int, end: int, *, headline: bool) -> list[Role]:
        """Titles in a short span, longest non-overlapping first."""
        segment = text[start:end]
        if len(segment.split()) > 12:
            return []
        hits = self.tax.iter_title_hits(fold(segment))
        hits.sort(key=lambda h: (-(h[1] - h[0]), h[0]))
        roles: list[Role] = []
        used: list[tuple[int, int]] = []
        for a, b, oidx in hits:
            if any(a < ue and b > us for us, ue in used):
                continue
            used.append((a, b))
            occ = self.tax.occupations[oidx]
            roles.append(Role(segment[a:b], occ.id, occ.name, occ.sector, start + a, start + b, is_headline=headline))
        roles.sort(key=lambda r: r.start)
        return roles

    def _collect_skills(self, doc: Doc, lines: list[Line]) -> dict[str, _SkillAcc]:
        text = doc_text(doc)
        acc: dict[str, _SkillAcc] = {}
        # A line is one piece of evidence for a skill, however often it names it or is pasted (anti-stuffing).
        seen_lines: set[tuple[str, str]] = set()
        for start, end, sidx in doc._.cvm_skills:
            entry = self.tax.skills[self.tax.surface_skill(sidx)]
            line = lines[line_at(lines, start)]
            key = (entry.id, " ".join(text[line.start : line.end].split()).lower())
            a = acc.get(entry.id)
            if key in seen_lines:
                continue
            seen_lines.add(key)
            if a is None:
                a = acc[entry.id] = _SkillAcc(entry.id, entry.name, entry.group, text[start:end], first=start)
            a.mentions.append(Mention(start, end, _section_of(line)))
        return acc

    # -- CVs ---------------------------------------------------------------------------------------------

    def candidate(self, doc: Doc, engine_version: str) -> CandidateProfile:
        from .types import CandidateTooSparse

        text = doc_text(doc)
        lines: list[Line] = doc._.cvm_lines
        words = len(text.split())
        skills = self._collect_skills(doc, lines)
        if words < MIN_CV_WORDS:
            raise CandidateTooSparse(f"CV has {words} words; at least {MIN_CV_WORDS} are needed to score it")

        blocks = self._blocks(doc, lines)
        # Skill years: the union of the dated jobs whose text mentions the skill.
        for a in skills.values():
            for i, m in enumerate(a.mentions):
                blk = _block_at(blocks, m.start)
                if blk is not None:
                    a.intervals.append((blk.date.start_month, blk.date.end_month))
                    a.mentions[i] = Mention(m.start, m.end, m.section, m.snippet, True)

        roles: list[Role] = []
        head = self._headline(text, lines)
        # The headline title is usually the first line, but often under the candidate's name.
        seen_lines = 0
        fallback: Role | None = None
        for line in lines[:12]:
            raw = text[line.start : line.end]
            if not raw.strip() or line.is_heading:
                continue
            seen_lines += 1
            found = self._roles_in(text, line.start, line.end, headline=True)
            if found and seen_lines == 1 and _looks_like_name(text[line.start : line.end], line.start, found):
                # "Sam Carpenter": the candidate's name, whose surname happens to be a title.
                continue
            if found:
                roles += found
                head = (line.start, line.end)
                break
            if fallback is None:
                fallback = self._unmapped_title(text, line)
            if seen_lines >= 3:
                break
        if not roles and fallback is not None:
            # "CONSULTANT", "SALES": a title too ambiguous for one occupation is still the candidate's title.
            roles.append(fallback)
        for blk in blocks:
            # The title sits next to the dates: the date line and up to two lines either side.
            li = blk.line
            for j in range(max(0, li - 2), min(len(lines), li + 3)):
                ln = lines[j]
                if ln.is_heading or not (blk.start <= ln.start < blk.end or j <= li):
                    continue
                for r in self._roles_in(text, ln.start, ln.end, headline=False):
                    years = round(blk.date.months / 12.0, 1)
                    roles.append(
                        Role(r.title, r.occupation_id, r.occupation_name, r.sector, r.start, r.end, years, False)
                    )
        roles = _dedupe_roles(roles)

        all_intervals = [(b.date.start_month, b.date.end_month) for b in blocks]
        years = total_years(all_intervals)
        if years == 0.0:
            claims = [float(m.group(1)) for m in _YEARS_CLAIM.finditer(text)]
            years = max(claims) if claims else 0.0

        qualifications = find_degrees(text, lines, job=False)
        languages: list[str] = []
        skill_list: list[SkillOccurrence] = []
        for a in sorted(skills.values(), key=lambda s: s.first):
            if a.group == "language":
                if self._language_ok(text, lines, a):
                    languages.append(a.name)
                continue
            if a.group == "certification":
                m = a.mentions[0]
                qualifications.append(Qualification("certification", a.name, 0, "", a.id, True, m.start, m.end))
            mentions = tuple(_with_snippets(text, a.mentions))
            skill_list.append(SkillOccurrence(a.id, a.name, a.surface, a.group, mentions, total_years(a.intervals)))

        if not skill_list and not roles and not blocks and not qualifications:
            raise CandidateTooSparse("CV shows no skill, job title, dated experience or qualification")

        sectors = _sectors(roles)
        seniority = detect_seniority(
            [r.title for r in roles if r.is_headline] + [text[head[0] : head[1]]] if head else [],
            years if years else None,
        )
        occ_terms, closest = self._occupation_fit(
            _profile_text(text, lines), [(r.title, r.is_headline) for r in roles], 3
        )
        return CandidateProfile(
            skills=tuple(skill_list),
            roles=tuple(roles),
            qualifications=tuple(qualifications),
            sectors=tuple(sectors),
            total_years=years,
            seniority=seniority,
            languages=tuple(languages),
            word_count=words,
            engine_version=engine_version,
            text=text,
            section_starts=_section_starts(lines),
            dated_spans=tuple((b.start, b.end, b.date.start_month, b.date.end_month) for b in blocks),
            occupation_terms=occ_terms,
            closest_occupations=closest,
        )

    def _term_vector(self, text: str, titles: list[tuple[str, bool]]) -> dict[str, float]:
        """The text's occupation term vector, titles weighted up; weights rounded so that cosines computed
        now and from a stored profile agree."""
        parts = [(text, 1.0)] + [(t, TITLE_TERM_WEIGHT * (2.0 if head else 1.0)) for t, head in titles]
        return {t: round(w, 5) for t, w in self.tax.profiles.vector(parts).items()}

    def _occupation_fit(
        self, text: str, titles: list[tuple[str, bool]], n: int
    ) -> tuple[tuple[tuple[str, float], ...], tuple[tuple[str, str, float], ...]]:
        """The text's term vector and its ``n`` closest occupations as (id, name, cosine)."""
        if not self.tax.profiles:
            return (), ()
        vec = self._term_vector(text, titles)
        closest = tuple(
            (self.tax.occupations[m.occupation].id, self.tax.occupations[m.occupation].name, round(m.cosine, 5))
            for m in self.tax.profiles.closest(vec, n)
        )
        return tuple(vec.items()), closest

    def _job_occupation(self, text: str, title: str, roles: list[Role]) -> tuple[str, str, float] | None:
        """The occupation a job description is for, as (id, name, cosine), or None (see TITLE_OCCUPATION_SHARE)."""
        profiles = self.tax.profiles
        if not profiles:
            return None
        vec = self._term_vector(text, [(title, True)] if title else [])
        best = profiles.closest(vec, 1)
        best_cos = best[0].cosine if best else 0.0
        for r in roles:
            # Of the occupations that list the title, the one the text reads most like (ties: first owner).
            owners = [o for o in self.tax.title_owners(r.title) if o in profiles]
            if not owners:
                continue
            scored = [(profiles.fit_terms(vec, o)[0], -k, o) for k, o in enumerate(owners)]
            cosine, _k, idx = max(scored)
            if cosine > 0 and cosine >= TITLE_OCCUPATION_SHARE * best_cos:
                return self.tax.occupations[idx].id, self.tax.occupations[idx].name, round(cosine, 5)
            break
        if best and best_cos >= MIN_JOB_OCCUPATION_COSINE:
            occ = self.tax.occupations[best[0].occupation]
            return occ.id, occ.name, round(best_cos, 5)
        return None

    def _unmapped_title(self, text: str, line: Line) -> Role | None:
        """A short headline line ending in a known title word ("Consultant", "IT Sales") as an unmapped role."""
        raw = text[line.start : line.end]
        stripped = raw.strip()
        words = re.findall(r"[A-Za-z]+", stripped)
        if not words or len(words) > 6 or any(c.isdigit() or c in "@:" for c in stripped):
            return None
        if words[-1].lower() not in self.tax.title_heads and words[-1].lower() not in self.tax.generic_titles:
            return None
        start = line.start + raw.index(stripped)
        return Role(stripped, None, None, None, start, start + len(stripped), 0.0, True)

    def _language_ok(self, text: str, lines: list[Line], a: _SkillAcc) -> bool:
        return any(language_in_context(text, lines[line_at(lines, m.start)]) for m in a.mentions)

    def _blocks(self, doc: Doc, lines: list[Line]) -> list[_Block]:
        """Dated jobs: each date range in the work history and the text up to the next one."""
        has_experience = any(ln.is_heading and ln.section == "experience" for ln in lines)
        ranges: list[tuple[DateRange, int]] = []
        for r in doc._.cvm_dates:
            li = line_at(lines, r.start)
            section = _section_of(lines[li])
            if has_experience and section not in EXPERIENCE_SECTIONS:
                continue
            if not has_experience and section in NOT_EMPLOYMENT:
                continue
            ranges.append((r, li))
        blocks: list[_Block] = []
        text = doc_text(doc)
        for i, (r, li) in enumerate(ranges):
            # Start two non-empty lines above the dates (title / company usually precede them).
            # Bullets and blank lines above belong to the previous job.
            j, seen = li, 0
            while j > 0 and seen < 2 and not lines[j - 1].is_heading:
                above = text[lines[j - 1].start : lines[j - 1].end].strip()
                if not above or above[0] in "-•*▪●◦" or len(above.split()) > 12:
                    break
                j -= 1
                seen += 1
            start = lines[j].start
            if i > 0:
                start = max(start, ranges[i - 1][0].end)
            end = len(text)
            for k in range(li + 1, len(lines)):
                if lines[k].is_heading and lines[k].section not in EXPERIENCE_SECTIONS:
                    end = lines[k].start
                    break
            blocks.append(_Block(start, end, r, li))
        # Each job ends where the next one starts.
        for a, b in itertools.pairwise(blocks):
            if b.start < a.end:
                a.end = b.start
            if a.end <= a.start:
                a.end = a.start + 1
        return blocks

    # -- job descriptions --------------------------------------------------------------------------------

    def job(self, doc: Doc, engine_version: str) -> JobProfile:
        from .types import JobTooSparse

        text = doc_text(doc)
        lines: list[Line] = doc._.cvm_lines
        sections = {ln.section for ln in lines if ln.is_heading}
        has_req = bool(sections & {"requirements", "preferred"})
        skills = self._collect_skills(doc, lines)
        head = self._headline(text, lines)
        title = text[head[0] : head[1]].strip() if head else ""
        roles = self._roles_in(text, head[0], head[1], headline=True) if head else []
        title_lower = fold(title)

        for a in skills.values():
            for m in a.mentions:
                line = lines[line_at(lines, m.start)]
                section = _section_of(line)
                raw = text[line.start : line.end]
                if section in ("about", "benefits"):
                    continue
                in_title = head is not None and head[0] <= m.start < head[1]
                preferred = section == "preferred" or bool(_PREFERRED_CUE.search(raw))
                if preferred:
                    a.preferred = True
                    continue
                a.required = True
                if section == "requirements" or in_title or (not has_req and a.group in ("tool", "hard_skill")):
                    a.core = True
                elif _REQUIRED_CUE.search(raw):
                    a.core = True
        # Years: "5+ years of Python" binds to the skill right after; "5+ years of experience" is general.
        general_years: list[float] = []
        for line in lines:
            raw = text[line.start : line.end]
            if _section_of(line) in ("about", "benefits"):
                continue
            for ym in _YEARS_REQ.finditer(raw):
                n = float(ym.group(1))
                if not 0 < n <= 30:
                    continue
                pos = line.start + ym.end()
                bound = [
                    a
                    for a in skills.values()
                    for mm in a.mentions
                    if pos <= mm.start <= pos + 45 and line.start <= mm.start < line.end
                ]
                after = raw[ym.end() : ym.end() + 40].lower()
                if bound and "experience" not in after[:15]:
                    first = min(bound, key=lambda a: min(mm.start for mm in a.mentions if mm.start >= pos))
                    first.min_years = max(first.min_years or 0.0, n)
                elif not _PREFERRED_CUE.search(raw):
                    general_years.append(n)
        min_years = max(general_years) if general_years else None

        qualifications = find_degrees(text, lines, job=True)
        languages: list[str] = []
        skill_list: list[SkillOccurrence] = []
        for a in sorted(skills.values(), key=lambda s: s.first):
            if not (a.required or a.preferred):
                continue
            if a.group == "language":
                if self._language_ok(text, lines, a) or fold(a.name) in title_lower:
                    languages.append(a.name)
                continue
            if a.group == "certification":
                m = a.mentions[0]
                qualifications.append(Qualification("certification", a.name, 0, "", a.id, a.required, m.start, m.end))
                continue
            is_core = a.required and a.core and a.group != "soft_skill"
            skill_list.append(
                SkillOccurrence(
                    a.id,
                    a.name,
                    a.surface,
                    a.group,
                    tuple(_with_snippets(text, a.mentions[:MAX_MENTIONS])),
                    0.0,
                    a.required,
                    is_core,
                    a.min_years,
                )
            )
        if not skill_list and not roles and not qualifications:
            raise JobTooSparse("job description names no recognisable skill, title or qualification")
        if skill_list and not any(s.is_core for s in skill_list):
            # Without explicit requirements, the required hard skills are the core.
            skill_list = [
                SkillOccurrence(
                    s.id,
                    s.name,
                    s.surface,
                    s.group,
                    s.mentions,
                    0.0,
                    s.required,
                    s.required and s.group != "soft_skill",
                    s.min_years,
                )
                for s in skill_list
            ]
        core_names = [s.surface for s in skill_list if s.is_core]
        summary = "Requires: " + ", ".join(core_names[:5]) if core_names else ""
        if not min_years:
            min_years = None
        occupation = self._job_occupation(_profile_text(text, lines), title, roles)
        return JobProfile(
            job_title=title,
            job_summary=summary,
            skills=tuple(skill_list),
            roles=tuple(roles),
            qualifications=tuple(qualifications),
            sectors=tuple(_sectors(roles)),
            min_years=min_years,
            seniority=detect_seniority([title], None),
            languages=tuple(languages),
            engine_version=engine_version,
            occupation_id=occupation[0] if occupation else None,
            occupation_name=occupation[1] if occupation else None,
            occupation_similarity=occupation[2] if occupation else 0.0,
        )


_NAME_WORD = re.compile(r"[A-Z][a-z]+(?:[-'’][A-Z]?[a-z]+)*|[A-Z]{3,}(?:[-'’][A-Z]+)*|[A-Z]\.")
# Words that make a capitalised line a title rather than a name ("Senior Carpenter", "Master Baker").
_TITLE_CUE_WORDS = frozenset(
    {
        "senior",
        "sr",
        "junior",
        "jr",
        "lead",
        "head",
        "chief",
        "principal",
        "staff",
        "master",
        "journeyman",
        "apprentice",
        "assistant",
        "certified",
        "licensed",
        "registered",
        "freelance",
        "trainee",
        "intern",
        "associate",
        "executive",
        "deputy",
        "general",
        "professional",
        "experienced",
        "qualified",
    }
)


def _looks_like_name(raw: str, start: int, roles: list[Role]) -> bool:
    """Whether a CV's first line is a person's name whose surname is a title ("Sam Carpenter").

    A name is 2-3 capitalised words (plus initials) with no title cue word, and the title found in it does
    not cover its first word: "Software Engineer" and "Finish Carpenter" are titles from their first word.
    """
    words = raw.split()
    named = [w for w in words if not re.fullmatch(r"[A-Z]\.", w)]
    if not 2 <= len(named) <= 3 or len(words) > 4 or not all(_NAME_WORD.fullmatch(w) for w in words):
        return False
    if any(w.rstrip(".").lower() in _TITLE_CUE_WORDS for w in words):
        return False
    first = start + len(raw) - len(raw.lstrip())
    return not any(r.start <= first < r.end for r in roles)


def _profile_text(text: str, lines: list[Line]) -> str:
    """The lines that say what a person does, for the occupation term vector.

    Headings ("Experience") say nothing, and short lines at the top above the first heading are the name
    and contact details: "Sam Carpenter" is not a carpenter.  A title there still counts, through the roles
    found.  Only the top lines are dropped, so a CV without headings keeps its short lines further down.
    """
    keep = []
    seen = 0
    for line in lines:
        raw = text[line.start : line.end]
        if not raw.strip():
            continue
        seen += 1
        if line.is_heading or (line.section == "header" and seen <= HEADER_LINES and len(raw.split()) < 5):
            continue
        keep.append(raw)
    return "\n".join(keep)


def _section_starts(lines: list[Line]) -> tuple[tuple[int, str], ...]:
    """Where each run of lines with the same section kind starts (for evidence found after parsing)."""
    out: list[tuple[int, str]] = []
    for line in lines:
        section = _section_of(line)
        if not out or out[-1][1] != section:
            out.append((line.start, section))
    return tuple(out)


def find_phrase(cand: CandidateProfile, phrase: str) -> tuple[list[Mention], float]:
    """A free-text phrase in the CV (case-insensitive, whole words): its mentions and the dated years it spans.

    For requirements the taxonomy does not know ("zorblax ledger"); sections and dated jobs are those the
    parse found, so the evidence counts like a taxonomy skill's.
    """
    words = phrase.split()
    if not words or not cand.text:
        return [], 0.0
    pattern = re.compile(r"(?<!\w)" + r"\s+".join(re.escape(w) for w in words) + r"(?!\w)", re.I)
    starts = [s for s, _k in cand.section_starts]
    mentions: list[Mention] = []
    intervals: list[tuple[int, int]] = []
    seen: set[str] = set()
    for m in pattern.finditer(cand.text):
        a, b = m.span()
        ls, le = cand.text.rfind("\n", 0, a) + 1, cand.text.find("\n", b)
        key = " ".join(cand.text[ls : le if le >= 0 else len(cand.text)].split()).lower()
        if key in seen:
            continue
        seen.add(key)
        i = bisect.bisect_right(starts, a) - 1
        section = cand.section_starts[i][1] if i >= 0 else "header"
        span = next((d for d in cand.dated_spans if d[0] <= a < d[1]), None)
        if span is not None:
            intervals.append((span[2], span[3]))
        mentions.append(Mention(a, b, section, "", span is not None))
    return _with_snippets(cand.text, mentions), total_years(intervals)


def _block_at(blocks: list[_Block], pos: int) -> _Block | None:
    for b in blocks:
        if b.start <= pos < b.end:
            return b
    return None


def _with_snippets(text: str, mentions: list[Mention]) -> list[Mention]:
    # Evidence in the work history first: it is what the explanation should quote.
    ordered = sorted(mentions, key=lambda m: (not m.dated, m.section not in EXPERIENCE_SECTIONS, m.start))[
        :MAX_MENTIONS
    ]
    # Only the first few are quoted (the result quotes the first); the rest keep their offsets.  Building a
    # snippet for every mention was a tenth of the time per CV.
    return [
        Mention(m.start, m.end, m.section, _snippet(text, m.start, m.end) if i < SNIPPET_MENTIONS else "", m.dated)
        for i, m in enumerate(ordered)
    ]


def _dedupe_roles(roles: list[Role]) -> list[Role]:
    out: list[Role] = []
    seen: dict[tuple[str | None, str], int] = {}
    for r in roles:
        key = (r.occupation_id, fold(r.title))
        if key in seen:
            i = seen[key]
            prev = out[i]
            out[i] = Role(
                prev.title,
                prev.occupation_id,
                prev.occupation_name,
                prev.sector,
                prev.start,
                prev.end,
                round(prev.years + r.years, 1),
                prev.is_headline or r.is_headline,
            )
            continue
        seen[key] = len(out)
        out.append(r)
    return out


def _sectors(roles: list[Role]) -> list[str]:
    weight: dict[str, float] = {}
    first: dict[str, int] = {}
    for i, r in enumerate(roles):
        if r.sector:
            weight[r.sector] = weight.get(r.sector, 0.0) + r.years + (2.0 if r.is_headline else 0.5)
            first.setdefault(r.sector, i)
    return sorted(weight, key=lambda s: (-weight[s], first[s]))


__all__ = ["Extractor", "detect_seniority", "find_degrees", "find_phrase", "language_in_context", "merge_intervals"]
