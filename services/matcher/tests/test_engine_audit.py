"""Engine tests for the audit findings of issue 4: surname titles, free-text must-haves, Experience stuffing,
components without data, skill ids, CRLF offsets, proficiency_match, band edges, cues and match types."""

from __future__ import annotations

import re
from datetime import date

import pytest

from cvmatch.matcher import convert
from cvmatch.matcher.engine import MatchEngine, RequirementsConfig
from cvmatch.matcher.engine.scoring import band

TODAY = date(2025, 1, 15)

JD = """Backend Engineer

Requirements
- 3+ years of experience building backend services
- Python, PostgreSQL, Docker, Kubernetes
"""

HONEST = """Alex Worker
Backend Engineer

Experience
Backend Engineer, Shipfast
Jan 2020 - Dec 2024
- Built order services in Python on PostgreSQL, packaged with Docker and deployed to Kubernetes
"""


@pytest.fixture(scope="module")
def engine() -> MatchEngine:
    return MatchEngine.load(today=TODAY)


# -- 1. a surname is not a job title -----------------------------------------------------------------------

TRADE_JD = """{title}

Requirements
- 3+ years of hands-on trade experience
- Read drawings and work safely on site
"""


@pytest.mark.parametrize("surname", ["Carpenter", "Baker", "Porter", "Mason"])
def test_surname_on_name_line_is_not_a_role(engine: MatchEngine, surname: str) -> None:
    cv = (
        f"Sam {surname}\nSoftware Engineer\n\nExperience\nSoftware Engineer, Acme\nJan 2019 - Present\n"
        "- Built Python services on PostgreSQL and Docker for the payments team\n"
    )
    cand = engine.parse_candidate(cv)
    assert all(r.title.lower() != surname.lower() for r in cand.roles), cand.roles
    headline = [r for r in cand.roles if r.is_headline]
    assert headline and headline[0].title == "Software Engineer"
    r = engine.score(engine.parse_job(TRADE_JD.format(title=surname)), cand)
    assert r.match_results_summary["roles"]["matches"] == []
    assert r.verdict not in ("STRONG_MATCH", "GOOD_MATCH"), r.overall_score


def test_real_title_on_first_line_is_still_the_headline(engine: MatchEngine) -> None:
    for first in ("Software Engineer", "Senior Carpenter", "FINISH CARPENTER"):
        cand = engine.parse_candidate(
            f"{first}\n\nExperience\nAcme Ltd\nJan 2015 - Dec 2024\n"
            "- Built and fitted stairs, doors and kitchens for residential customers\n"
        )
        headline = [r for r in cand.roles if r.is_headline]
        assert headline and headline[0].title.lower() in first.lower(), (first, cand.roles)


# -- 2. a must-have outside the taxonomy is looked for in the CV text --------------------------------------


def test_free_text_must_have_found_in_cv_text(engine: MatchEngine) -> None:
    cv = HONEST + "- Maintained the Zorblax Ledger integration for the finance team\n"
    req = RequirementsConfig.from_dict({"must_have_skills": ["zorblax ledger"]})
    r = engine.score(engine.parse_job(JD), engine.parse_candidate(cv), req)
    assert not r.knocked_out
    match = next(m for m in r.match_results_summary["skills"]["matches"] if m["name"] == "zorblax ledger")
    ev = match["evidence"]
    assert cv[ev["start"] : ev["end"]] == "Zorblax Ledger"
    assert "Zorblax Ledger" in ev["snippet"]
    # Word-bounded: a longer word holding the phrase is not evidence.
    miss = engine.score(
        engine.parse_job(JD),
        engine.parse_candidate(HONEST + "- Used Zorblaxes daily\n"),
        RequirementsConfig.from_dict({"must_have_skills": ["Zorblax"]}),
    )
    assert miss.knocked_out and miss.overall_score <= 39.0


# -- 3. stuffing the Experience section -------------------------------------------------------------------

STUFFED_EXPERIENCE = (
    """Sam Stuffer
Backend Engineer

Experience
"""
    + "- Python, PostgreSQL, Docker, Kubernetes\n" * 30
    + """Python PostgreSQL Docker Kubernetes Python Docker
- Expert in Python. Expert in PostgreSQL. Expert in Docker. Expert in Kubernetes.
- Python Kubernetes Docker PostgreSQL specialist
"""
)


def test_experience_stuffing_does_not_beat_dated_job(engine: MatchEngine) -> None:
    job = engine.parse_job(JD)
    # One honest job of under a year, each skill named once.
    honest = engine.score(job, engine.parse_candidate(HONEST.replace("Jan 2020", "Mar 2024")))
    stuffed = engine.score(job, engine.parse_candidate(STUFFED_EXPERIENCE))
    assert honest.skill_match_percentage > stuffed.skill_match_percentage
    assert honest.overall_score > stuffed.overall_score


def test_identical_lines_count_once(engine: MatchEngine) -> None:
    cand = engine.parse_candidate(STUFFED_EXPERIENCE)
    python = next(s for s in cand.skills if s.name == "Python")
    text = STUFFED_EXPERIENCE
    lines = [text[text.rfind("\n", 0, m.start) + 1 : text.find("\n", m.start)] for m in python.mentions]
    assert len(lines) == len(set(lines)), "a repeated identical line was counted twice"


# -- 4. components without data do not claim 100 ----------------------------------------------------------


def test_components_without_data_are_not_applicable(engine: MatchEngine) -> None:
    # No title line the taxonomy knows, no degree, no sector, no minimum years: only skills to compare.
    job = engine.parse_job("Requirements\n- Python, PostgreSQL, Docker\n")
    r = engine.score(job, engine.parse_candidate(HONEST))
    assert set(r.not_applicable) >= {"qualifications", "sectors", "experience"}
    for name in r.not_applicable:
        assert getattr(r, f"{'skill' if name == 'skills' else name.rstrip('s')}_match_percentage") == 0.0
    assert r.qualification_match_percentage == 0.0 and r.sector_match_percentage == 0.0
    assert "skills" not in r.not_applicable and r.skill_match_percentage > 0
    # The overall is the weighted mean of the applicable components only.
    assert r.details["applicable_components"] == [k for k in ("skills", "roles") if k not in r.not_applicable]
    msg = convert.match_result(r, convert.CandidateInfo("c"))
    assert list(msg.match_score.not_applicable) == list(r.not_applicable)


# -- 5. skill ids ------------------------------------------------------------------------------------------


def test_skill_ids_are_filled(engine: MatchEngine) -> None:
    job = engine.parse_job(JD + "- Terraform\n")
    r = engine.score(job, engine.parse_candidate(HONEST + "\nSkills\nGit, Linux\n"))
    summary = r.match_results_summary["skills"]
    ids = {s.name: s.id for s in job.skills}
    assert summary["matches"] and summary["gaps"] and summary["surpluses"]
    for m in summary["matches"]:
        assert m["skill_id"] and m["skill_id"] == ids.get(m["name"], m["skill_id"])
    for item in summary["gaps"] + summary["surpluses"]:
        assert item["skill_id"]
    msg = convert.match_result(r, convert.CandidateInfo("c"))
    assert all(s.skill_id for s in msg.match_results_summary.skills.matches)
    assert all(s.skill_id for s in msg.match_results_summary.skills.gaps)


# -- 6. offsets refer to the text the caller sent ----------------------------------------------------------


def test_offsets_survive_crlf_and_nul(engine: MatchEngine) -> None:
    text = HONEST.replace("\n", "\r\n").replace("Alex", "Al\x00ex")
    cand = engine.parse_candidate(text)
    for s in cand.skills:
        for m in s.mentions:
            assert text[m.start : m.end].lower() in (s.surface.lower(), s.name.lower()), (s.name, text[m.start : m.end])
    for r in cand.roles:
        assert text[r.start : r.end] == r.title
    for start, end, _id, name in engine.find_skills("Skills\r\n\r\nPython, Docker\r\nKubernetes"):
        assert "Skills\r\n\r\nPython, Docker\r\nKubernetes"[start:end] == name
    lf = engine.score(engine.parse_job(JD), engine.parse_candidate(HONEST))
    crlf = engine.score(
        engine.parse_job(JD.replace("\n", "\r\n")), engine.parse_candidate(HONEST.replace("\n", "\r\n"))
    )
    assert crlf.overall_score == lf.overall_score


# -- 7. proficiency_match means "shown in dated work" -----------------------------------------------------

UNDATED_WORK = """Pat Undated
Backend Engineer

Experience
- Built order services in Python at a startup
- Wrote Python scripts for reporting
- Tuned Python workers for throughput
- Taught Python to new hires
- Reviewed Python code every week
"""


def test_proficiency_match_means_dated_work(engine: MatchEngine) -> None:
    job = engine.parse_job(JD)
    for text, expected in ((HONEST, True), (UNDATED_WORK, False)):
        r = engine.score(job, engine.parse_candidate(text))
        msg = convert.match_result(r, convert.CandidateInfo("c"))
        python = next(s for s in msg.match_results_summary.skills.matches if s.name == "Python")
        assert python.proficiency_match is expected, text


# -- 8. bands, cues, match types, explanations ------------------------------------------------------------


@pytest.mark.parametrize(
    ("score", "verdict", "recommendation"),
    [
        (100, "STRONG_MATCH", "Interview"),
        (75, "STRONG_MATCH", "Interview"),
        (74, "GOOD_MATCH", "Interview"),
        (60, "GOOD_MATCH", "Interview"),
        (59, "MODERATE_MATCH", "Consider"),
        (40, "MODERATE_MATCH", "Consider"),
        (39, "WEAK_MATCH", "Not recommended"),
        (20, "WEAK_MATCH", "Not recommended"),
        (19, "NOT_SUITABLE", "Not recommended"),
        (0, "NOT_SUITABLE", "Not recommended"),
    ],
)
def test_band_edges(score: int, verdict: str, recommendation: str) -> None:
    assert band(score) == (verdict, recommendation)


def test_bonus_section_cue_marks_preferred(engine: MatchEngine) -> None:
    job = engine.parse_job("Data Engineer\n\nRequirements\n- Python, SQL\n\nBonus\n- Terraform, Kafka\n")
    by_name = {s.name: s for s in job.skills}
    assert by_name["Python"].required and by_name["SQL"].required
    assert not by_name["Terraform"].required and not by_name["Apache Kafka"].required
    inline = engine.parse_job("Data Engineer\nRequirements: Python, SQL\nTerraform is a bonus\n")
    assert not {s.name: s for s in inline.skills}["Terraform"].required


def test_synonym_and_related_match_types(engine: MatchEngine) -> None:
    job = engine.parse_job("Platform Engineer\n\nRequirements\n- Kubernetes, JavaScript\n")
    cand = engine.parse_candidate(
        "Kim Ops\nPlatform Engineer\n\nExperience\nPlatform Engineer, Acme\nJan 2018 - Dec 2024\n"
        "- Ran k8s clusters and wrote TypeScript tooling\n"
    )
    r = engine.score(job, cand)
    types = {m["name"]: m["match_type"] for m in r.match_results_summary["skills"]["matches"]}
    assert types["Kubernetes"] == "synonym"
    assert types["JavaScript"] == "related"
    related = next(m for m in r.match_results_summary["skills"]["matches"] if m["name"] == "JavaScript")
    exact = next(m for m in r.match_results_summary["skills"]["matches"] if m["name"] == "Kubernetes")
    assert 0 < related["match_score"] < exact["match_score"]


_QUOTED = re.compile(
    r"(?:Used|Lists|Held a matching role:|Holds|No evidence of|Not shown:|"
    r"Required qualification not found:)\s+(.+?)(?: in work history| \(|\.$)"
)


CHEF = """Sam Cook
Sous Chef

Experience
Sous Chef, Bistro 9
Jan 2016 - Dec 2024
- Prepared sauces, planned menus, ordered produce and trained line cooks in the kitchen
"""


@pytest.mark.parametrize("cv", [HONEST, UNDATED_WORK, CHEF])
def test_explanations_use_evidence_only(engine: MatchEngine, cv: str) -> None:
    job = engine.parse_job(JD)
    r = engine.score(job, engine.parse_candidate(cv))
    summary = r.match_results_summary
    matched = {m["name"] for m in summary["skills"]["matches"] if m["match_type"] in ("exact", "synonym")}
    missing = {g["name"] for g in summary["skills"]["gaps"]}
    roles = {m["name"] for m in summary["roles"]["matches"]}
    quals = {m["name"] for m in summary["qualifications"]["matches"]} | {
        g["name"] for g in summary["qualifications"]["gaps"]
    }
    known = matched | missing | roles | quals
    fit = r.details["roles"].get("work_history")
    assert r.strengths or r.gaps
    for sentence in [*r.strengths, *r.gaps]:
        if sentence.startswith("Work history"):
            # The occupational fit names the job's occupation, the CV's closest one and the CV's own words.
            assert fit is not None, sentence
            m = re.fullmatch(r"Work history fits (.+): (.+)\.", sentence)
            if m:
                assert m.group(1) == fit["occupation"] and fit["match_percentage"] >= 80
                assert set(re.split(r", | and ", m.group(2))) <= set(fit["evidence_terms"])
                continue
            m = re.fullmatch(r"Work history reads more like (.+) than (.+)\.", sentence)
            assert m, sentence
            assert (m.group(1), m.group(2)) == (fit["closest_occupation"], fit["occupation"])
            assert fit["match_percentage"] < 50
            continue
        if "year" in sentence and ("experience" in sentence):
            assert f"{r.candidate_years:.1f}" in sentence  # years quoted are the dated years found
            continue
        m = _QUOTED.search(sentence)
        assert m, sentence
        names = re.split(r", | and ", m.group(1))
        assert names and all(n in known for n in names), (sentence, known)
        if sentence.startswith(("Used", "Lists", "Held", "Holds")):
            assert all(n in matched | roles | quals for n in names), sentence
        else:
            assert all(n in missing | quals for n in names), sentence
        if sentence.startswith("Used") and "year" in sentence:
            assert r.candidate_years > 0
    if cv is UNDATED_WORK:
        assert not any("year" in s for s in r.strengths)
