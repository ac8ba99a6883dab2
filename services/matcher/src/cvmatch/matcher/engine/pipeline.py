"""The engine's one spaCy pipeline: a blank English tokenizer plus the custom rule components.

All components are registered here and only here.  They work on character offsets of ``doc.text`` (the
taxonomy matchers are dict based) and leave their results in ``Doc`` extensions, so the
extraction code reads one annotated ``Doc``:

- ``doc._.cvm_lines``: one :class:`Line` per text line with its section kind;
- ``doc._.cvm_skills``: accepted skill hits ``(start, end, surface index)`` in document order;
- ``doc._.cvm_dates``: :class:`~cvmatch.matcher.engine.dates.DateRange` list;
- ``doc._.cvm_today``: the reference date ("Present") used for the dates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

import spacy
from spacy.language import Language
from spacy.tokens import Doc

from .dates import find_date_ranges
from .taxonomy import Taxonomy, fold

# Heading vocabulary: normalised heading text -> section kind.  CVs and JDs share one table; the extractor
# interprets kinds per document type ("qualifications" is a requirement list in a JD, a skills list in a CV).
HEADINGS: dict[str, str] = {}
for _kind, _names in {
    "summary": [
        "summary",
        "professional summary",
        "profile",
        "professional profile",
        "objective",
        "career objective",
        "about me",
        "executive summary",
        "career summary",
        "personal statement",
        "overview",
        "career overview",
        "summary of qualifications",
    ],
    "experience": [
        "experience",
        "work experience",
        "professional experience",
        "employment history",
        "work history",
        "employment",
        "career history",
        "relevant experience",
        "experience details",
        "professional background",
        "positions held",
        "work experience details",
        "internships",
        "internship",
        "military experience",
        "teaching experience",
        "volunteer experience",
    ],
    "projects": ["projects", "key projects", "personal projects", "academic projects", "project details"],
    "skills": [
        "skills",
        "technical skills",
        "key skills",
        "core competencies",
        "competencies",
        "skill highlights",
        "highlights",
        "skills & abilities",
        "skills and abilities",
        "technologies",
        "tech stack",
        "tools",
        "areas of expertise",
        "expertise",
        "it skills",
        "computer skills",
        "core skills",
        "technical proficiencies",
        "software",
        "programming languages",
        "technical expertise",
        "skills summary",
        "relevant skills",
        "additional skills",
        "core qualifications",
        "strengths",
        "tools & technologies",
        "tools and technologies",
    ],
    "education": [
        "education",
        "education and training",
        "academic background",
        "academic qualifications",
        "educational background",
        "academics",
        "training",
        "education & training",
        "educational qualifications",
        "academic profile",
    ],
    "certifications": [
        "certifications",
        "certificates",
        "licenses",
        "licenses and certifications",
        "certifications and licenses",
        "licenses & certifications",
        "certification",
        "professional certifications",
        "credentials",
    ],
    "languages": ["languages", "language skills", "language"],
    "other": [
        "accomplishments",
        "awards",
        "honors",
        "interests",
        "hobbies",
        "references",
        "additional information",
        "affiliations",
        "publications",
        "activities",
        "personal details",
        "personal information",
        "contact",
        "contact information",
        "links",
        "volunteer work",
        "professional affiliations",
        "achievements",
        "awards and honors",
    ],
    "requirements": [
        "requirements",
        "required",
        "required skills",
        "required qualifications",
        "qualifications",
        "minimum qualifications",
        "basic qualifications",
        "must have",
        "must-have",
        "must haves",
        "what you need",
        "what you'll need",
        "what you will need",
        "what we're looking for",
        "what we are looking for",
        "who you are",
        "you have",
        "skills & experience",
        "skills and experience",
        "your profile",
        "about you",
        "requirements and qualifications",
        "job requirements",
        "key requirements",
        "essential",
        "essential skills",
        "essential requirements",
        "experience & skills",
        "your skills",
        "the ideal candidate",
        "you should have",
        "knowledge, skills and abilities",
        "technology skills",
        "required experience",
        "skills required",
    ],
    "preferred": [
        "nice to have",
        "nice-to-have",
        "nice to haves",
        "preferred",
        "preferred qualifications",
        "preferred skills",
        "bonus",
        "bonus points",
        "pluses",
        "plus",
        "desirable",
        "good to have",
        "it's a plus",
        "desired skills",
        "desired qualifications",
        "preferred experience",
        "additional qualifications",
        "extra credit",
        "bonus skills",
        "desired",
    ],
    "responsibilities": [
        "responsibilities",
        "what you'll do",
        "what you will do",
        "the role",
        "role",
        "duties",
        "key responsibilities",
        "job description",
        "description",
        "your role",
        "the job",
        "about the role",
        "job duties",
        "tasks",
        "day to day",
        "your mission",
        "role description",
        "position summary",
        "job summary",
        "main duties",
    ],
    "about": [
        "about us",
        "about the company",
        "company",
        "who we are",
        "our company",
        "about",
        "company description",
        "our mission",
        "equal opportunity",
        "eeo statement",
    ],
    "benefits": [
        "benefits",
        "perks",
        "what we offer",
        "compensation",
        "why join us",
        "perks and benefits",
        "salary",
        "we offer",
        "compensation and benefits",
    ],
}.items():
    for _name in _names:
        HEADINGS[_name] = _kind

_HEADING_STRIP = re.compile(r"^[\s•*\-#=_|>·▪●◦]+|[\s:•*\-#=_|]+$")
_INLINE_HEADING = re.compile(r"^\s*[•*\-]?\s*([A-Za-z][A-Za-z &'/-]{1,40}?)\s*:\s*(\S.*)$")
SEPARATORS = set(",;|/•·()[]\t+")
_CUE_BEFORE = re.compile(
    r"(?:programming|coding|written|develop(?:ed|ing)?|language|languages|experience|proficient|proficiency"
    r"|skilled|expert(?:ise)?|knowledge|fluent|familiar(?:ity)?|built|using|use|with|in|like|including|such as)"
    r"\s*(?:in|with|of|using)?\s*[:(]?\s*$"
)
_CUE_AFTER = re.compile(
    r"^\s*(?:programming|language|lang\b|developer|engineer|code|services|microservices|modules|apps?"
    r"|applications|framework|scripts?|spreadsheets?|workbooks?|macros|pivot|vlookup|formulas|stack"
    r"|-?\s*based\b)",
)
_NEG_AFTER = re.compile(r"^\s+(?:at|to|through|ahead|back|beyond|out|into|for|on|over|the|a|an|of|than)\b")


@dataclass(frozen=True, slots=True)
class Line:
    """One text line: offsets, section kind, whether it is a heading, and a line-level override kind."""

    start: int
    end: int
    section: str
    is_heading: bool
    inline: str | None  # "Skills: Python, Go" -> "skills" for this line only


def heading_kind(line: str) -> str | None:
    """Section kind if ``line`` is a heading ("Work Experience", "REQUIREMENTS:", "Nice to have")."""
    text = _HEADING_STRIP.sub("", line).lower()
    if not text or len(text) > 48 or len(text.split()) > 6:
        return None
    text = text.replace("’", "'")
    kind = HEADINGS.get(text)
    if kind is None and text.endswith(")") and "(" in text:
        kind = HEADINGS.get(text[: text.index("(")].strip())
    return kind


def split_lines(text: str) -> list[Line]:
    """Lines with section kinds carried from the last heading."""
    lines: list[Line] = []
    section = "header"
    pos = 0
    for raw in text.split("\n"):
        start, end = pos, pos + len(raw)
        pos = end + 1
        kind = heading_kind(raw)
        if kind is not None:
            section = kind
            lines.append(Line(start, end, section, True, None))
            continue
        inline = None
        m = _INLINE_HEADING.match(raw)
        if m:
            inline = HEADINGS.get(m.group(1).strip().lower().replace("’", "'"))
        lines.append(Line(start, end, section, False, inline))
    return lines


def line_at(lines: list[Line], pos: int) -> int:
    """Index of the line containing character ``pos`` (binary search)."""
    lo, hi = 0, len(lines) - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if lines[mid].start <= pos:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _prev_char(text: str, pos: int, floor: int) -> str:
    i = pos - 1
    while i >= floor and text[i] in " \t":
        i -= 1
    return text[i] if i >= floor else "\n"


def _next_char(text: str, pos: int, ceil: int) -> str:
    i = pos
    while i < ceil and text[i] in " \t":
        i += 1
    return text[i] if i < ceil else "\n"


class SkillComponent:
    """Finds taxonomy skills; words that are also ordinary English need a skill context to count."""

    def __init__(self) -> None:
        self.taxonomy: Taxonomy | None = None

    def __call__(self, doc: Doc) -> Doc:
        assert self.taxonomy is not None, "the skill component needs a taxonomy (see build_pipeline)"
        tax = self.taxonomy
        text = doc_text(doc)
        folded = fold(text)
        lines: list[Line] = doc._.cvm_lines
        raw_hits = tax.iter_skill_hits(folded, variants=True)
        # Hits inside e-mail addresses and URLs are never skills ("john.go@...", "github.com/r").
        raw_hits = [h for h in raw_hits if not _in_address(text, h[0], h[1])]
        case_forms_of = tax.surface_case_forms
        plain_lines: dict[int, int] = {}
        plain_starts: set[int] = set()
        plain_ends: set[int] = set()
        for start, end, sidx in raw_hits:
            if not case_forms_of(sidx):
                li = line_at(lines, start)
                plain_lines[li] = plain_lines.get(li, 0) + 1
                plain_starts.add(start)
                plain_ends.add(end)
        plain = (plain_starts, plain_ends)
        accepted: list[tuple[int, int, int]] = []
        vouched: list[tuple[int, int, int]] = []
        pending: list[tuple[int, int, int]] = []
        for start, end, sidx in raw_hits:
            case_forms = case_forms_of(sidx)
            if not case_forms:
                accepted.append((start, end, sidx))
            elif self._in_context(text, folded, lines, plain_lines, plain, start, end, case_forms):
                accepted.append((start, end, sidx))
                vouched.append((start, end, sidx))
            elif text[start:end] in case_forms:
                pending.append((start, end, sidx))
        # An ambiguous word accepted in context vouches for its neighbours in the same list: "Bitbucket
        # Bamboo Puppet", "C++17 Rust Go Kubernetes", "Meteor or React or AngularJS".
        while vouched and pending:
            plain_starts.update(h[0] for h in vouched)
            plain_ends.update(h[1] for h in vouched)
            vouched = [h for h in pending if _beside_skill(text, folded, h[0], h[1], plain)]
            if vouched:
                pending = [h for h in pending if h not in vouched]
                accepted += vouched
        # Longest match wins where hits overlap ("Spring Boot" over "Spring", "C++" over "C").
        accepted.sort(key=lambda h: (h[0], -(h[1] - h[0])))
        result: list[tuple[int, int, int]] = []
        last_end = -1
        for hit in accepted:
            if hit[0] >= last_end:
                result.append(hit)
                last_end = hit[1]
            elif hit[1] > last_end and result and hit[1] - hit[0] > result[-1][1] - result[-1][0]:
                result[-1] = hit
                last_end = hit[1]
        doc._.cvm_skills = result
        return doc

    @staticmethod
    def _in_context(
        text: str,
        folded: str,
        lines: list[Line],
        plain_lines: dict[int, int],
        plain: tuple[set[int], set[int]],
        start: int,
        end: int,
        case_forms: tuple[str, ...],
    ) -> bool:
        if text[start:end] not in case_forms:
            return False
        if _next_to_skill(folded, start, end, plain):
            # "PHP React jQuery", "Python/Perl/Go for ...", "PowerPoint Excel": a skill right beside it wins
            # over a prose reading of the next word.
            return _whole_word(text, start, end)
        li = line_at(lines, start)
        line = lines[li]
        after = folded[end : min(line.end, end + 30)]
        if _NEG_AFTER.match(after) and not _CUE_AFTER.match(after):
            return False
        nxt = text[end] if end < len(text) else "\n"
        single = end - start == 1
        if single and nxt in "-&'." and end + 1 < len(text) and text[end + 1].isalnum():
            return False  # "C-level", "R&D", "C.Smith"
        before = folded[max(line.start, start - 30) : start]
        prev_c, next_c = _prev_char(text, start, line.start), _next_char(text, end, line.end)
        in_list = (prev_c in SEPARATORS or prev_c == "\n" or before.rstrip().endswith(":")) and (
            next_c in SEPARATORS or next_c == "\n" or next_c == "."
        )
        others = plain_lines.get(li, 0)
        if in_list and others >= 1:
            return True
        if _CUE_AFTER.match(after) or (_CUE_BEFORE.search(before) and others >= 1):
            return True
        section = line.inline or line.section
        if section in ("skills", "languages", "requirements", "preferred") and not single and (in_list or others):
            return True
        return False


_JOINERS = " \t,/&+|"
# Coordinating words that join the items of a list as punctuation does: "Python and R", "Python or Go".
_CONJUNCTIONS = ("and", "or", "and/or")


def _next_to_skill(folded: str, start: int, end: int, plain: tuple[set[int], set[int]]) -> bool:
    """Whether an unambiguous skill hit ends just before ``start`` or starts just after ``end``.

    Only spaces, list punctuation (at most three characters) and one coordinating "and" / "or" may
    separate them: "Python/Perl/Go", "PHP React jQuery", "Python or Go".  Prose words in between
    ("excel at Python") break the adjacency.
    """
    plain_starts, plain_ends = plain
    i = _skip_joiners_back(folded, start)
    if i < start and i in plain_ends:
        return True
    j = _skip_joiners(folded, end)
    return j > end and j in plain_starts


def _skip_joiners(folded: str, pos: int) -> int:
    j = pos
    while j < len(folded) and j - pos < 3 and folded[j] in _JOINERS:
        j += 1
    if j > pos:
        for word in _CONJUNCTIONS:
            k = j + len(word)
            if folded.startswith(word, j) and k < len(folded) and folded[k] in " \t":
                while k < len(folded) and folded[k] in " \t":
                    k += 1
                return k
    return j


def _skip_joiners_back(folded: str, pos: int) -> int:
    i = pos
    while i > 0 and pos - i < 3 and folded[i - 1] in _JOINERS:
        i -= 1
    if i < pos:
        for word in _CONJUNCTIONS:
            k = i - len(word)
            if k > 0 and folded.startswith(word, k) and folded[k - 1] in " \t,":
                while k > 0 and folded[k - 1] in " \t":
                    k -= 1
                return k
    return i


def _whole_word(text: str, start: int, end: int) -> bool:
    """False for a single letter glued to more by "-&'." ("C-level", "R&D", "C.Smith"): not the language."""
    return not (end - start == 1 and end + 1 < len(text) and text[end] in "-&'." and text[end + 1].isalnum())


def _beside_skill(text: str, folded: str, start: int, end: int, anchors: tuple[set[int], set[int]]) -> bool:
    return _next_to_skill(folded, start, end, anchors) and _whole_word(text, start, end)


def _in_address(text: str, start: int, end: int) -> bool:
    a = start
    while a > 0 and not text[a - 1].isspace():
        a -= 1
    b = end
    while b < len(text) and not text[b].isspace():
        b += 1
    token = text[a:b]
    return "@" in token or "://" in token or token.startswith("www.") or ".com/" in token


@Language.factory("cvmatch_structure")
def _make_structure(nlp: Language, name: str) -> Any:
    def structure(doc: Doc) -> Doc:
        doc._.cvm_lines = split_lines(doc_text(doc))
        return doc

    return structure


@Language.factory("cvmatch_skills")
def _make_skills(nlp: Language, name: str) -> SkillComponent:
    return SkillComponent()


@Language.factory("cvmatch_dates")
def _make_dates(nlp: Language, name: str) -> Any:
    def dates(doc: Doc) -> Doc:
        today: date = doc._.cvm_today or date.today()
        doc._.cvm_dates = find_date_ranges(doc_text(doc), today)
        return doc

    return dates


for _ext in ("cvm_lines", "cvm_skills", "cvm_dates", "cvm_today", "cvm_text"):
    if not Doc.has_extension(_ext):
        Doc.set_extension(_ext, default=None)


def doc_text(doc: Doc) -> str:
    """The document's text as given to :func:`annotate` (the Doc itself may hold no tokens)."""
    text: str | None = doc._.cvm_text
    return text if text is not None else doc.text


def build_pipeline(taxonomy: Taxonomy) -> Language:
    """The engine's pipeline: ``spacy.blank("en")`` + structure, skills and dates components."""
    nlp = spacy.blank("en")
    nlp.add_pipe("cvmatch_structure")
    skills = nlp.add_pipe("cvmatch_skills")
    assert isinstance(skills, SkillComponent)
    skills.taxonomy = taxonomy
    nlp.add_pipe("cvmatch_dates")
    return nlp


def annotate(nlp: Language, text: str, today: date, *, tokenize: bool = False) -> Doc:
    """Run the pipeline over ``text`` with ``today`` as the reference date for "Present".

    The components work on character offsets of the text (dict lookups, regexes) and never read tokens, so
    by default the ``Doc`` is created without running spaCy's tokenizer: it was over half of the time per
    CV.  ``tokenize=True`` gives a fully tokenised ``Doc`` for components or debugging that need tokens.
    """
    # An empty Doc (no tokens) also keeps CV text out of the shared StringStore.
    doc = nlp.make_doc(text) if tokenize else Doc(nlp.vocab)
    doc._.cvm_today = today
    # Doc.text re-joins every token on each access; the components read the text many times.
    doc._.cvm_text = text
    for _name, proc in nlp.pipeline:
        doc = proc(doc)
    return doc
