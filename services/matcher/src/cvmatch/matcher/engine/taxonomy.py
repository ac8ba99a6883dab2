"""The compiled skills / occupations taxonomy and the dictionary matchers over it (read-only after load)."""

from __future__ import annotations

import gzip
import json
import math
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, overload

from .occupations import OccupationProfiles

DEFAULT_PATH = "taxonomy.json.gz"
# Skill matcher tokens: runs of letters/digits (regex [^\W_] is str.isalnum()) and single other characters.
_TOKEN = re.compile(r"[^\W_]+|\S")
_TITLE_WORD = re.compile(r"[a-z0-9][a-z0-9&+'/.-]*[a-z0-9+]|[a-z0-9]")
# Tools sharing an O*NET commodity class are "related" only when the class is specific enough; "Analytical
# or scientific software" holds thousands of unrelated products.
MAX_RELATED_CATEGORY = 80
# Rarity weight of a skill that O*NET does not list per occupation (ESCO skills, curated entries): about that
# of a tool listed by a few dozen occupations.
DEFAULT_SKILL_WEIGHT = 0.7
MIN_SKILL_WEIGHT = 0.2


def rarity_weight(listed_by: int, n_occupations: int) -> float:
    """IDF-like weight 0.2-1.0 of a skill listed by ``listed_by`` of ``n_occupations`` O*NET occupations.

    Excel (859 of 923) ~0.21, QuickBooks (84) ~0.48, AutoCAD Civil 3D (30) ~0.60: a tool every occupation
    lists says little about fit for this one.  Unknown counts get :data:`DEFAULT_SKILL_WEIGHT`.
    """
    if listed_by <= 0 or n_occupations <= 1:
        return DEFAULT_SKILL_WEIGHT
    idf = math.log(n_occupations / min(listed_by, n_occupations)) / math.log(n_occupations)
    return round(MIN_SKILL_WEIGHT + (1.0 - MIN_SKILL_WEIGHT) * idf, 4)


_TITLE_STOP = frozenset(
    {
        "and",
        "of",
        "the",
        "in",
        "for",
        "a",
        "an",
        "to",
        "&",
        "senior",
        "junior",
        "sr",
        "jr",
        "i",
        "ii",
        "iii",
        "iv",
        "level",
        "entry",
        "staff",
        "principal",
        "head",
        "chief",
        "assistant",
        "associate",
        "lead",
        "trainee",
        "apprentice",
        "intern",
    }
)


def singular_title(title: str) -> str:
    """ "accountants and auditors" -> "accountant and auditor" (each part's last word made singular)."""
    return " and ".join(_singular(p) for p in title.split(", except")[0].split(" and "))


def _singular(word: str) -> str:
    if len(word) > 4 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def _title_stem(word: str) -> str:
    # Light stemming so title words meet across forms: "Finance" / "Financial", "Communications" /
    # "Communication".  Titles are short and this vocabulary is small; a full stemmer is not needed.
    word = _singular(word)
    if len(word) > 6 and word.endswith("ial"):
        word = word[:-3]
    elif len(word) > 6 and word.endswith("al"):
        word = word[:-2]
    if len(word) > 5 and word.endswith("e"):
        word = word[:-1]
    return word


# The first word as written: the one reading of a span that is not inflected.
_AS_WRITTEN = ("",)


def _verb_bases(word: str) -> tuple[str, ...]:
    """Base forms of a folded "-ing" word ("managing" -> "manage", "planning" -> "plan")."""
    if not word.endswith("ing") or not word.isalpha():
        return ()
    stem = word[:-3]
    return (stem, stem + "e", stem[:-1]) if stem[-1] == stem[-2] else (stem, stem + "e")


def _singulars(key: str) -> tuple[str, ...]:
    """Singular readings of a folded span ending in "s" ("databases", "libraries", "approaches")."""
    if key[-2] in "s'" or not key[-2].isalpha():
        return ()
    if key.endswith("ies"):
        return (key[:-1], key[:-3] + "y")
    if key.endswith(("ches", "shes", "xes", "sses")):
        return (key[:-1], key[:-2])
    return (key[:-1],)


def title_words(title: str) -> list[str]:
    """Content words of a job title, stemmed, in order ("Senior Staff Accountants" -> ["accountant"]).

    tools/build_taxonomy.py imports this to count title-word rarity, so both sides agree.
    """
    return [_title_stem(w) for w in re.split(r"[^a-z0-9+#]+", title.lower()) if w and w not in _TITLE_STOP]


def surface_prefixes(key: str) -> list[str]:
    """Leading parts of a surface that end at one of its token ends ("project" of "project management")."""
    return [key[: m.end()] for m in _TOKEN.finditer(key) if m.end() < len(key)]


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
    weight: float = DEFAULT_SKILL_WEIGHT  # rarity weight, see rarity_weight()


@dataclass(frozen=True, slots=True)
class SurfaceEntry:
    """One matchable surface form (a key of the surface dict)."""

    skill: int
    key: str
    # Non-empty: a word that is also ordinary English; it needs a skill context and one of these spellings.
    case_forms: tuple[str, ...]


class SurfaceTable(Sequence[SurfaceEntry]):
    """All surfaces as parallel lists; indexing builds the :class:`SurfaceEntry` on demand."""

    __slots__ = ("_case_forms", "_keys", "_skills")

    def __init__(self, keys: list[str], skills: list[int], case_forms: dict[int, tuple[str, ...]]) -> None:
        self._keys = keys
        self._skills = skills
        self._case_forms = case_forms

    def __len__(self) -> int:
        return len(self._keys)

    def skill_of(self, index: int) -> int:
        return self._skills[index]

    def case_forms_of(self, index: int) -> tuple[str, ...]:
        return self._case_forms.get(index, ())

    @overload
    def __getitem__(self, index: int) -> SurfaceEntry: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[SurfaceEntry]: ...

    def __getitem__(self, index: int | slice) -> SurfaceEntry | Sequence[SurfaceEntry]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return SurfaceEntry(self._skills[index], self._keys[index], self._case_forms.get(index, ()))


@dataclass(frozen=True, slots=True)
class OccupationEntry:
    """One occupation (O*NET SOC code or ESCO code) with its sector."""

    id: str
    name: str
    sector: str
    related: tuple[str, ...]


class Taxonomy:
    """Skills, occupations and the matchers that find them in text; immutable and safe to share across threads."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.digest: str = str(data.get("digest", ""))
        self.skills: list[SkillEntry] = []
        self.skill_index: dict[str, int] = {}
        category_sizes: dict[int, int] = {}
        n_occ = int(data.get("onet_occupations_with_tech", 0))
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
                weight=rarity_weight(int(rec.get("occ", 0)), n_occ),
            )
            self.skills.append(entry)
            self.skill_index[entry.id] = idx
        # The build writes surfaces, prefixes and titles in the shapes used here, so loading is a few
        # C-level dict constructions rather than Python loops over ~57k surfaces and ~85k titles.
        keys: list[str] = data["surface_keys"]
        # The build writes each key once; reversed so that, were a key repeated, its first owner would win.
        self.surface_by_key: dict[str, int] = dict(zip(reversed(keys), range(len(keys) - 1, -1, -1), strict=True))
        case_forms = {int(i): tuple(forms) for i, forms in data.get("surface_case_forms", {}).items()}
        self.surfaces: SurfaceTable = SurfaceTable(keys, data["surface_skill"], case_forms)
        # One probe dict for the matcher: span -> (surface index + 1) * 2, + 1 if the span also begins a
        # longer surface ("project" of "project management"); see iter_skill_hits.
        probe = {key: (sidx + 1) * 2 for key, sidx in self.surface_by_key.items()}
        for prefix in data.get("surface_prefixes", ()):
            probe[prefix] = probe.get(prefix, 0) | 1
        self._probe = probe

        self.occupations: list[OccupationEntry] = [
            OccupationEntry(rec["id"], rec["name"], rec["sector"], tuple(rec.get("rel", ())))
            for rec in data["occupations"]
        ]
        self.occupation_index: dict[str, int] = {o.id: i for i, o in enumerate(self.occupations)}
        # (title, occupation) pairs in priority order; reversed so that the first owner wins in the dict.
        self._titles: list[str] = data["titles"]
        self._title_occupation: list[int] = data["title_occupation"]
        self.title_to_occupation: dict[str, int] = dict(
            zip(reversed(self._titles), reversed(self._title_occupation), strict=True)
        )
        self.max_title_words = max((t.count(" ") + 1 for t in self.title_to_occupation), default=1)
        n_occupations = max(2, len(self.occupations))
        self._title_idf: dict[str, float] = {
            w: math.log(n_occupations / n) for w, n in data.get("title_word_df", {}).items()
        }
        self._rare_title_idf = math.log(n_occupations)
        self.generic_titles: frozenset[str] = frozenset(data.get("generic_titles", ()))
        self.title_heads: frozenset[str] = frozenset(data.get("title_heads", ()))
        self._title_index: dict[int, dict[str, tuple[tuple[str, ...], ...]]] = {}
        self._title_owners: dict[str, tuple[int, ...]] | None = None
        self._title_lock = threading.Lock()
        # Term profiles of the O*NET occupations (empty in a taxonomy built without them).
        self.profiles = OccupationProfiles(data.get("occupation_profiles"))

    @classmethod
    def load(cls, path: str | Path | None = None) -> Taxonomy:
        """Load the shipped taxonomy (or the file at ``path``)."""
        if path is None:
            ref = resources.files("cvmatch.matcher") / "data" / DEFAULT_PATH
            raw = ref.read_bytes()
        else:
            raw = Path(path).read_bytes()
        return cls(json.loads(gzip.decompress(raw)))

    def surface_skill(self, sidx: int) -> int:
        """Index into :attr:`skills` of surface ``sidx`` (hot path: no SurfaceEntry is built)."""
        return self.surfaces.skill_of(sidx)

    def surface_case_forms(self, sidx: int) -> tuple[str, ...]:
        """Accepted spellings of a context-only surface, or () for a surface that always counts."""
        return self.surfaces.case_forms_of(sidx)

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

    def iter_skill_hits(self, folded: str, *, variants: bool = False) -> list[tuple[int, int, int]]:
        """All (start, end, surface index) hits of skill surfaces at word boundaries in folded text.

        A hit starts where no letter or digit precedes it and ends where none follows it (so "c" is found
        in "C++," and "java" is not found in "javascript").  Spans from each start are probed in one dict
        that also knows which spans begin a longer surface, so the scan stops at the first span that is
        neither: about one or two probes per word, and nothing slow to build at load time (an Aho-Corasick
        automaton over the same keys took a fifth of a second to build).

        With ``variants`` the written forms that the labels lack are found too: a run of spaces (or a
        no-break space) within a line reads as one space, a hyphen inside a word group reads as a space
        ("spring-boot", "amazon-web-services" are "spring boot", "amazon web services": Stack Overflow tags
        and compound adjectives write them so), the plural last word of a word group reads as its singular
        ("web applications", "relational databases") and an "-ing" first word as its verb ("managing
        budgets", "leading teams") when only that form is a label.  Inflections are read in word groups
        only: a single word's plural or gerund is too often another concept ("communications",
        "scholars" beside Google Scholar).  Without ``variants`` the scan is the plain exact-match
        dictionary (the benchmarks' baseline).
        """
        if variants:
            return self._skill_hits_with_variants(folded)
        hits: list[tuple[int, int, int]] = []
        append = hits.append
        lookup = self._probe.get
        # Tokens: letter/digit runs and single other non-space characters.  Surfaces end with a token and
        # never start or end with a space, so token ends are the only possible hit ends.
        spans = [m.span() for m in _TOKEN.finditer(folded)]
        n = len(spans)
        for t in range(n):
            start = spans[t][0]
            if start and folded[start - 1].isalnum() and not folded[start].isalnum():
                continue  # the second "+" of "c++" cannot start a hit
            u = t
            while True:
                end = spans[u][1]
                code = lookup(folded[start:end], 0)
                if code >= 2:
                    append((start, end, (code >> 1) - 1))
                u += 1
                if not code & 1 or u == n:
                    break
        return hits

    def _skill_hits_with_variants(self, folded: str) -> list[tuple[int, int, int]]:
        """:meth:`iter_skill_hits` with spelling variants (the same scan, a few more probes)."""
        hits: list[tuple[int, int, int]] = []
        append = hits.append
        lookup = self._probe.get
        spans = [m.span() for m in _TOKEN.finditer(folded)]
        n = len(spans)
        for t in range(n):
            start, cut = spans[t]
            if start and folded[start - 1].isalnum() and not folded[start].isalnum():
                continue
            heads: tuple[str, ...] = _AS_WRITTEN
            if cut - start > 5 and folded[cut - 1] == "g":
                heads += _verb_bases(folded[start:cut])
            for head in heads:
                u = t
                # Whether the span so far crosses an in-word hyphen, or spacing other than one space
                # ("Political  Science", as text from PDFs has): it is then also probed as the labels are
                # written, words joined by single spaces.
                hyphen = spacing = False
                while True:
                    end = spans[u][1]
                    key = head + folded[cut:end] if head else folded[start:end]
                    code = lookup(key, 0)
                    more = code & 1
                    if hyphen or spacing:
                        if spacing:
                            key = " ".join(key.split())
                        if hyphen:
                            key = key.replace("-", " ")
                        loose = lookup(key, 0)
                        more |= loose & 1
                        if code < 2:
                            code = loose
                    if code >= 2 and (not head or u > t):
                        append((start, end, (code >> 1) - 1))
                    elif key[-1] == "s" and " " in key:
                        for singular in _singulars(key):
                            code = lookup(singular, 0)
                            if code >= 2:
                                append((start, end, (code >> 1) - 1))
                                break
                    u += 1
                    if not more or u == n:
                        break
                    nxt = spans[u][0]
                    if nxt == end:
                        # "spring-boot": step over the hyphen as if it were the space of "spring boot".
                        if (
                            folded[end] == "-"
                            and u + 1 < n
                            and spans[u + 1][0] == end + 1
                            and folded[end - 1].isalnum()
                            and folded[end + 1].isalnum()
                        ):
                            hyphen = True
                            u += 1
                    elif nxt - end > 1 or folded[end] != " ":
                        if "\n" in folded[end:nxt]:
                            break  # a label never runs over a line break
                        spacing = True
        return hits

    def title_word_idf(self, word: str) -> float:
        """Rarity of a title word across occupations: "manager" ~0.3, "accountant" ~5.3 (natural log)."""
        return self._title_idf.get(word, self._rare_title_idf)

    def titles_by_word(self, occupation_id: str) -> dict[str, tuple[tuple[str, ...], ...]]:
        """The occupation's titles as word sets, indexed by each word they contain; cached per occupation."""
        idx = self.occupation_index.get(occupation_id)
        if idx is None:
            return {}
        cached = self._title_index.get(idx)
        if cached is not None:
            return cached
        groups: dict[str, list[tuple[str, ...]]] = {}
        for title in [t for t, o in zip(self._titles, self._title_occupation, strict=True) if o == idx]:
            words = tuple(title_words(title))
            for w in sorted(set(words)):
                groups.setdefault(w, []).append(words)
        index = {w: tuple(sets) for w, sets in sorted(groups.items())}
        with self._title_lock:
            self._title_index[idx] = index
        return index

    def title_owners(self, title: str) -> tuple[int, ...]:
        """Every occupation that lists ``title`` (as found by :meth:`iter_title_hits`), first owner first.

        :attr:`title_to_occupation` keeps only the first owner; "Sales Associate" is also a title of Retail
        Salespersons, which the text of a job ad can then choose.  Built on first use (~85k pairs).
        """
        owners = self._title_owners
        if owners is None:
            built: dict[str, list[int]] = {}
            for t, o in zip(self._titles, self._title_occupation, strict=True):
                lst = built.setdefault(t, [])
                if o not in lst:
                    lst.append(o)
            owners = {t: tuple(v) for t, v in built.items()}
            with self._title_lock:
                self._title_owners = owners
        return owners.get(" ".join(_TITLE_WORD.findall(fold(title))), ())

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
