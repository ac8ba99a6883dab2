"""Ranking signals: skill rarity weights, title similarity, the dict skill matcher and the token-free pipeline.

Pure unit tests: texts are written here; the taxonomy is the shipped one or a tiny one built in the test.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from cvmatch.matcher.engine import MatchEngine
from cvmatch.matcher.engine.pipeline import annotate
from cvmatch.matcher.engine.scoring import role_similarity
from cvmatch.matcher.engine.taxonomy import (
    DEFAULT_SKILL_WEIGHT,
    Taxonomy,
    rarity_weight,
    singular_title,
    surface_prefixes,
    title_words,
)
from cvmatch.matcher.engine.types import Role

TODAY = date(2025, 1, 15)


@pytest.fixture(scope="module")
def engine() -> MatchEngine:
    return MatchEngine.load(today=TODAY)


def tiny_taxonomy(surfaces: dict[str, list[str]]) -> Taxonomy:
    """A taxonomy in the compiled format with the given skill name -> surfaces, and no occupations."""
    skills: list[dict[str, Any]] = []
    keys: list[str] = []
    owner: list[int] = []
    for i, (name, forms) in enumerate(surfaces.items()):
        skills.append({"id": f"s{i}", "name": name, "group": "tool"})
        for form in forms:
            keys.append(form)
            owner.append(i)
    return Taxonomy(
        {
            "skills": skills,
            "surface_keys": keys,
            "surface_skill": owner,
            "surface_prefixes": sorted({p for k in keys for p in surface_prefixes(k)}),
            "occupations": [],
            "titles": [],
            "title_occupation": [],
        }
    )


# -- skill rarity ----------------------------------------------------------------------------------------------


def test_rarity_weight_orders_common_below_specific() -> None:
    excel, quickbooks, civil3d = rarity_weight(859, 923), rarity_weight(84, 923), rarity_weight(30, 923)
    assert 0.2 <= excel < quickbooks < civil3d <= 1.0
    assert rarity_weight(1, 923) == pytest.approx(1.0)
    assert rarity_weight(0, 923) == DEFAULT_SKILL_WEIGHT  # not an O*NET technology: no count to go on


def test_shipped_taxonomy_weights_office_tools_low(engine: MatchEngine) -> None:
    excel = engine.taxonomy.lookup_skill("Microsoft Excel")
    quickbooks = engine.taxonomy.lookup_skill("QuickBooks")
    assert excel is not None and quickbooks is not None
    assert excel.weight < 0.3 < quickbooks.weight


def test_specific_skill_outweighs_common_tool(engine: MatchEngine) -> None:
    job = engine.parse_job("Bookkeeper\n\nRequirements\n- Microsoft Excel, QuickBooks\n")
    specific = engine.parse_candidate(
        "Pat Books\nBookkeeper\n\nExperience\nBookkeeper, Acme Ltd\nJan 2019 - Dec 2023\n"
        "- Kept the general ledger and payroll in QuickBooks for 40 clients\n"
    )
    common = engine.parse_candidate(
        "Kim Sheets\nBookkeeper\n\nExperience\nBookkeeper, Acme Ltd\nJan 2019 - Dec 2023\n"
        "- Kept the general ledger and payroll in Microsoft Excel for 40 clients\n"
    )
    a, b = engine.score(job, specific), engine.score(job, common)
    assert a.skill_match_percentage > b.skill_match_percentage
    assert a.overall_score > b.overall_score


# -- titles ----------------------------------------------------------------------------------------------------


def test_title_words_stem_and_drop_seniority() -> None:
    assert title_words("Senior Staff Accountants") == ["accountant"]
    assert title_words("Finance Manager") == title_words("Financial Managers")
    assert singular_title("accountants and auditors") == "accountant and auditor"


def _role(title: str, engine: MatchEngine) -> Role:
    occ_idx = engine.taxonomy.title_to_occupation.get(title.lower())
    occ = engine.taxonomy.occupations[occ_idx] if occ_idx is not None else None
    return Role(
        title, occ.id if occ else None, occ.name if occ else None, occ.sector if occ else None, 0, len(title), 0.0, True
    )


def test_role_similarity_prefers_the_jobs_own_title(engine: MatchEngine) -> None:
    job = engine.parse_job("Financial Manager\n\nRequirements\n- Budgeting, forecasting and Microsoft Excel\n")
    assert job.roles and job.roles[0].occupation_id == "11-3031.00"
    same = role_similarity(engine.taxonomy, job, _role("Finance Manager", engine))
    other = role_similarity(engine.taxonomy, job, _role("Sales Manager", engine))
    assert same >= 0.95
    assert other < 0.6


def test_less_specific_title_with_same_head_is_partial(engine: MatchEngine) -> None:
    job = engine.parse_job("Elementary School Teacher\n\nResponsibilities\n- Teach reading and mathematics\n")
    teacher = role_similarity(engine.taxonomy, job, Role("Teacher", None, None, None, 0, 7, 0.0, True))
    director = role_similarity(engine.taxonomy, job, Role("Director", None, None, None, 0, 8, 0.0, True))
    assert 0.6 <= teacher < 1.0
    assert director < 0.3


def test_alternate_title_counts_less_than_own_title(engine: MatchEngine) -> None:
    # "Management Consultant" is one of O*NET's alternate titles of Management Analysts.
    job = engine.parse_job("Management Analyst\n\nResponsibilities\n- Analyse business processes\n")
    own = role_similarity(engine.taxonomy, job, Role("Management Analyst", None, None, None, 0, 18, 0.0, True))
    alt = role_similarity(engine.taxonomy, job, Role("Management Consultant", None, None, None, 0, 21, 0.0, True))
    assert own == pytest.approx(1.0)
    assert 0.6 <= alt <= 0.8


def test_ambiguous_headline_title_is_kept_unmapped(engine: MatchEngine) -> None:
    cv = engine.parse_candidate(
        "CONSULTANT\n\nSummary\nAdvised retail clients on pricing and operations for ten years.\n\n"
        "Experience\nAcme Advisory\nJan 2015 - Dec 2024\n- Led pricing projects for retail clients\n"
    )
    assert cv.roles and cv.roles[0].title == "CONSULTANT" and cv.roles[0].is_headline


def test_candidate_name_line_is_not_a_title(engine: MatchEngine) -> None:
    cv = engine.parse_candidate(
        "Jordan Pelley\njordan@example.com\n\nExperience\nAcme Ltd\nJan 2015 - Dec 2024\n"
        "- Planned weekly delivery routes and managed the warehouse stock\n"
    )
    assert all(r.title != "Jordan Pelley" for r in cv.roles)


# -- skill matcher ---------------------------------------------------------------------------------------------


def test_dict_matcher_word_boundaries_and_multiword() -> None:
    tax = tiny_taxonomy(
        {
            "C": ["c"],
            "C++": ["c++"],
            "Java": ["java"],
            "Project management": ["project management"],
            "Detail oriented": ["detail-oriented"],
        }
    )
    text = "c++, javascript and java; project management; detail-oriented; projects"
    found = {(text[s:e], tax.skills[tax.surface_skill(i)].name) for s, e, i in tax.iter_skill_hits(text)}
    assert ("c++", "C++") in found and ("c", "C") in found  # the pipeline keeps the longest
    assert ("java", "Java") in found
    assert not any(name == "Java" and span != "java" for span, name in found)  # not inside "javascript"
    assert ("project management", "Project management") in found
    assert ("detail-oriented", "Detail oriented") in found
    assert len([1 for span, _n in found if span == "java"]) == 1


def test_dict_matcher_first_surface_wins() -> None:
    tax = tiny_taxonomy({"Kubernetes": ["kubernetes", "k8s"], "Other": ["k8s"]})
    hits = tax.iter_skill_hits("deployed on k8s")
    assert [tax.skills[tax.surface_skill(i)].name for _s, _e, i in hits] == ["Kubernetes"]


def test_variant_scan_reads_hyphens_spacing_plurals_and_gerunds() -> None:
    tax = tiny_taxonomy(
        {
            "Spring": ["spring boot"],
            "AWS": ["amazon web services"],
            "Web apps": ["web application"],
            "Scikit": ["scikit-learn"],
            "Budgets": ["manage budgets"],
            "Political science": ["political science"],
            "Scholar": ["scholar"],
            "Manage": ["manage"],
        }
    )
    text = (
        "java spring-boot amazon-web-services; web applications; scikit-learn\n"
        "Managing budgets, Political  Science, political\nscience, managing scholars"
    )

    def found(variants: bool) -> set[tuple[str, str]]:
        hits = tax.iter_skill_hits(text.lower(), variants=variants)
        return {(text[s:e], tax.skills[tax.surface_skill(i)].name) for s, e, i in hits}

    exact = found(False)
    assert exact == {("scikit-learn", "Scikit")}  # the plain dictionary: labels as written only
    assert found(True) == {
        ("spring-boot", "Spring"),
        ("amazon-web-services", "AWS"),
        ("web applications", "Web apps"),
        ("scikit-learn", "Scikit"),
        ("Managing budgets", "Budgets"),
        ("Political  Science", "Political science"),
    }  # never across a line break; an inflected word alone is nothing; a single word's plural is not read


def test_pipeline_without_tokenizer_finds_the_same(engine: MatchEngine) -> None:
    text = (
        "Backend Engineer\n\nExperience\nShipfast, Jan 2020 - Present\n"
        "- Built services in Python and Go on Kubernetes; JS front end; excel at mentoring\n"
    )
    fast = annotate(engine._nlp, text, TODAY)
    full = annotate(engine._nlp, text, TODAY, tokenize=True)
    assert len(fast) == 0 and len(full) > 0
    assert fast._.cvm_skills == full._.cvm_skills
    assert fast._.cvm_dates == full._.cvm_dates


@pytest.mark.parametrize(
    ("text", "word", "expected"),
    [
        ("Stack: PHP React jQuery MySQL", "React", True),
        ("Languages: Python/Perl/Go for automation", "Go", True),
        ("An excellent command of PowerPoint Excel and English is a must", "Excel", True),
        ("You excel at bridging customer needs and delivery with Python", "excel", False),
        ("We go beyond the ad with Python and Docker", "go", False),
        ("Strong programming skills in Python and R or equivalents", "R", True),
        ("Python or Go are ideal", "Go", True),
        ("Jira GIT Gerrit Eclipse and Jenkins", "Eclipse", True),
        # An ambiguous word accepted in a list vouches for the next one: Puppet is beside Bamboo only.
        ("build automation tools ( Bitbucket Bamboo Puppet ) as well", "Puppet", True),
        ("modern stack: C C++17/20 Rust Go Kubernetes Docker", "Rust", True),
        ("Experience building JS based web applications", "JS", True),
        ("Reported on R and D spending", "R", False),
        ("Go and see what Python can do", "Go", False),
    ],
)
def test_ambiguous_word_right_beside_a_skill(engine: MatchEngine, text: str, word: str, expected: bool) -> None:
    found = {text[s:e] for s, e, _id, _name in engine.find_skills(text)}
    assert (word in found) is expected
