"""Ranking and skill-extraction benchmarks of the matching engine on the shared development data.

Usage (from the repository root)::

    .venv/bin/python tools/bench_ranking.py --data ../shared/data

1. Ranking (livecareer_dev, 765 real resumes): for each clean occupational category a job description is
   written from O*NET (title as a recruiter would write it, description, core tasks, hot technologies);
   every resume is ranked; a resume is relevant when its category is the job's.  The engine sees only the
   job text and each resume's text, one pair at a time: no category, no pool statistics.  MAP, NDCG@10
   and P@10 of cvmatch beside TF-IDF cosine and BM25 computed in the same run.
2. Skill extraction: span precision / recall on dotin_resume_ner train (Tech Tools + Job Specific Skills)
   and SkillSpan dev (skill + knowledge spans), beside a plain exact-match dictionary baseline (the same
   taxonomy labels, every hit accepted, no context rules).

Development data is read from --data only; nothing from it is written anywhere.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import math
import re
import sys
import time
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from pathlib import Path
from typing import cast

from rank_bm25 import BM25Okapi
from spacy.lang.en.stop_words import STOP_WORDS

from cvmatch.matcher.engine import CandidateProfile, CandidateTooSparse, MatchEngine
from cvmatch.matcher.engine.taxonomy import fold

# livecareer category -> O*NET-SOC occupation the job description is written from.  Loose buckets
# (ADVOCATE, ARTS, APPAREL, BPO, DIGITAL-MEDIA, AGRICULTURE, AUTOMOBILE, ENGINEERING, HEALTHCARE) are left out.
CATEGORY_OCCUPATION = {
    "ACCOUNTANT": "13-2011.00",
    "AVIATION": "49-3011.00",
    "BANKING": "13-2072.00",
    "BUSINESS-DEVELOPMENT": "11-2022.00",
    "CHEF": "35-1011.00",
    "CONSTRUCTION": "11-9021.00",
    "CONSULTANT": "13-1111.00",
    "DESIGNER": "27-1025.00",
    "FINANCE": "11-3031.00",
    "FITNESS": "39-9031.00",
    "HR": "13-1071.00",
    "INFORMATION-TECHNOLOGY": "15-1232.00",
    "PUBLIC-RELATIONS": "27-3031.00",
    "SALES": "41-2031.00",
    "TEACHER": "25-2021.00",
}
_TOKEN = re.compile(r"[a-z][a-z0-9+#.]*[a-z0-9+#]|[a-z]")


def tokens(text: str) -> list[str]:
    return [t for t in _TOKEN.findall(text.lower()) if t not in STOP_WORDS and len(t) > 1]


def read_tsv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", errors="replace") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def _singular(words: str) -> str:
    return words[:-1] if words.endswith("s") and not words.endswith("ss") else words


def job_title(onet_title: str) -> str:
    """The title a recruiter would write for an O*NET occupation title.

    "Accountants and Auditors" -> "Accountant and Auditor"; "Elementary School Teachers, Except Special
    Education" -> "Elementary School Teacher" (the qualifier is O*NET's classification note, not a title).
    """
    title = re.sub(r"\s*\([^)]*\)", "", onet_title.split(", Except")[0]).strip()
    return " and ".join(_singular(part.strip()) for part in title.split(" and "))


def onet_job_descriptions(onet: Path) -> dict[str, str]:
    occ = {r["O*NET-SOC Code"]: r for r in read_tsv(onet / "Occupation Data.txt")}
    tasks: dict[str, list[str]] = defaultdict(list)
    for r in read_tsv(onet / "Task Statements.txt"):
        if r["Task Type"] == "Core":
            tasks[r["O*NET-SOC Code"]].append(r["Task"])
    tech: dict[str, list[str]] = defaultdict(list)
    for r in read_tsv(onet / "Technology Skills.txt"):
        if r["Hot Technology"] == "Y":
            tech[r["O*NET-SOC Code"]].append(r["Example"])
    jds: dict[str, str] = {}
    for cat, code in CATEGORY_OCCUPATION.items():
        lines = [job_title(occ[code]["Title"]), "", "Job description", occ[code]["Description"], "", "Responsibilities"]
        lines += [f"- {t}" for t in tasks[code][:10]]
        lines += ["", "Requirements"]
        if tech[code]:
            lines.append("- Experience with " + ", ".join(tech[code][:12]))
        jds[cat] = "\n".join(lines)
    return jds


def average_precision(ranked_rel: list[bool]) -> float:
    hits, total = 0, 0.0
    for i, rel in enumerate(ranked_rel, 1):
        if rel:
            hits += 1
            total += hits / i
    n_rel = sum(ranked_rel)
    return total / n_rel if n_rel else 0.0


def ndcg_at(ranked_rel: list[bool], k: int) -> float:
    dcg = sum(1.0 / math.log2(i + 1) for i, rel in enumerate(ranked_rel[:k], 1) if rel)
    ideal = sum(1.0 / math.log2(i + 1) for i in range(1, min(k, sum(ranked_rel)) + 1))
    return dcg / ideal if ideal else 0.0


def metrics(ranked_ids: list[str], relevant: set[str]) -> tuple[float, float, float]:
    rel = [i in relevant for i in ranked_ids]
    return average_precision(rel), ndcg_at(rel, 10), sum(rel[:10]) / 10.0


class TfIdf:
    """Plain TF-IDF (log tf, smoothed idf, L2 norm) cosine, implemented here to keep sklearn out."""

    def __init__(self, docs: list[list[str]]) -> None:
        df: Counter[str] = Counter()
        for d in docs:
            df.update(set(d))
        n = len(docs)
        self.idf = {t: math.log((1 + n) / (1 + c)) + 1.0 for t, c in df.items()}
        self.vectors = [self.vector(d) for d in docs]

    def vector(self, toks: list[str]) -> dict[str, float]:
        tf = Counter(toks)
        v = {t: (1.0 + math.log(c)) * self.idf.get(t, 0.0) for t, c in tf.items()}
        norm = math.sqrt(sum(x * x for x in v.values())) or 1.0
        return {t: x / norm for t, x in v.items()}

    def scores(self, query: list[str]) -> list[float]:
        q = self.vector(query)
        return [sum(w * d.get(t, 0.0) for t, w in q.items()) for d in self.vectors]


def bench_ranking(data: Path, engine: MatchEngine) -> None:
    resumes = [json.loads(line) for line in gzip.open(data / "livecareer_dev" / "resumes_dev.jsonl.gz", "rt")]
    resumes.sort(key=lambda r: r["id"])
    jds = onet_job_descriptions(data / "onet")
    ids = [r["id"] for r in resumes]
    doc_tokens = [tokens(r["text"]) for r in resumes]
    tfidf = TfIdf(doc_tokens)
    bm25 = BM25Okapi(doc_tokens)

    t0 = time.perf_counter()
    cands: list[CandidateProfile | None] = []
    sparse = 0
    for r in resumes:
        try:
            cands.append(engine.parse_candidate(r["text"]))
        except CandidateTooSparse:
            cands.append(None)
            sparse += 1
    parse_s = time.perf_counter() - t0

    rows: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    per_cat: list[tuple[str, float, float, float]] = []
    for cat, jd in jds.items():
        relevant = {r["id"] for r in resumes if r["category"] == cat}
        q = tokens(jd)
        for name, scores in (("tfidf", tfidf.scores(q)), ("bm25", list(bm25.get_scores(q)))):
            order = sorted(range(len(ids)), key=lambda i: (-scores[i], ids[i]))
            rows[name].append(metrics([ids[i] for i in order], relevant))
        job = engine.parse_job(jd)
        cv_scores = [engine.score(job, c).overall_score if c is not None else -1.0 for c in cands]
        order = sorted(range(len(ids)), key=lambda i: (-cv_scores[i], ids[i]))
        m = metrics([ids[i] for i in order], relevant)
        rows["cvmatch"].append(m)
        per_cat.append((cat, m[0], rows["tfidf"][-1][0], rows["bm25"][-1][0]))

    print(f"\n== Ranking: livecareer_dev, {len(resumes)} resumes, {len(jds)} O*NET job descriptions "
          f"({sparse} CVs too sparse to parse; cvmatch parse {parse_s:.1f} s)")
    print(f"{'category':24s} {'cvmatch AP':>10s} {'tfidf AP':>9s} {'bm25 AP':>8s}")
    for cat, a, b, c in per_cat:
        print(f"{cat:24s} {a:10.3f} {b:9.3f} {c:8.3f}")
    print(f"\n{'method':10s} {'MAP':>6s} {'NDCG@10':>8s} {'P@10':>6s}")
    means = {}
    for name in ("cvmatch", "tfidf", "bm25"):
        vals = rows[name]
        means[name] = tuple(sum(v[i] for v in vals) / len(vals) for i in range(3))
        print(f"{name:10s} {means[name][0]:6.3f} {means[name][1]:8.3f} {means[name][2]:6.3f}")
    ratio = means["cvmatch"][0] / means["tfidf"][0]
    print(f"cvmatch MAP / TF-IDF MAP = {ratio:.2f} (target >= 1.5)")


# -- skill extraction ----------------------------------------------------------------------------------------

def dotin_docs(folder: Path, types: set[str]) -> list[tuple[str, list[tuple[int, int]]]]:
    docs = []
    for path in sorted(folder.glob("*.xml"), key=lambda p: p.name):
        try:
            root = ET.parse(path).getroot()
        except ET.ParseError:
            continue
        parts: list[str] = []
        spans: list[tuple[int, int]] = []
        pos = 0

        def emit(s: str | None, parts: list[str] = parts) -> None:
            nonlocal pos
            if s:
                parts.append(s)
                pos += len(s)

        emit(root.text)
        for el in root:
            start = pos
            emit("".join(el.itertext()))
            if el.get("type") in types and pos > start:
                spans.append((start, pos))
            emit(el.tail)
        docs.append(("".join(parts), spans))
    return docs


def skillspan_docs(path: Path) -> list[tuple[str, list[tuple[int, int]]]]:
    by_posting: dict[tuple[str, int], list[dict[str, object]]] = defaultdict(list)
    for line in path.open(encoding="utf-8"):
        r = json.loads(line)
        by_posting[(str(r["source"]), int(r["idx"]))].append(r)
    docs = []
    for key in sorted(by_posting):
        text_parts: list[str] = []
        spans: list[tuple[int, int]] = []
        pos = 0
        for sent in by_posting[key]:
            toks = [str(t) for t in sent["tokens"]]  # type: ignore[attr-defined]
            offs = []
            for t in toks:
                offs.append((pos, pos + len(t)))
                text_parts.append(t + " ")
                pos += len(t) + 1
            text_parts[-1] = text_parts[-1][:-1] + "\n" if toks else ""
            for tags in (sent["tags_skill"], sent["tags_knowledge"]):
                cur: list[int] | None = None
                tag: str
                for i, tag in enumerate(cast(list[str], tags)):
                    if tag.startswith("B"):
                        if cur:
                            spans.append((offs[cur[0]][0], offs[cur[1]][1]))
                        cur = [i, i]
                    elif tag.startswith("I") and cur is not None:
                        cur[1] = i
                    else:
                        if cur:
                            spans.append((offs[cur[0]][0], offs[cur[1]][1]))
                        cur = None
                if cur:
                    spans.append((offs[cur[0]][0], offs[cur[1]][1]))
        docs.append(("".join(text_parts), spans))
    return docs


def dictionary_baseline(engine: MatchEngine, text: str) -> list[tuple[int, int]]:
    """Every taxonomy label hit, longest-first, no context rules: the plain dictionary matcher."""
    hits = sorted(engine.taxonomy.iter_skill_hits(fold(text)), key=lambda h: (h[0], -(h[1] - h[0])))
    out: list[tuple[int, int]] = []
    last = -1
    for s, e, _ in hits:
        if s >= last:
            out.append((s, e))
            last = e
    return out


def span_prf(docs: list[tuple[str, list[tuple[int, int]]]], predict: object) -> dict[str, float]:
    tp_o = fp_o = fn_o = tp_e = 0
    n_pred = n_gold = 0
    for text, gold in docs:
        pred = predict(text)  # type: ignore[operator]
        n_pred += len(pred)
        n_gold += len(gold)
        gold_set = set(gold)
        tp_e += sum(1 for p in pred if p in gold_set)
        for ps, pe in pred:
            if any(ps < ge and pe > gs for gs, ge in gold):
                tp_o += 1
            else:
                fp_o += 1
        fn_o += sum(1 for gs, ge in gold if not any(ps < ge and pe > gs for ps, pe in pred))
    p_o = tp_o / max(1, tp_o + fp_o)
    r_o = (n_gold - fn_o) / max(1, n_gold)
    p_e = tp_e / max(1, n_pred)
    r_e = tp_e / max(1, n_gold)
    f = lambda p, r: 2 * p * r / (p + r) if p + r else 0.0  # noqa: E731
    return {"P_overlap": p_o, "R_overlap": r_o, "F1_overlap": f(p_o, r_o), "P_exact": p_e, "R_exact": r_e,
            "F1_exact": f(p_e, r_e), "pred": n_pred, "gold": n_gold}


def bench_extraction(data: Path, engine: MatchEngine) -> None:
    sets = {
        "dotin train (Tech Tools + Job Specific Skills)": dotin_docs(
            data / "dotin_resume_ner" / "train_310cvs", {"Tech Tools", "Job Specific Skills"}),
        "skillspan dev (skill + knowledge)": skillspan_docs(data / "skillspan" / "json" / "dev.json"),
    }

    def cvmatch_spans(text: str) -> list[tuple[int, int]]:
        return [(s, e) for s, e, _id, _name in engine.find_skills(text)]

    for name, docs in sets.items():
        print(f"\n== Skill extraction: {name}: {len(docs)} documents, {sum(len(g) for _, g in docs)} gold spans")
        print(f"{'method':12s} {'P_ovl':>6s} {'R_ovl':>6s} {'F1_ovl':>6s} {'P_ex':>6s} {'R_ex':>6s} {'F1_ex':>6s} "
              f"{'pred':>6s}")
        for method, fn in (("cvmatch", cvmatch_spans), ("dictionary", lambda t: dictionary_baseline(engine, t))):
            m = span_prf(docs, fn)
            print(f"{method:12s} {m['P_overlap']:6.3f} {m['R_overlap']:6.3f} {m['F1_overlap']:6.3f} "
                  f"{m['P_exact']:6.3f} {m['R_exact']:6.3f} {m['F1_exact']:6.3f} {m['pred']:6.0f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="cvmatch ranking and extraction benchmarks")
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--skip-extraction", action="store_true")
    args = ap.parse_args(argv)
    engine = MatchEngine.load()
    print(f"engine {engine.version}", file=sys.stderr)
    bench_ranking(args.data, engine)
    if not args.skip_extraction:
        bench_extraction(args.data, engine)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
