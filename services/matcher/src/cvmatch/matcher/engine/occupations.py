"""Occupation profiles: which O*NET occupation a text reads like, from the words of its work history.

Each O*NET occupation has a term profile compiled by tools/build_taxonomy.py from its title, alternate
titles, description, tasks and technology names (TF-IDF over occupations, pruned to its strongest terms).
The taxonomy ships them as an inverted index, term -> [(occupation, weight)], so the cosine of a CV to
every occupation is one pass over the CV's distinct terms rather than a loop over ~900 occupations.

The signal that scoring uses is relative: how close a CV is to the job's occupation compared with the
occupation it is closest to ("is this CV more like a chef's or an accountant's?").  A ratio needs no
calibration against CV length or vocabulary, and the CV's vector norm cancels out of it.
"""

from __future__ import annotations

import bisect
import itertools
import math
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from spacy.lang.en.stop_words import STOP_WORDS

# Words as the profiles count them: lowercase runs starting with a letter ("c++", "c#" and "sql" alike).
# No stemming: the profiles and the CVs are both written in recruiting English, and a measured plural
# stemmer did not help (tools/bench_ranking.py); the evidence shown is then the CV's own words.
_TERM = re.compile(r"[a-z][a-z0-9+#]*")
# What may stand between the two words of a phrase: spaces or tabs, or one hyphen ("month-end").
_PHRASE_GAP = re.compile(r"[ \t]+|[ \t]*-[ \t]*")
# How many of the CV's terms a result quotes as evidence of its occupational fit.
EVIDENCE_TERMS = 6
# How many of a CV's closest occupations its profile keeps (the closest is the fit's reference point).
CLOSEST_KEPT = 3
# The compiled file stores profile weights and idf as integers: the real number times this.
WEIGHT_SCALE = 10_000


def profile_terms(text: str) -> list[str]:
    """Terms of ``text``: its content words, then its phrases of two adjacent content words.

    Phrases ("general ledger", "lesson plans", "staff accountant") say far more about an occupation than
    their words apart; with them the fit ranked clearly better on the development set.  A phrase is two
    words with only spaces or a hyphen between them, so every phrase is written as such in the text (and
    can be quoted as evidence).  tools/build_taxonomy.py builds the profiles with this function, so both
    sides count the same terms.
    """
    words: list[str] = []
    pairs: list[str] = []
    prev: re.Match[str] | None = None
    low = text.lower()
    for m in _TERM.finditer(low):
        t = m.group()
        if len(t) < 2 or t in STOP_WORDS:
            prev = None
            continue
        words.append(t)
        if prev is not None and _PHRASE_GAP.fullmatch(low, prev.end(), m.start()):
            pairs.append(f"{prev.group()} {t}")
        prev = m
    return words + pairs


def term_weight(tf: float, idf: float) -> float:
    """Sublinear term frequency times rarity: the 20th mention of a word adds little (and stuffing less)."""
    return ((1.0 + math.log(tf)) if tf >= 1.0 else tf) * idf


@dataclass(frozen=True, slots=True)
class OccupationMatch:
    """How close a text is to one occupation: cosine 0-1 over the profile vocabulary."""

    occupation: int  # index into Taxonomy.occupations
    cosine: float


class OccupationProfiles:
    """The compiled occupation term profiles (read-only after load, shared across threads).

    The build writes the inverted index as flat integer arrays: per term (sorted) its idf and its number
    of postings; per posting (grouped by term) the profile index and the weight, both numbers scaled by
    WEIGHT_SCALE.  Integers parse several times faster than floats and flat arrays need no per-term
    objects, so ~140k postings load in a few hundredths of a second.
    """

    def __init__(self, data: dict[str, Any] | None) -> None:
        data = data or {}
        self.occupations: list[int] = list(data.get("occupations", ()))
        self._local: dict[int, int] = {occ: i for i, occ in enumerate(self.occupations)}
        self._terms: list[str] = list(data.get("terms", ()))
        self._term_index: dict[str, int] = dict(zip(self._terms, range(len(self._terms)), strict=True))
        # The idf scale cancels out of every unit vector, so the scaled integers are used as they are.
        self._idf: list[int] = list(data.get("idf", ()))
        self._ends: list[int] = list(itertools.accumulate(data.get("counts", ())))
        self._starts: list[int] = [0, *self._ends[:-1]] if self._ends else []
        self._post_occ: list[int] = list(data.get("postings_occupation", ()))
        self._post_weight: list[int] = list(data.get("postings_weight", ()))
        if not len(self._terms) == len(self._idf) == len(self._ends):
            raise ValueError("occupation profiles: terms, idf and counts differ in length")
        if len(self._post_occ) != len(self._post_weight) or (self._ends and self._ends[-1] != len(self._post_occ)):
            raise ValueError("occupation profiles: postings do not match their counts")
        self._forward: dict[int, dict[str, float]] = {}
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        return bool(self.occupations)

    def __contains__(self, occupation: int) -> bool:
        """Whether the occupation (index into Taxonomy.occupations) has a profile."""
        return occupation in self._local

    def vector(self, parts: Iterable[tuple[str, float]]) -> dict[str, float]:
        """Unit-length term vector of weighted text parts (text, weight), over the profile vocabulary only.

        Identical lines count once, as for skills: a pasted line is one piece of evidence however often
        it is repeated.  Terms are sorted so float sums over the vector are the same in every process.
        """
        tf: dict[str, float] = {}
        index = self._term_index
        for text, weight in parts:
            # dict.fromkeys: the distinct lines, in order.
            lines = dict.fromkeys(" ".join(line.split()) for line in text.lower().split("\n"))
            for t in profile_terms("\n".join(lines)):
                if t in index:
                    tf[t] = tf.get(t, 0.0) + weight
        idf = self._idf
        vec = {t: term_weight(x, idf[index[t]]) for t, x in sorted(tf.items())}
        norm = math.sqrt(sum(x * x for x in vec.values()))
        return {t: x / norm for t, x in vec.items()} if norm > 0 else {}

    def cosines(self, vec: dict[str, float]) -> list[float]:
        """Cosine of a unit vector to every profile (index = local profile index): one pass over its terms."""
        scores = [0.0] * len(self.occupations)
        index, starts, ends = self._term_index, self._starts, self._ends
        post_occ, post_weight = self._post_occ, self._post_weight
        for term, w in vec.items():
            k = index.get(term)
            if k is None:
                continue
            for j in range(starts[k], ends[k]):
                scores[post_occ[j]] += w * post_weight[j]
        return [x / WEIGHT_SCALE for x in scores]

    def closest(self, vec: dict[str, float], n: int = CLOSEST_KEPT) -> list[OccupationMatch]:
        """The ``n`` occupations the vector is closest to, best first (ties by taxonomy order)."""
        scores = self.cosines(vec)
        order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))[:n]
        return [OccupationMatch(self.occupations[i], scores[i]) for i in order if scores[i] > 0]

    def profile(self, occupation: int) -> dict[str, float]:
        """One occupation's profile, term -> weight (built from the inverted index once, then cached)."""
        cached = self._forward.get(occupation)
        if cached is not None:
            return cached
        local = self._local.get(occupation, -1)
        out: dict[str, float] = {}
        if local >= 0:
            for j, o in enumerate(self._post_occ):
                if o == local:
                    # The posting's term: the first term whose postings end after j.
                    out[self._terms[bisect.bisect_right(self._ends, j)]] = self._post_weight[j] / WEIGHT_SCALE
        with self._lock:
            self._forward[occupation] = out
        return out

    def fit_terms(self, vec: dict[str, float], occupation: int) -> tuple[float, list[tuple[str, float]]]:
        """Cosine of ``vec`` to one occupation and its terms by contribution (largest first, then by term)."""
        prof = self.profile(occupation)
        contrib = [(t, w * prof[t]) for t, w in vec.items() if t in prof]
        contrib.sort(key=lambda c: (-c[1], c[0]))
        return sum(c for _t, c in contrib), contrib


__all__ = ["EVIDENCE_TERMS", "WEIGHT_SCALE", "OccupationMatch", "OccupationProfiles", "profile_terms", "term_weight"]
