"""A batch from 202 to completed / failed, driven by the matcher's events as the matcher publishes them;
and the reconciler re-driving what a lost message or a crash left behind."""

from __future__ import annotations

import uuid

from nats.aio.client import Client as NatsClient

from cvmatch.api.billing.v1 import billing_service_pb2 as billing_pb
from cvmatch.api.ingest.v1 import batch_pb2 as B
from cvmatch.api.ingest.v1 import events_pb2 as ingest_events
from cvmatch.api.ingest.v1 import ingest_service_pb2 as pb
from cvmatch.testing import filegen

from .conftest import (
    BillingStub,
    IngestFactory,
    RunningIngest,
    balance,
    candidates,
    eventually,
    header,
    new_account,
    outbox_payloads,
    publish_match_failed,
    publish_matched,
    submit,
)


def _cv(i: int) -> tuple[str, str, str, bytes]:
    return ("cv", f"cv{i}.txt", "text/plain", "\n".join(filegen.cv_lines(f"Person {i}")).encode())


async def _ingested(ingest: RunningIngest, batch_id: str, n: int) -> list[B.Candidate]:
    async def check() -> list[B.Candidate] | None:
        cs = [c for c in await candidates(ingest.stub, batch_id) if c.outcome == B.CANDIDATE_OUTCOME_INGESTED]
        return cs if len(cs) == n else None

    result: list[B.Candidate] = await eventually(check)
    return result


async def _status(ingest: RunningIngest, batch_id: str, status: int) -> B.Batch:
    async def check() -> B.Batch | None:
        b = (await ingest.stub.GetBatch(pb.GetBatchRequest(batch_id=batch_id))).batch
        return b if b.status == status else None

    result: B.Batch = await eventually(check)
    return result


async def test_batch_completes_from_matcher_events(start_ingest: IngestFactory, billing_stub: BillingStub,
                                                   nc: NatsClient) -> None:
    ingest = await start_ingest()
    account = await new_account(billing_stub, 10)
    files = [_cv(0), _cv(1), _cv(2), ("cv", "x.png", "image/png", b"\x89PNG")]
    resp = await submit(ingest.stub, header(account, webhook_url="https://hooks.example.com/x"), files)
    bid = resp.batch.batch_id
    ingested = await _ingested(ingest, bid, 3)
    # Each ingested event carries ids and the content hash the matcher caches on, never text.
    events = [ingest_events.CandidateIngested.FromString(p)
              for p in await outbox_payloads(ingest.db, "ingest.candidate.ingested")]
    assert sorted(e.candidate_id for e in events) == sorted(c.candidate_id for c in ingested)
    assert {e.job_description_sha256 for e in events} == {resp.batch.job_description_sha256}
    assert all(e.account_id == account and e.batch_id == bid and len(e.content_sha256) == 64 for e in events)
    # And when the batch was submitted: the matcher reads "Present" in the CVs as that day.
    assert {e.batch_create_time.ToDatetime() for e in events} == {resp.batch.create_time.ToDatetime()}

    a, b, c = ingested
    await publish_matched(nc, a.candidate_id, bid, account)
    await publish_matched(nc, a.candidate_id, bid, account)  # the matcher answering twice counts once
    await publish_match_failed(nc, b.candidate_id, bid, account)
    mid = await _status(ingest, bid, B.BATCH_STATUS_PROCESSING)
    await eventually(lambda: _processed(ingest, bid, 3))
    await publish_matched(nc, c.candidate_id, bid, account)
    done = await _status(ingest, bid, B.BATCH_STATUS_COMPLETED)
    assert mid.total_candidates == 4
    assert (done.processed_candidates, done.failed_candidates, done.pending_candidates) == (4, 2, 0)
    assert done.complete_time.seconds > 0 and not done.error_message
    outcomes = [x.outcome for x in await candidates(ingest.stub, bid)]
    assert outcomes == [B.CANDIDATE_OUTCOME_MATCHED, B.CANDIDATE_OUTCOME_MATCH_FAILED, B.CANDIDATE_OUTCOME_MATCHED,
                        B.CANDIDATE_OUTCOME_UNSUPPORTED_TYPE]
    completed = [ingest_events.BatchCompleted.FromString(p)
                 for p in await outbox_payloads(ingest.db, "ingest.batch.completed")]
    assert len(completed) == 1
    assert (completed[0].matched_candidates, completed[0].failed_candidates) == (2, 2)
    assert completed[0].webhook_url == "https://hooks.example.com/x"
    # Billing captured the two matched CVs from the same events and released the rest on completion.

    async def settled() -> billing_pb.GetBalanceResponse | None:
        bal = await balance(billing_stub, account)
        return bal if bal.reserved == 0 and bal.captured == 2 else None

    bal = await eventually(settled)
    assert bal.available == 8


async def _processed(ingest: RunningIngest, batch_id: str, n: int) -> bool:
    b = (await ingest.stub.GetBatch(pb.GetBatchRequest(batch_id=batch_id))).batch
    return b.processed_candidates == n


async def test_batch_fails_when_no_file_is_readable(start_ingest: IngestFactory, billing_stub: BillingStub) -> None:
    ingest = await start_ingest()
    account = await new_account(billing_stub, 10)
    scan = filegen.pdf_image_only()
    resp = await submit(ingest.stub, header(account), [("cv", "scan1.pdf", "application/pdf", scan),
                                                       ("cv", "scan2.pdf", "application/pdf", scan)])
    assert not resp.skipped_files  # they look like PDFs: refused only after extraction
    failed = await _status(ingest, resp.batch.batch_id, B.BATCH_STATUS_FAILED)
    assert failed.error_message == "None of the 2 candidate(s) could be matched (2 no_extractable_text)."
    assert [c.outcome for c in await candidates(ingest.stub, resp.batch.batch_id)] == [
        B.CANDIDATE_OUTCOME_NO_EXTRACTABLE_TEXT] * 2
    assert len(await outbox_payloads(ingest.db, "ingest.candidate.failed")) == 2
    assert len(await outbox_payloads(ingest.db, "ingest.batch.failed")) == 1

    async def released() -> bool:
        bal = await balance(billing_stub, account)
        return bal.reserved == 0 and bal.available == 10

    await eventually(released)


async def test_reconciler_redrives_lost_messages_and_abandoned_admissions(
        start_ingest: IngestFactory, billing_stub: BillingStub, nc: NatsClient) -> None:
    ingest = await start_ingest(INGEST_STUCK_SECONDS="0.5", INGEST_RECONCILE_INTERVAL_SECONDS="0.2",
                                INGEST_ADMISSION_TIMEOUT_SECONDS="0.5")
    account = await new_account(billing_stub, 20)
    # 1. The matcher never answered (its message was lost): ingested is published again.
    resp = await submit(ingest.stub, header(account), [_cv(0), _cv(1)])
    bid = resp.batch.batch_id
    ingested = await _ingested(ingest, bid, 2)

    async def republished() -> bool:
        return len(await outbox_payloads(ingest.db, "ingest.candidate.ingested")) >= 4

    await eventually(republished, timeout=10)
    for c in ingested:
        await publish_matched(nc, c.candidate_id, bid, account)
    await _status(ingest, bid, B.BATCH_STATUS_COMPLETED)

    # 2. The last verdict was stored but the batch never settled: the reconciler settles it.
    resp2 = await submit(ingest.stub, header(account), [_cv(2)])
    await _ingested(ingest, resp2.batch.batch_id, 1)
    await ingest.db.execute("UPDATE candidates SET outcome = 'matched' WHERE batch_id = $1",
                            uuid.UUID(resp2.batch.batch_id))
    done = await _status(ingest, resp2.batch.batch_id, B.BATCH_STATUS_COMPLETED)
    assert (done.processed_candidates, done.failed_candidates) == (1, 0)

    # 3. A process died between reserving credits and writing its batch: the reservation is released.
    lost = str(uuid.uuid4())
    before = await balance(billing_stub, account)
    await billing_stub.ReserveCredits(billing_pb.ReserveCreditsRequest(account_id=account, batch_id=lost, credits=3))
    await ingest.db.execute(
        "INSERT INTO submissions (batch_id, account_id, request_sha256) VALUES ($1, $2, 'x')",
        uuid.UUID(lost), account)

    async def released() -> bool:
        bal = await balance(billing_stub, account)
        gone = await ingest.db.fetchval("SELECT count(*) FROM submissions WHERE batch_id = $1", uuid.UUID(lost))
        return bal.available == before.available and gone == 0

    await eventually(released, timeout=10)


async def test_a_file_that_keeps_losing_its_worker_gets_parse_error(
        start_ingest: IngestFactory, billing_stub: BillingStub, nc: NatsClient) -> None:
    ingest = await start_ingest()
    account = await new_account(billing_stub, 10)
    resp = await submit(ingest.stub, header(account), [_cv(0)])
    bid = resp.batch.batch_id
    (good,) = await _ingested(ingest, bid, 1)
    # A candidate whose previous claims all died with their worker (attempts at the limit, lease run out).
    poison = uuid.uuid4()
    async with ingest.db.acquire() as conn, conn.transaction():
        await conn.execute("UPDATE batches SET total_candidates = 2 WHERE batch_id = $1", uuid.UUID(bid))
        await conn.execute(
            """INSERT INTO candidates (candidate_id, batch_id, account_id, position, original_filename, outcome,
                                       attempts, lease_until)
               VALUES ($1, $2, $3, 1, 'poison.pdf', 'pending', 3, now() - interval '1 second')""",
            poison, uuid.UUID(bid), account)
        await conn.execute("INSERT INTO spool (candidate_id, kind, data) VALUES ($1, 'file', $2)", poison, b"%PDF-")
    await publish_matched(nc, good.candidate_id, bid, account)
    done = await _status(ingest, bid, B.BATCH_STATUS_COMPLETED)
    assert (done.processed_candidates, done.failed_candidates) == (2, 1)
    last = (await candidates(ingest.stub, bid))[1]
    assert last.outcome == B.CANDIDATE_OUTCOME_PARSE_ERROR
    assert last.outcome_message == "The file could not be processed after 3 attempts."


async def test_hostile_files_fail_alone_and_the_batch_goes_on(start_ingest: IngestFactory, billing_stub: BillingStub,
                                                              nc: NatsClient) -> None:
    ingest = await start_ingest(INGEST_EXTRACTION_PROCESSES="2")
    account = await new_account(billing_stub, 10)
    pdf = "application/pdf"
    files = [
        ("cv", "bomb.pdf", pdf, filegen.pdf_text_ops_bomb(2_000_000)),
        ("cv", "nested.pdf", pdf, filegen.pdf_deeply_nested(20_000)),
        ("cv", "locked.pdf", pdf, filegen.pdf_pages([filegen.cv_lines()], encrypt=("pw", "owner"))),
        ("cv", "open.pdf", pdf, filegen.pdf_pages([filegen.cv_lines("Olga")], encrypt=("", "owner"))),
        ("cv", "table.docx", "", filegen.docx_with_table()),
        _cv(9),
    ]
    resp = await submit(ingest.stub, header(account), files)
    bid = resp.batch.batch_id
    assert not resp.skipped_files

    async def extracted() -> list[B.Candidate] | None:
        cs = await candidates(ingest.stub, bid)
        return cs if all(c.outcome != B.CANDIDATE_OUTCOME_PENDING for c in cs) else None

    cs = await eventually(extracted, timeout=60)
    good = [c for c in cs if c.outcome == B.CANDIDATE_OUTCOME_INGESTED]
    assert [c.original_filename for c in good] == ["open.pdf", "table.docx", "cv9.txt"]
    outcomes = {c.original_filename: c.outcome for c in cs}
    assert outcomes["bomb.pdf"] == B.CANDIDATE_OUTCOME_LIMITS_EXCEEDED
    assert outcomes["nested.pdf"] in (B.CANDIDATE_OUTCOME_PARSE_ERROR, B.CANDIDATE_OUTCOME_LIMITS_EXCEEDED,
                                      B.CANDIDATE_OUTCOME_NO_EXTRACTABLE_TEXT)
    assert outcomes["locked.pdf"] == B.CANDIDATE_OUTCOME_PDF_ENCRYPTED
    for c in good:
        await publish_matched(nc, c.candidate_id, bid, account)
    done = await _status(ingest, bid, B.BATCH_STATUS_COMPLETED)
    assert (done.processed_candidates, done.failed_candidates) == (6, 3)


async def test_a_candidate_the_matcher_never_answers_gets_match_failed_after_bounded_republishes(
        start_ingest: IngestFactory, billing_stub: BillingStub, nc: NatsClient) -> None:
    ingest = await start_ingest(INGEST_STUCK_SECONDS="0.3", INGEST_RECONCILE_INTERVAL_SECONDS="0.1",
                                INGEST_MAX_REPUBLISHES="2")
    account = await new_account(billing_stub, 10)
    resp = await submit(ingest.stub, header(account), [_cv(0), _cv(1)])
    bid = resp.batch.batch_id
    answered, lost = await _ingested(ingest, bid, 2)
    await publish_matched(nc, answered.candidate_id, bid, account)
    # The other one is never answered: published again twice, then given up, and the batch settles.
    done = await _status(ingest, bid, B.BATCH_STATUS_COMPLETED)
    assert (done.processed_candidates, done.failed_candidates) == (2, 1)
    outcome = {c.candidate_id: c for c in await candidates(ingest.stub, bid)}[lost.candidate_id]
    assert outcome.outcome == B.CANDIDATE_OUTCOME_MATCH_FAILED
    assert "No match result arrived" in outcome.outcome_message
    published = [ingest_events.CandidateIngested.FromString(p)
                 for p in await outbox_payloads(ingest.db, "ingest.candidate.ingested")]
    assert sum(e.candidate_id == lost.candidate_id for e in published) == 3  # the first + 2 republishes
    assert all(e.batch_create_time.seconds > 0 for e in published)  # republished events carry it too
    failed = [ingest_events.CandidateFailed.FromString(p)
              for p in await outbox_payloads(ingest.db, "ingest.candidate.failed")]
    assert [e.candidate_id for e in failed if e.batch_id == bid] == [lost.candidate_id]
