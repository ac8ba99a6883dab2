"""Work-history fit: occupation term profiles, the job's occupation, and how the fit enters the role match.

Pure unit tests: the CVs and job descriptions are written here; the taxonomy is the shipped one or a tiny one
built in the test.
"""

from __future__ import annotations

import json
import math
from datetime import date

import pytest

from cvmatch.matcher.engine import CandidateProfile, JobProfile, MatchEngine
from cvmatch.matcher.engine.occupations import WEIGHT_SCALE, OccupationProfiles, profile_terms
from cvmatch.matcher.engine.scoring import FULL_FIT_RATIO, TITLE_SHARE

TODAY = date(2025, 1, 15)

ACCOUNTANT_JD = """Accountant

Responsibilities
- Prepare financial statements, reconcile accounts and support the annual audit
- Maintain the general ledger and run the month-end close

Requirements
- QuickBooks, Microsoft Excel
"""

ACCOUNTANT_CV = """Jamie Ledger
Staff Accountant

Summary
Accountant with six years of general ledger, month-end close and audit preparation experience.

Experience
Staff Accountant, Brightline Manufacturing
Mar 2018 - Present
- Prepared monthly financial statements and account reconciliations for three entities
- Supported the external audit and maintained fixed asset and accrual schedules
- Reviewed journal entries and tax filings; improved the accounts payable process
"""

# No title line the taxonomy maps: the work history alone says what the candidate does.
VAGUE_ACCOUNTANT_CV = """Jamie Ledger
Finance professional

Experience
Brightline Manufacturing
Mar 2018 - Present
- Prepared monthly financial statements and account reconciliations for three entities
- Supported the external audit and maintained fixed asset and accrual schedules
- Reviewed journal entries, general ledger postings and tax filings; ran the month-end close
"""

CHEF_CV = """Sam Cook
Sous Chef

Experience
Sous Chef, Bistro 9
Jan 2016 - Dec 2024
- Prepared sauces, planned menus, ordered produce and trained line cooks in the kitchen
- Supervised kitchen staff, managed food cost and inventory, kept the kitchen to health code
"""


@pytest.fixture(scope="module")
def engine() -> MatchEngine:
    return MatchEngine.load(today=TODAY)


# -- the profiles ----------------------------------------------------------------------------------------------


def test_profile_terms_are_words_then_written_phrases() -> None:
    # A phrase is two content words with only spaces or a hyphen between them: never across a stop word,
    # punctuation or a line end, so every phrase can be quoted from the text.
    assert profile_terms("Prepared the Financial Statements\nin C++ and C#; month-end close, Excel\nWord") == [
        "prepared",
        "financial",
        "statements",
        "c++",
        "c#",
        "month",
        "end",
        "close",
        "excel",
        "word",
        "financial statements",
        "month end",
        "end close",
    ]


def _compiled(profiles: list[dict[str, float]]) -> dict[str, object]:
    """Profiles in the compiled format of tools/build_taxonomy.py (flat integer arrays)."""
    terms = sorted({t for p in profiles for t in p})
    postings = [[(i, round(WEIGHT_SCALE * p[t])) for i, p in enumerate(profiles) if t in p] for t in terms]
    return {
        "occupations": [10 + i for i in range(len(profiles))],
        "terms": terms,
        "idf": [WEIGHT_SCALE] * len(terms),
        "counts": [len(p) for p in postings],
        "postings_occupation": [i for p in postings for i, _w in p],
        "postings_weight": [w for p in postings for _i, w in p],
    }


def test_inverted_index_cosines_equal_brute_force() -> None:
    # Three occupations, unit-length profiles, as the build writes them.
    raw = [
        {"ledger": 3.0, "audit": 4.0, "general ledger": 2.0},
        {"menu": 1.0, "kitchen": 1.0},
        {"audit": 1.0, "kitchen": 1.0},
    ]
    profiles = [{t: w / math.sqrt(sum(x * x for x in p.values())) for t, w in p.items()} for p in raw]
    index = OccupationProfiles(_compiled(profiles))
    vec = index.vector([("Audit of the general ledger\nAudit of the general ledger\nkitchen", 1.0)])
    # Identical lines count once, so every term was seen once; words outside the profiles are left out.
    assert set(vec) == {"audit", "ledger", "general ledger", "kitchen"}
    assert vec["audit"] == pytest.approx(vec["ledger"]) == pytest.approx(vec["kitchen"])
    brute = [sum(w * p.get(t, 0.0) for t, w in vec.items()) for p in profiles]
    assert index.cosines(vec) == pytest.approx(brute, abs=1e-4)
    order = sorted(range(3), key=lambda i: -brute[i])
    assert [m.occupation for m in index.closest(vec, 2)] == [10 + i for i in order[:2]]
    assert index.profile(11) == pytest.approx(profiles[1], abs=1e-4)
    cosine, contrib = index.fit_terms(vec, 10)
    assert cosine == pytest.approx(brute[0], abs=1e-4)
    assert [t for t, _c in contrib] == ["audit", "ledger", "general ledger"]


def test_malformed_profiles_are_refused() -> None:
    data = _compiled([{"audit": 1.0}])
    data["counts"] = [2]
    with pytest.raises(ValueError):
        OccupationProfiles(data)


def test_shipped_taxonomy_has_profiles(engine: MatchEngine) -> None:
    profiles = engine.taxonomy.profiles
    assert len(profiles.occupations) > 800
    accountants = engine.taxonomy.occupation_index["13-2011.00"]
    assert accountants in profiles
    top = sorted(profiles.profile(accountants).items(), key=lambda kv: -kv[1])[:15]
    assert "accountant" in {t for t, _w in top}


# -- the CV and the job ----------------------------------------------------------------------------------------


def test_cv_reads_like_its_occupation(engine: MatchEngine) -> None:
    acc = engine.parse_candidate(ACCOUNTANT_CV)
    chef = engine.parse_candidate(CHEF_CV)
    assert acc.closest_occupations[0][0] == "13-2011.00"
    assert chef.closest_occupations[0][0].startswith("35-")
    # Work history alone, without a title the taxonomy knows, still reads as accounting.
    vague = engine.parse_candidate(VAGUE_ACCOUNTANT_CV)
    assert vague.closest_occupations[0][0].startswith("13-20")


def test_name_and_contact_lines_are_not_work_history(engine: MatchEngine) -> None:
    cv = engine.parse_candidate(
        "Sam Carpenter\nsam@example.com\nSoftware Engineer\n\nExperience\nSoftware Engineer, Acme\n"
        "Jan 2019 - Present\n- Built Python services on PostgreSQL and Docker for the payments team\n"
    )
    assert "carpenter" not in dict(cv.occupation_terms)
    assert not any("Carpenter" in name for _id, name, _c in cv.closest_occupations)


def test_job_is_placed_in_its_titles_occupation_the_text_supports(engine: MatchEngine) -> None:
    job = engine.parse_job(ACCOUNTANT_JD)
    assert job.occupation_id == "13-2011.00" and job.occupation_name == "Accountants and Auditors"
    # "Sales Associate" is listed by several occupations, first by Online Merchants (13-1199.06); the text
    # picks the store floor (Retail Sales Workers, 41-20xx).
    retail = engine.parse_job(
        "Sales Associate\n\nGreet customers in the store, recommend merchandise, run the cash register and "
        "restock shelves.\n"
    )
    assert engine.taxonomy.title_owners("Sales Associate")[0] == engine.taxonomy.occupation_index["13-1199.06"]
    assert retail.occupation_id is not None and retail.occupation_id.startswith("41-20")
    # Three tools and no title say too little to name an occupation.
    assert engine.parse_job("Requirements\n- Python, PostgreSQL, Docker\n").occupation_id is None


def test_profiles_survive_the_json_round_trip(engine: MatchEngine) -> None:
    job = engine.parse_job(ACCOUNTANT_JD)
    cand = engine.parse_candidate(ACCOUNTANT_CV)
    job2 = JobProfile.from_dict(json.loads(json.dumps(job.to_dict())))
    cand2 = CandidateProfile.from_dict(json.loads(json.dumps(cand.to_dict())))
    assert (job2.occupation_id, job2.occupation_similarity) == (job.occupation_id, job.occupation_similarity)
    assert cand2.occupation_terms == cand.occupation_terms
    assert cand2.closest_occupations == cand.closest_occupations
    assert engine.score(job2, cand2).to_dict() == engine.score(job, cand).to_dict()


# -- scoring and explanation -----------------------------------------------------------------------------------


def test_work_history_fit_ranks_the_trade_above_the_stranger(engine: MatchEngine) -> None:
    job = engine.parse_job(ACCOUNTANT_JD)
    acc = engine.score(job, engine.parse_candidate(ACCOUNTANT_CV))
    vague = engine.score(job, engine.parse_candidate(VAGUE_ACCOUNTANT_CV))
    chef = engine.score(job, engine.parse_candidate(CHEF_CV))
    assert acc.details["roles"]["work_history"]["match_percentage"] == 100.0
    assert chef.details["roles"]["work_history"]["match_percentage"] < 30.0
    # No matching title, but an accountant's work history: well above the chef, below the titled accountant.
    assert acc.role_match_percentage > vague.role_match_percentage > chef.role_match_percentage + 30
    assert acc.overall_score > vague.overall_score > chef.overall_score


def test_role_match_is_recomputable_from_its_parts(engine: MatchEngine) -> None:
    job = engine.parse_job(ACCOUNTANT_JD)
    for cv in (ACCOUNTANT_CV, VAGUE_ACCOUNTANT_CV, CHEF_CV):
        r = engine.score(job, engine.parse_candidate(cv))
        parts = r.details["roles"]
        assert parts["title_share"] == TITLE_SHARE
        expected = (
            TITLE_SHARE * parts["title_match_percentage"]
            + (1 - TITLE_SHARE) * (parts["work_history"]["match_percentage"])
        )
        assert r.role_match_percentage == pytest.approx(expected, abs=0.11)
        assert 0.0 < FULL_FIT_RATIO <= 1.0


def test_fit_evidence_is_the_cvs_own_words(engine: MatchEngine) -> None:
    job = engine.parse_job(ACCOUNTANT_JD)
    r = engine.score(job, engine.parse_candidate(ACCOUNTANT_CV))
    fit = r.details["roles"]["work_history"]
    # Words and pairs of adjacent words of the CV's own lines ("general ledger").
    assert fit["evidence_terms"] and set(fit["evidence_terms"]) <= set(profile_terms(ACCOUNTANT_CV))
    assert any(" " in t for t in fit["evidence_terms"])
    sentence = next(s for s in r.strengths if s.startswith("Work history fits"))
    assert sentence.startswith("Work history fits Accountants and Auditors: ")
    assert "Work history fit with Accountants and Auditors: 100%." in r.executive_summary
    chef = engine.score(job, engine.parse_candidate(CHEF_CV))
    closest = chef.details["roles"]["work_history"]["closest_occupation"]
    assert f"Work history reads more like {closest} than Accountants and Auditors." in chef.gaps


def test_repeating_occupation_words_does_not_buy_fit(engine: MatchEngine) -> None:
    job = engine.parse_job(ACCOUNTANT_JD)
    once = CHEF_CV + "- Accountant: general ledger, audit, reconciliations\n"
    pasted = CHEF_CV + "- Accountant: general ledger, audit, reconciliations\n" * 40
    a, b = engine.parse_candidate(once), engine.parse_candidate(pasted)
    assert a.occupation_terms == b.occupation_terms
    assert engine.score(job, a).role_match_percentage == engine.score(job, b).role_match_percentage
    honest = engine.score(job, engine.parse_candidate(ACCOUNTANT_CV))
    assert honest.overall_score > engine.score(job, b).overall_score
