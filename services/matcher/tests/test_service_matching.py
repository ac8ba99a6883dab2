"""The matcher service end to end on real Postgres and JetStream: ingested candidates are scored, stored
and announced once; the ranking pages and counts over the whole batch; the sync RPCs answer over gRPC."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Awaitable

import grpc
import pytest

from cvmatch.api.matcher.v1 import events_pb2 as matcher_events
from cvmatch.api.matcher.v1 import matcher_service_pb2 as pb

from .conftest import MatcherEnv
from .service_texts import JD, MEDIUM, SPARSE, STRONG, WEAK


async def _error(call: Awaitable[object]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await call
    return e.value


async def test_batch_is_scored_stored_ranked_and_announced(matcher_env: MatcherEnv) -> None:
    env = matcher_env
    batch = str(uuid.uuid4())
    env.ingest.add_job(batch, JD, job_id="job-backend")
    ids = {
        "strong": env.ingest.add_candidate(batch, STRONG, "alex.pdf", "ext-1"),
        "medium": env.ingest.add_candidate(batch, MEDIUM, "jamie.docx", "ext-2"),
        # The same CV twice: equal scores, so the order between them comes from the candidate id.
        "medium2": env.ingest.add_candidate(batch, MEDIUM, "jamie-copy.docx", "ext-3"),
        "weak": env.ingest.add_candidate(batch, WEAK, "morgan.txt"),
        "sparse": env.ingest.add_candidate(batch, SPARSE, "hello.txt"),
        "empty": env.ingest.add_candidate(batch, "  \n ", "blank.txt"),
    }
    for cid in ids.values():
        await env.publish_ingested(batch, cid)
    encrypted = str(uuid.uuid4())
    await env.publish_ingest_failed(batch, encrypted)
    await env.settled()

    full = await env.stub.ListResults(pb.ListResultsRequest(batch_id=batch))
    assert full.job_title == "Senior Backend Engineer"
    assert full.job_summary.startswith("Requires: Python")
    assert full.total_results == 4
    results = list(full.results)
    keys = [(-r.match_score.overall_score, r.candidate_id) for r in results]
    assert keys == sorted(keys), "best first, ties by candidate id"
    by_id = {r.candidate_id: r for r in results}
    assert set(by_id) == {ids["strong"], ids["medium"], ids["medium2"], ids["weak"]}
    assert by_id[ids["strong"]].match_score.overall_score > by_id[ids["weak"]].match_score.overall_score
    assert by_id[ids["medium"]].match_score == by_id[ids["medium2"]].match_score
    strong = by_id[ids["strong"]]
    assert (strong.batch_id, strong.original_filename, strong.external_id) == (batch, "alex.pdf", "ext-1")
    assert strong.integer_score == int(strong.match_score.overall_score + 0.5)
    assert strong.verdict == "STRONG_MATCH" and strong.recommendation == "Interview"
    assert "Senior Backend Engineer" in strong.executive_summary
    assert strong.strengths and strong.engine_version
    assert {m.name for m in strong.match_results_summary.skills.matches} >= {"Python", "PostgreSQL"}
    python = next(m for m in strong.match_results_summary.skills.matches if m.name == "Python")
    assert python.evidence and STRONG[python.evidence[0].start : python.evidence[0].end] == "Python"
    assert by_id[ids["weak"]].gaps

    # Statistics over the whole batch: four scored, two refused by the engine, one refused by ingest.
    scores = [r.match_score.overall_score for r in results]
    stats = full.summary_stats
    assert (stats.total_candidates, stats.successful_matches, stats.error_count) == (7, 4, 3)
    assert stats.average_score == pytest.approx(round(sum(scores) / 4, 1))
    assert (stats.highest_score, stats.lowest_score) == (max(scores), min(scores))
    assert stats.candidates_above_70 == sum(s >= 70 for s in scores)
    assert stats.candidates_above_80 == sum(s >= 80 for s in scores)
    assert stats.candidates_above_90 == sum(s >= 90 for s in scores)

    # Pages of two, and a page past the end: the same order, the same whole-batch statistics.
    paged = []
    for skip in (0, 2, 4):
        page = await env.stub.ListResults(pb.ListResultsRequest(batch_id=batch, skip=skip, limit=2))
        assert page.summary_stats == stats and page.total_results == 4
        paged.extend(page.results)
    assert paged == results

    assert [(e.candidate_id, e.reason) for e in full.errors] == sorted(
        [(ids["sparse"], "cv_too_sparse"), (ids["empty"], "no_extractable_text"), (encrypted, "pdf_encrypted")]
    )
    assert {e.filename for e in full.errors} == {"hello.txt", "blank.txt", ""}

    got = await env.stub.GetResult(pb.GetResultRequest(candidate_id=ids["strong"]))
    assert got.result == strong and not got.HasField("error")
    refused = await env.stub.GetResult(pb.GetResultRequest(candidate_id=ids["sparse"]))
    assert not refused.HasField("result")
    assert (refused.error.reason, refused.error.filename) == ("cv_too_sparse", "hello.txt")

    # One event per outcome on the MATCHER stream, carrying ids and scores only.
    events = await env.matcher_events(batch)
    matched = {p.candidate_id: p for _, _, p in events if isinstance(p, matcher_events.CandidateMatched)}
    failed = {p.candidate_id: p for _, _, p in events if isinstance(p, matcher_events.CandidateMatchFailed)}
    assert len(events) == 6
    assert set(matched) == set(by_id)
    for cid, ev in matched.items():
        assert (ev.overall_score, ev.verdict, ev.account_id) == (
            by_id[cid].match_score.overall_score,
            by_id[cid].verdict,
            7,
        )
    assert {cid: ev.reason for cid, ev in failed.items()} == {
        ids["sparse"]: "cv_too_sparse",
        ids["empty"]: "no_extractable_text",
    }
    for _, headers, _ in events:
        assert headers["ce-type"].startswith("cvmatch.api.matcher.v1.")
        assert headers["Nats-Msg-Id"] == headers["ce-id"]

    # The parsed job description is cached under its content hash.
    sha = hashlib.sha256(JD.encode()).hexdigest()
    assert await env.pool.fetchval("SELECT count(*) FROM job_profiles WHERE sha256 = $1", sha) == 1


async def test_second_batch_with_the_same_job_reuses_the_parsed_job(matcher_env: MatcherEnv) -> None:
    env = matcher_env
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    text = JD + "\nOur office is in Leeds.\n"
    for batch in (first, second):
        env.ingest.add_job(batch, text, job_id="job-leeds")
        await env.publish_ingested(batch, env.ingest.add_candidate(batch, STRONG, "alex.pdf"))
    await env.settled()
    sha = hashlib.sha256(text.encode()).hexdigest()
    assert await env.pool.fetchval("SELECT count(*) FROM job_profiles WHERE sha256 = $1", sha) == 1
    a = (await env.stub.ListResults(pb.ListResultsRequest(batch_id=first))).results[0]
    b = (await env.stub.ListResults(pb.ListResultsRequest(batch_id=second))).results[0]
    assert a.match_score == b.match_score and a.match_results_summary == b.match_results_summary


async def test_redelivered_event_gives_one_result_and_one_event(matcher_env: MatcherEnv) -> None:
    env = matcher_env
    batch = str(uuid.uuid4())
    env.ingest.add_job(batch, JD)
    cid = env.ingest.add_candidate(batch, STRONG, "alex.pdf")
    eid = await env.publish_ingested(batch, cid)
    # The same event again past JetStream's deduplication (another Nats-Msg-Id, the same ce-id) ...
    await env.publish_ingested(batch, cid, event_id=eid, msg_id=f"{eid}-again")
    # ... and the same candidate under a new event id, as a re-driving producer would send it.
    await env.publish_ingested(batch, cid)
    await env.settled()
    await env.publish_ingested(batch, cid)
    await env.settled()

    assert await env.pool.fetchval("SELECT count(*) FROM match_results WHERE candidate_id = $1", uuid.UUID(cid)) == 1
    rows = await env.pool.fetch("SELECT payload FROM outbox WHERE subject = 'matcher.candidate.matched'")
    assert sum(matcher_events.CandidateMatched.FromString(r["payload"]).candidate_id == cid for r in rows) == 1
    events = await env.matcher_events(batch)
    assert [(s, p.candidate_id) for s, _, p in events] == [("matcher.candidate.matched", cid)]
    listed = await env.stub.ListResults(pb.ListResultsRequest(batch_id=batch))
    assert listed.total_results == 1 and listed.summary_stats.total_candidates == 1


async def test_present_in_a_cv_is_the_day_its_batch_was_submitted(matcher_env: MatcherEnv) -> None:
    env = matcher_env
    current = STRONG.replace("Jan 2017 - Dec 2024", "Jan 2019 - Present").replace(
        "Mar 2014 - Dec 2016", "Mar 2017 - Dec 2018")
    years: dict[str, float] = {}
    for submitted in ("2021-01-10", "2025-01-10"):
        batch = str(uuid.uuid4())
        env.ingest.add_job(batch, JD)
        first = env.ingest.add_candidate(batch, current, "alex.pdf")
        await env.publish_ingested(batch, first, batch_created=dt.datetime.fromisoformat(f"{submitted}T09:00:00+00:00"))
        await env.settled()
        # A later event of the same batch naming another day changes nothing: the batch's day was recorded.
        second = env.ingest.add_candidate(batch, current, "alex-again.pdf")
        await env.publish_ingested(batch, second, batch_created=dt.datetime(2030, 1, 1, tzinfo=dt.UTC))
        await env.settled()
        listed = await env.stub.ListResults(pb.ListResultsRequest(batch_id=batch))
        assert listed.total_results == 2
        assert listed.results[0].years_of_experience == listed.results[1].years_of_experience
        years[submitted] = listed.results[0].years_of_experience
    # Mar 2017 to the submission day: about 3.8 years in January 2021, four more in January 2025.
    assert 3.5 <= years["2021-01-10"] <= 4.1, years
    assert years["2025-01-10"] - years["2021-01-10"] == pytest.approx(4.0, abs=0.2), years


async def test_ingest_outage_is_retried_and_unknown_candidates_fail(matcher_env: MatcherEnv) -> None:
    env = matcher_env
    batch = str(uuid.uuid4())
    env.ingest.add_job(batch, JD)
    cid = env.ingest.add_candidate(batch, STRONG, "alex.pdf")
    # More failures than the client's own retries: the first delivery is nak'ed, a redelivery succeeds.
    env.ingest.outages[cid] = 5
    ghost = str(uuid.uuid4())
    await env.publish_ingested(batch, cid)
    await env.publish_ingested(batch, ghost)
    await env.settled()
    assert env.ingest.text_calls[cid] > 5
    listed = await env.stub.ListResults(pb.ListResultsRequest(batch_id=batch))
    assert [r.candidate_id for r in listed.results] == [cid]
    assert listed.summary_stats.error_count == 1
    events = await env.matcher_events(batch)
    assert sorted((s, p.candidate_id) for s, _, p in events) == [
        ("matcher.candidate.failed", ghost),
        ("matcher.candidate.matched", cid),
    ]
    missing = await env.stub.GetResult(pb.GetResultRequest(candidate_id=ghost))
    assert missing.error.reason == "candidate_not_found"


async def test_score_candidates_over_grpc_stores_nothing(matcher_env: MatcherEnv) -> None:
    env = matcher_env
    before = await env.pool.fetchval("SELECT count(*) FROM match_results")
    resp = await env.stub.ScoreCandidates(
        pb.ScoreCandidatesRequest(
            job_description_text=JD,
            candidates=[
                pb.CandidateText(candidate_id="w", filename="w.txt", text=WEAK),
                pb.CandidateText(candidate_id="s", filename="s.txt", text=STRONG),
                pb.CandidateText(candidate_id="x", filename="x.txt", text=SPARSE),
                pb.CandidateText(candidate_id="m", filename="m.txt", text=MEDIUM),
            ],
        )
    )
    assert resp.job_title == "Senior Backend Engineer"
    assert [r.candidate_id for r in resp.results] == ["s", "m", "w"]
    assert resp.results[0].original_filename == "s.txt"
    assert [(e.candidate_id, e.filename, e.reason) for e in resp.errors] == [("x", "x.txt", "cv_too_sparse")]
    assert await env.pool.fetchval("SELECT count(*) FROM match_results") == before

    # A must-have skill the CV lacks caps the score (the requirements reach the engine).
    knocked = await env.stub.ScoreCandidates(
        pb.ScoreCandidatesRequest(
            job_description_text=JD,
            requirements_json=json.dumps({"must_have_skills": ["Rust"]}),
            candidates=[pb.CandidateText(candidate_id="s", text=STRONG)],
        )
    )
    assert knocked.results[0].knocked_out
    assert knocked.results[0].match_score.overall_score < resp.results[0].match_score.overall_score

    bad = await _error(
        env.stub.ScoreCandidates(
            pb.ScoreCandidatesRequest(
                job_description_text=JD,
                requirements_json='{"weights": {"luck": 1}}',
                candidates=[pb.CandidateText(candidate_id="s", text=STRONG)],
            )
        )
    )
    assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT and "weights.luck" in (bad.details() or "")
    empty = await _error(
        env.stub.ScoreCandidates(
            pb.ScoreCandidatesRequest(
                job_description_text=" ", candidates=[pb.CandidateText(candidate_id="s", text=STRONG)]
            )
        )
    )
    assert empty.code() == grpc.StatusCode.INVALID_ARGUMENT and "job_description_text" in (empty.details() or "")
    none = await _error(env.stub.ScoreCandidates(pb.ScoreCandidatesRequest(job_description_text=JD)))
    assert none.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_parse_job_over_grpc(matcher_env: MatcherEnv) -> None:
    env = matcher_env
    resp = await env.stub.ParseJob(pb.ParseJobRequest(job_description_text=JD))
    assert resp.sha256 == hashlib.sha256(JD.encode()).hexdigest()
    assert resp.job_title == "Senior Backend Engineer"
    assert {"Python", "PostgreSQL", "Docker", "Kubernetes"} <= set(resp.required_skills)
    assert "Terraform" in resp.preferred_skills and "Terraform" not in resp.required_skills
    assert resp.minimum_years == 5.0
    assert json.loads(resp.profile_json)["job_title"] == resp.job_title
    assert await env.stub.ParseJob(pb.ParseJobRequest(job_description_text=JD)) == resp

    unusable = await _error(env.stub.ParseJob(pb.ParseJobRequest(job_description_text="Hello, we are hiring.")))
    assert unusable.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_reads_reject_bad_ids_and_unknown_candidates(matcher_env: MatcherEnv) -> None:
    env = matcher_env
    bad = await _error(env.stub.ListResults(pb.ListResultsRequest(batch_id="batch_abc")))
    assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT
    neg = await _error(env.stub.ListResults(pb.ListResultsRequest(batch_id=str(uuid.uuid4()), skip=-1)))
    assert neg.code() == grpc.StatusCode.INVALID_ARGUMENT
    empty = await env.stub.ListResults(pb.ListResultsRequest(batch_id=str(uuid.uuid4())))
    assert empty.total_results == 0 and empty.summary_stats.total_candidates == 0
    missing = await _error(env.stub.GetResult(pb.GetResultRequest(candidate_id=str(uuid.uuid4()))))
    assert missing.code() == grpc.StatusCode.NOT_FOUND
