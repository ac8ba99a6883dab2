"""cvmatch matching engine: parse job descriptions and CVs, score and explain (pure, no I/O but the taxonomy).

Usage::

    engine = MatchEngine.load()
    job = engine.parse_job(jd_text)
    cand = engine.parse_candidate(cv_text)
    result = engine.score(job, cand, RequirementsConfig.from_dict(config))
"""

from __future__ import annotations

import threading
from datetime import date
from pathlib import Path

from .extract import Extractor, language_in_context
from .pipeline import annotate, build_pipeline, line_at
from .scoring import SCORING_VERSION, score_match
from .taxonomy import Taxonomy
from .types import (
    CandidateProfile,
    CandidateTooSparse,
    EngineError,
    InvalidRequirements,
    JobProfile,
    JobTooSparse,
    MatchResult,
    RequirementsConfig,
)

MAX_TEXT_CHARS = 200_000

__all__ = [
    "CandidateProfile",
    "CandidateTooSparse",
    "EngineError",
    "InvalidRequirements",
    "JobProfile",
    "JobTooSparse",
    "MatchEngine",
    "MatchResult",
    "RequirementsConfig",
]


class MatchEngine:
    """Parses and scores; one instance per process, shared by all threads (all state is read-only)."""

    def __init__(self, taxonomy: Taxonomy, today: date | None = None) -> None:
        self.taxonomy = taxonomy
        self._nlp = build_pipeline(taxonomy)
        self._extractor = Extractor(taxonomy)
        self._today = today
        self.version = f"engine-{SCORING_VERSION}+taxonomy-{taxonomy.digest}"

    _default: MatchEngine | None = None
    _lock = threading.Lock()

    @classmethod
    def load(cls, taxonomy_path: str | Path | None = None, *, today: date | None = None) -> MatchEngine:
        """The engine over the shipped taxonomy (cached per process), or over ``taxonomy_path``.

        ``today`` is the reference date for "Present" in CVs; by default the current date at parse time.
        """
        if taxonomy_path is not None or today is not None:
            return cls(Taxonomy.load(taxonomy_path), today)
        with cls._lock:
            if cls._default is None:
                cls._default = cls(Taxonomy.load())
            return cls._default

    def _ref_date(self) -> date:
        return self._today or date.today()

    def parse_job(self, text: str) -> JobProfile:
        """Parse a job description; raises ``JobTooSparse`` when nothing to match against is found."""
        doc = annotate(self._nlp, _clean(text), self._ref_date())
        return self._extractor.job(doc, self.version)

    def parse_candidate(self, text: str, as_of: date | None = None) -> CandidateProfile:
        """Parse a CV; raises ``CandidateTooSparse`` for empty or near-empty CVs (never a 0 score).

        ``as_of`` is the day "Present" in the CV's dates means (a batch's submission day, so that all its
        CVs and any re-scoring agree); the engine's reference date when None.
        """
        doc = annotate(self._nlp, _clean(text), as_of or self._ref_date())
        return self._extractor.candidate(doc, self.version)

    def find_skills(self, text: str) -> list[tuple[int, int, str, str]]:
        """Skill mentions in ``text`` as (start, end, skill id, canonical name), after the context rules.

        A language name counts only where the profiles count it (see ``language_in_context``).
        """
        cleaned = _clean(text)
        doc = annotate(self._nlp, cleaned, self._ref_date())
        lines = doc._.cvm_lines
        out = []
        for start, end, sidx in doc._.cvm_skills:
            entry = self.taxonomy.skills[self.taxonomy.surface_skill(sidx)]
            if entry.group == "language" and not language_in_context(cleaned, lines[line_at(lines, start)]):
                continue
            out.append((start, end, entry.id, entry.name))
        return out

    def score(
        self, job: JobProfile, candidate: CandidateProfile, requirements: RequirementsConfig | None = None
    ) -> MatchResult:
        """Deterministic score of ``candidate`` for ``job`` under ``requirements`` (defaults when None)."""
        return score_match(self.taxonomy, job, candidate, requirements or RequirementsConfig(), self.version)


def _clean(text: str) -> str:
    # Offsets in results must refer to the text the caller sent, so every replacement keeps the length:
    # CRLF becomes " \n" (the space is trailing whitespace every rule ignores), a lone CR a LF, a NUL a space.
    # Only the size bound cuts, and it cuts at the end, so offsets below it are unchanged.
    return text.replace("\r\n", " \n").replace("\r", "\n").replace("\x00", " ")[:MAX_TEXT_CHARS]
