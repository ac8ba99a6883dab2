"""Extraction tests on CVs and JDs written here (the shipped taxonomy only, never ../shared)."""

from __future__ import annotations

from datetime import date

import pytest

from cvmatch.matcher.engine import CandidateTooSparse, MatchEngine
from cvmatch.matcher.engine.dates import find_date_ranges, merge_intervals, total_years

TODAY = date(2025, 1, 15)


@pytest.fixture(scope="module")
def engine() -> MatchEngine:
    return MatchEngine.load(today=TODAY)


CV = """Jane Doe
Senior Software Engineer

Summary
Backend engineer who enjoys distributed systems. I excel at mentoring and go to meetups every spring.

Experience
Senior Software Engineer, Acme Corp
Jan 2019 – Present
- Built Go microservices on Kubernetes (k8s) and AWS with PostgreSQL storage
- Wrote Python tooling; Docker everywhere

Software Engineer, Beta Ltd
03/2015 - 12/2018
- Python and Django web apps with MySQL

Education
B.Sc. in Computer Science, University of Somewhere, 2011 - 2015

Skills
Python, Go, Docker, Kubernetes, Terraform, Excel, R, Swift
Languages: English (native), Spanish (fluent)
"""


def names(profile) -> list[str]:
    return [s.name for s in profile.skills]


def test_date_range_formats():
    text = "2019 – Present\nJan 2018 to Mar 2020\n03/2017 - 06/2019\nJuly 2011\n \nto \nNovember 2012\n2012-2015"
    ranges = find_date_ranges(text, TODAY)
    assert [r.months for r in ranges] == [73, 27, 28, 17, 36]
    assert ranges[0].is_current


def test_overlapping_jobs_are_merged():
    assert merge_intervals([(0, 12), (6, 18), (30, 36)]) == [(0, 18), (30, 36)]
    assert total_years([(0, 12), (6, 18), (30, 36)]) == 2.0


def test_candidate_years_skills_and_evidence(engine):
    cand = engine.parse_candidate(CV)
    # Jan 2019 - Jan 2025 (73 months) + Mar 2015 - Dec 2018 (46 months); education dates do not count.
    assert cand.total_years == 9.9
    by_name = {s.name: s for s in cand.skills}
    assert by_name["Go"].years == 6.1
    assert by_name["Python"].years == 9.9
    assert by_name["Kubernetes"].experience_mentions >= 1
    m = by_name["Kubernetes"].mentions[0]
    assert CV[m.start : m.end] in ("Kubernetes", "k8s")
    assert "Kubernetes" in m.snippet
    assert by_name["Microsoft Excel"].mentions[0].section == "skills"
    assert cand.languages == ("English", "Spanish")
    assert cand.qualifications[0].level == 3 and cand.qualifications[0].field == "Computer Science"
    assert cand.roles[0].title == "Senior Software Engineer" or cand.roles[0].title == "Software Engineer"
    assert cand.seniority == "senior"
    assert "Computer and Mathematical" in cand.sectors


@pytest.mark.parametrize(
    "text",
    [
        "I excel at building relationships with customers and colleagues across the organisation every day.",
        "We will go to the conference in spring and swift action was taken after the rust on the bridge.",
        "Reported to the C-level team and led R&D budgeting with John C. Smith for the group.",
    ],
)
def test_ambiguous_words_in_prose_are_not_skills(engine, text):
    found = [name for _s, _e, _id, name in engine.find_skills(text)]
    for word in ("Microsoft Excel", "Go", "Swift", "Rust", "Spring", "C", "R"):
        assert word not in found, (word, found)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Skills\nPython, Go, Rust, C, R, Swift", {"Go", "Rust", "C", "R", "Swift"}),
        ("Experienced in programming in Go and Python.", {"Go", "Python"}),
        ("Built dashboards in Excel, Tableau and SQL.", {"Microsoft Excel", "Tableau", "SQL"}),
        ("Backend services with Java, Spring Boot and Kafka", {"Java", "Spring", "Apache Kafka"}),
    ],
)
def test_ambiguous_words_in_skill_context(engine, text, expected):
    found = {name for _s, _e, _id, name in engine.find_skills(text)}
    assert expected <= found, found


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Fluent in Danish and English, written and spoken", {"Danish", "English"}),
        ("Excellent English communication skills", {"English"}),
        ("Languages\nGerman", {"German"}),
        ("Appointed under the rules for Academic Staff at Danish Universities", set()),
        ("Please send your application in English before 1 May", set()),
    ],
)
def test_language_names_count_only_as_languages(engine, text, expected):
    found = {name for _s, _e, _id, name in engine.find_skills(text)}
    assert found & {"Danish", "English", "German"} == expected


def test_spelling_variants_of_labels(engine):
    text = "Technologies: java spring-boot amazon-web-services\nBuilt web applications on relational databases"
    found = {(text[s:e], name) for s, e, _id, name in engine.find_skills(text)}
    assert ("spring-boot", "Spring") in found
    assert ("amazon-web-services", "Amazon Web Services") in found
    assert ("web applications", "Web application software") in found
    assert ("relational databases", "Relational database software") in found


def test_less_than_is_not_the_css_language(engine):
    text = "Skills\nC++ (Less than 1 year), Java (Less than 1 year), LESS, Sass"
    found = [text[s:e] for s, e, _id, name in engine.find_skills(text) if name == "LESS"]
    assert found == ["LESS"]


def test_taxonomy_keeps_esco_alternates_and_product_names(engine):
    tax = engine.taxonomy
    # ESCO's "resuscitation" is ordinary English to the build, but its alternates are good labels.
    assert tax.lookup_skill("resuscitation") is None
    assert tax.lookup_skill("cardiopulmonary resuscitation").name == "resuscitation"
    # "GIMP (graphics editor software)" is written "GIMP".
    assert tax.lookup_skill("GIMP").name == "GIMP"
    assert tax.lookup_skill("SaaS").name == "SaaS"
    # ... and "Scratch (computer programming)" is an ordinary word that needs a skill context.
    assert "Scratch" not in {name for _s, _e, _id, name in engine.find_skills("Rebuilt the app from scratch in Java")}


def test_synonyms_resolve_to_one_skill(engine):
    found = {(name) for _s, _e, _id, name in engine.find_skills("Stack: JS, k8s, MS Excel, Postgres, NodeJS")}
    assert {"JavaScript", "Kubernetes", "Microsoft Excel", "PostgreSQL", "Node.js"} <= found


def test_no_skills_inside_emails_or_urls(engine):
    found = engine.find_skills("Contact: python.dev@example.com, https://github.com/go/rust")
    assert found == []


JD = """Senior Backend Engineer

About us
We are a fintech startup; everyone uses Slack.

Responsibilities
- Build REST APIs and microservices in Go and Python
- Operate services on Kubernetes in AWS

Requirements
- 5+ years of professional software development experience
- 3+ years of Python
- Experience with Docker, Kubernetes and PostgreSQL
- Bachelor's degree in Computer Science or related field

Nice to have
- GraphQL, Terraform
- AWS Certified Solutions Architect
"""


def test_job_sections_required_preferred_and_years(engine):
    job = engine.parse_job(JD)
    assert job.job_title == "Senior Backend Engineer"
    by_name = {s.name: s for s in job.skills}
    assert by_name["Kubernetes"].required and by_name["Kubernetes"].is_core
    assert not by_name["GraphQL"].required and not by_name["Terraform"].required
    assert by_name["Python"].min_years == 3.0
    assert job.min_years == 5.0
    assert "Slack" not in by_name  # company blurb, not a requirement
    degree = next(q for q in job.qualifications if q.kind == "degree")
    assert degree.level == 3 and degree.required
    cert = next(q for q in job.qualifications if q.kind == "certification")
    assert not cert.required
    assert job.job_summary.startswith("Requires: ")
    assert "Python" in job.job_summary and "GraphQL" not in job.job_summary
    assert job.seniority == "senior"
    assert job.sectors == ("Computer and Mathematical",)


def test_inline_cues(engine):
    job = engine.parse_job("Data Analyst\nMust have: SQL, Tableau\nNice to have: Python\n")
    by_name = {s.name: s for s in job.skills}
    assert by_name["SQL"].required and by_name["Tableau"].required
    assert not by_name["Python"].required


@pytest.mark.parametrize("text", ["", "   ", "John Smith\nphone 555-1234", "hello world " * 5])
def test_sparse_cv_raises(engine, text):
    with pytest.raises(CandidateTooSparse):
        engine.parse_candidate(text)


def test_profiles_round_trip(engine):
    job = engine.parse_job(JD)
    cand = engine.parse_candidate(CV)
    assert type(job).from_dict(job.to_dict()) == job
    assert type(cand).from_dict(cand.to_dict()) == cand
