"""The compiled skills / occupations taxonomy and its Aho-Corasick matchers (read-only after load)."""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import ahocorasick

DEFAULT_PATH = "taxonomy.json.gz"
_TITLE_WORD = re.compile(r"[a-z0-9][a-z0-9&+'/.-]*[a-z0-9+]|[a-z0-9]")
# Tools sharing an O*NET commodity class are "related" only when the class is specific enough; "Analytical
# or scientific software" holds thousands of unrelated products.
MAX_RELATED_CATEGORY = 80


def norm(text: str) -> str:
    """Matching form of a label; must agree with tools/build_taxonomy.py's ``norm``."""
    return " ".join(text.replace("\u2019", "'").lower().split())


def fold(text: str) -> str:
    """Lowercase ``text`` keeping its length, so matcher offsets are offsets into the original text."""
    out = text.lower()
    if len(out) == len(text):
        return out.replace("\u2019", "'")
    # Rare characters whose lowercase form is longer (e.g. "İ"): fold one by one.
    return "".join(c if len(c.lower()) != 1 else c.lower() for c in text).replace("\u2019", "'")


@dataclass(frozen=True, slots=True)
class SkillEntry:
    """One taxonomy skill."""

    id: str
    name: str
    group: str
    related: tuple[str, ...]
    category: int
    popularity: int


@dataclass(frozen=True, slots=True)
class SurfaceEntry:
    """One matchable surface form (a key of the automaton)."""

    skill: int
    key: str
    # Non-empty: a word that is also ordinary English; it needs a skill context and one of these spellings.
    case_forms: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class OccupationEntry:
    """One occupation (O*NET SOC code or ESCO code) with its sector."""

    id: str
    name: str
    sector: str
    related: tuple[str, ...]


class Taxonomy:
    """Skills, occupations and the automata that find them in text; immutable and safe to share across threads."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.digest: str = str(data.get("digest", ""))
        self.skills: list[SkillEntry] = []
        self.skill_index: dict[str, int] = {}
        self.surfaces: list[SurfaceEntry] = []
        self.surface_by_key: dict[str, int] = {}
        self._skill_automaton = ahocorasick.Automaton()
        # Local aliases: this loop runs ~70k times at load and attribute lookups dominate it.
        surfaces, surface_by_key = self.surfaces, self.surface_by_key
        add_skill = self._skill_automaton.add_word
        category_sizes: dict[int, int] = {}
        for rec in data["skills"]:
            cat = int(rec.get("cat", -1))
            if cat >= 0:
                category_sizes[cat] = category_sizes.get(cat, 0) + 1
        for idx, rec in enumerate(data["skills"]):
            cat = int(rec.get("cat", -1))
            entry = SkillEntry(
                id=rec["id"],
                name=rec["name"],
                group=rec["group"],
                related=tuple(rec.get("rel", ())),
                category=cat if 0 <= cat and category_sizes[cat] <= MAX_RELATED_CATEGORY else -1,
                popularity=int(rec.get("pop", 0)),
            )
            self.skills.append(entry)
            self.skill_index[entry.id] = idx
            ctx_by_key: dict[str, list[str]] = {}
            for form in rec.get("ctx", ()):
                ctx_by_key.setdefault(norm(form), []).append(form)
            for key in (norm(rec["name"]), *rec.get("aliases", ())):
                if key in surface_by_key:
                    continue
                forms = ctx_by_key.get(key)
                case_forms = tuple(sorted({f for form in forms for f in (form, form.upper(), form.title())})) \
                    if forms else ()
                sidx = len(surfaces)
                surface_by_key[key] = sidx
                surfaces.append(SurfaceEntry(idx, key, case_forms))
                add_skill(key, sidx)
        self._skill_automaton.make_automaton()

        self.occupations: list[OccupationEntry] = []
        self.occupation_index: dict[str, int] = {}
        self.title_to_occupation: dict[str, int] = {}
        title_to_occupation = self.title_to_occupation
        self.max_title_words = 1
        for idx, rec in enumerate(data["occupations"]):
            occ = OccupationEntry(rec["id"], rec["name"], rec["sector"], tuple(rec.get("rel", ())))
            self.occupations.append(occ)
            self.occupation_index[occ.id] = idx
            for key in (norm(rec["name"]), *rec.get("titles", ())):
                # First owner wins: O*NET occupations come first (sorted by SOC code before "esco:").
                if key not in title_to_occupation:
                    title_to_occupation[key] = idx
                    self.max_title_words = max(self.max_title_words, key.count(" ") + 1)

    @classmethod
    def load(cls, path: str | Path | None = None) -> Taxonomy:
        """Load the shipped taxonomy (or the file at ``path``)."""
        if path is None:
            ref = resources.files("cvmatch.matcher") / "data" / DEFAULT_PATH
            raw = ref.read_bytes()
        else:
            raw = Path(path).read_bytes()
        return cls(json.loads(gzip.decompress(raw)))

    def skill_by_id(self, skill_id: str) -> SkillEntry | None:
        idx = self.skill_index.get(skill_id)
        return None if idx is None else self.skills[idx]

    def lookup_skill(self, label: str) -> SkillEntry | None:
        """Resolve a free-text skill name ("k8s", "MS Excel") to a taxonomy skill."""
        idx = self.surface_by_key.get(norm(label))
        return None if idx is None else self.skills[self.surfaces[idx].skill]

    def occupation(self, occupation_id: str | None) -> OccupationEntry | None:
        if occupation_id is None:
            return None
        idx = self.occupation_index.get(occupation_id)
        return None if idx is None else self.occupations[idx]

    def iter_skill_hits(self, folded: str) -> list[tuple[int, int, int]]:
        """All (start, end, surface index) hits of skill surfaces at word boundaries in folded text."""
        hits: list[tuple[int, int, int]] = []
        n = len(folded)
        for end_idx, sidx in self._skill_automaton.iter(folded):
            key = self.surfaces[sidx].key
            start = end_idx - len(key) + 1
            end = end_idx + 1
            if start > 0 and folded[start - 1].isalnum():
                continue
            if end < n and folded[end].isalnum():
                continue
            hits.append((start, end, sidx))
        return hits

    def iter_title_hits(self, folded: str) -> list[tuple[int, int, int]]:
        """Title hits (start, end, occupation index) in a short folded line, longest first per start.

        Titles are looked up by word n-grams in a dict rather than an automaton: they are only searched in
        short lines, and a dict of 80k titles builds in a few milliseconds where an automaton takes ~0.4 s.
        """
        words = [(m.start(), m.end()) for m in _TITLE_WORD.finditer(folded)]
        hits: list[tuple[int, int, int]] = []
        for i in range(len(words)):
            for j in range(min(len(words), i + self.max_title_words), i, -1):
                start, end = words[i][0], words[j - 1][1]
                key = " ".join(folded[a:b] for a, b in words[i:j])
                oidx = self.title_to_occupation.get(key)
                if oidx is not None:
                    hits.append((start, end, oidx))
                    break
        return hits
