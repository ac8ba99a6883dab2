"""CreateBatch against the real service: every input type, the skipped list, limits, credits (402)."""

from __future__ import annotations

import zipfile

import grpc
import pytest

from cvmatch.api.ingest.v1 import batch_pb2
from cvmatch.api.ingest.v1 import ingest_service_pb2 as pb
from cvmatch.testing import filegen

from .conftest import (
    BillingStub,
    IngestFactory,
    RunningIngest,
    balance,
    candidates,
    error_of,
    eventually,
    header,
    new_account,
    submit,
)

B = batch_pb2  # outcomes and enums

PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


@pytest.fixture
async def ingest(start_ingest: IngestFactory) -> RunningIngest:
    """One ingest service for the submission tests (each test uses its own account)."""
    return await start_ingest(INGEST_MAX_REQUEST_BYTES=str(3_000_000))


async def _settled(ingest: RunningIngest, batch_id: str) -> list[batch_pb2.Candidate]:
    """Waits until no candidate is still PENDING (extraction done) and returns them."""

    async def done() -> list[batch_pb2.Candidate] | None:
        cs = await candidates(ingest.stub, batch_id)
        return cs if all(c.outcome != B.CANDIDATE_OUTCOME_PENDING for c in cs) else None

    result: list[batch_pb2.Candidate] = await eventually(done)
    return result


async def test_files_mix_good_and_bad(ingest: RunningIngest, billing_stub: BillingStub) -> None:
    account = await new_account(billing_stub, 50)
    cv_txt = "\n".join(filegen.cv_lines("Tom Txt")).encode("latin-1", errors="replace")
    files = [
        ("cv", "alice.pdf", PDF, filegen.cv_pdf(2, "Alice")),
        ("cv", "bob.docx", DOCX, filegen.docx_from_lines(filegen.cv_lines("Bob"))),
        ("cv", "tom.txt", "text/plain", cv_txt),
        ("cv", "photo.png", "image/png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 100),
        ("cv", "fake.pdf", PDF, b"this is not a pdf at all"),
        ("cv", "huge.pdf", PDF, b"%PDF-1.4\n" + b"0" * 400_000),
    ]
    resp = await submit(ingest.stub, header(account), files)
    b = resp.batch
    assert b.status == B.BATCH_STATUS_PENDING and b.total_candidates == 6 and not resp.idempotent_replay
    skipped = {s.filename: s.outcome for s in resp.skipped_files}
    assert skipped == {"photo.png": B.CANDIDATE_OUTCOME_UNSUPPORTED_TYPE,
                       "fake.pdf": B.CANDIDATE_OUTCOME_INVALID_FILE_CONTENT,
                       "huge.pdf": B.CANDIDATE_OUTCOME_FILE_TOO_LARGE}
    assert all(s.reason for s in resp.skipped_files)
    # Only the three usable files are charged (held until matched).
    bal = await balance(billing_stub, account)
    assert (bal.available, bal.reserved) == (47, 3)
    cs = await _settled(ingest, b.batch_id)
    assert [c.original_filename for c in cs] == [f[1] for f in files]
    assert [c.position for c in cs] == list(range(6))
    page = await ingest.stub.ListCandidates(pb.ListCandidatesRequest(batch_id=b.batch_id, account_id=account,
                                                                     skip=2, limit=2))
    assert ([c.original_filename for c in page.candidates], page.total) == (["tom.txt", "photo.png"], 6)
    assert page.candidates[1].outcome_message == "Unsupported file type '.png'."
    assert [c.outcome for c in cs[:3]] == [B.CANDIDATE_OUTCOME_INGESTED] * 3
    text = await ingest.stub.GetCandidateText(pb.GetCandidateTextRequest(candidate_id=cs[1].candidate_id))
    assert "Bob" in text.text and "Experience" in text.text
    assert len(cs[0].content_sha256) == 64
    # The spool is gone once everything is extracted.
    assert await ingest.db.fetchval("SELECT count(*) FROM spool") == 0
    got = await ingest.stub.GetBatch(pb.GetBatchRequest(batch_id=b.batch_id, account_id=account))
    assert got.batch.status == B.BATCH_STATUS_PROCESSING
    assert (got.batch.processed_candidates, got.batch.failed_candidates) == (3, 3)
    # Another account cannot see it.
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await ingest.stub.GetBatch(pb.GetBatchRequest(batch_id=b.batch_id, account_id=account + 1))
    assert error_of(exc.value)[:2] == ("NOT_FOUND", 404)


async def test_zip_with_folders_junk_and_hostile_members(ingest: RunningIngest, billing_stub: BillingStub) -> None:
    account = await new_account(billing_stub, 50)
    archive = filegen.zip_with_methods([
        ("team/a/alice.pdf", filegen.cv_pdf(1, "Alice"), zipfile.ZIP_DEFLATED),
        ("team/b/bob.txt", "\n".join(filegen.cv_lines("Bob")).encode(), zipfile.ZIP_DEFLATED),
        ("__MACOSX/team/._alice.pdf", b"junk", zipfile.ZIP_STORED),
        ("team/.DS_Store", b"junk", zipfile.ZIP_STORED),
        ("team/notes.exe", b"MZ" + b"\x00" * 50, zipfile.ZIP_STORED),
        ("team/carol.txt", b"carol " * 500, zipfile.ZIP_BZIP2),
    ])
    resp = await submit(ingest.stub, header(account, B.INPUT_TYPE_ZIP_FILE),
                        [("zip", "cvs.zip", "application/zip", archive)])
    assert resp.batch.total_candidates == 4
    skipped = {s.filename: s.outcome for s in resp.skipped_files}
    assert skipped["team/notes.exe"] == B.CANDIDATE_OUTCOME_UNSUPPORTED_TYPE
    assert skipped["team/carol.txt"] == B.CANDIDATE_OUTCOME_UNSUPPORTED_TYPE  # bzip2: only stored / deflate
    assert (await balance(billing_stub, account)).reserved == 2
    cs = await _settled(ingest, resp.batch.batch_id)
    assert [(c.original_filename, c.outcome) for c in cs][:2] == [
        ("team/a/alice.pdf", B.CANDIDATE_OUTCOME_INGESTED), ("team/b/bob.txt", B.CANDIDATE_OUTCOME_INGESTED)]


async def test_zip_bomb_is_refused_whole(ingest: RunningIngest, billing_stub: BillingStub) -> None:
    account = await new_account(billing_stub, 50)
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await submit(ingest.stub, header(account, B.INPUT_TYPE_ZIP_FILE),
                     [("zip", "bomb.zip", "application/zip", filegen.zip_overlapping_bomb(10, 256 * 1024))])
    reason, status, body = error_of(exc.value)
    assert (reason, status) == ("INVALID_FILE_CONTENT", 400)
    assert body["details"]["fields"]["zip_file"]
    assert await ingest.db.fetchval("SELECT count(*) FROM batches") == 0


async def test_csv_file_with_bom_and_multiline_fields_and_csv_text(ingest: RunningIngest,
                                                                   billing_stub: BillingStub) -> None:
    account = await new_account(billing_stub, 50)
    long_cv = "\n".join(filegen.cv_lines("Dana"))
    data = filegen.csv_bytes([["c1", "Dana", long_cv, "dana.pdf"], ["c2", "Eve", "too short", ""]], bom=True)
    resp = await submit(ingest.stub, header(account, B.INPUT_TYPE_CSV_FILE), [("csv", "c.csv", "text/csv", data)])
    assert resp.batch.total_candidates == 2 and not resp.skipped_files
    cs = await _settled(ingest, resp.batch.batch_id)
    assert [(c.original_filename, c.external_id, c.outcome) for c in cs] == [
        ("dana.pdf", "c1", B.CANDIDATE_OUTCOME_INGESTED), ("c2", "c2", B.CANDIDATE_OUTCOME_NO_EXTRACTABLE_TEXT)]
    text = await ingest.stub.GetCandidateText(pb.GetCandidateTextRequest(candidate_id=cs[0].candidate_id))
    assert text.text.splitlines()[:2] == ["Dana", "Senior Software Engineer"]

    as_text = filegen.csv_bytes([["x9", "Finn", long_cv, "finn.txt"]], bom=False).decode()
    resp2 = await submit(ingest.stub, header(account, B.INPUT_TYPE_CSV_TEXT, csv_text=as_text))
    assert resp2.batch.total_candidates == 1
    assert resp2.batch.input_type == B.INPUT_TYPE_CSV_TEXT

    bad = b'candidate_id,name,resume_text,filename\r\n1,A,"unterminated,x.pdf\r\n'
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await submit(ingest.stub, header(account, B.INPUT_TYPE_CSV_FILE), [("csv", "bad.csv", "text/csv", bad)])
    assert error_of(exc.value)[:2] == ("INVALID_FILE_CONTENT", 400)


async def test_single_pdf_rules(ingest: RunningIngest, billing_stub: BillingStub) -> None:
    account = await new_account(billing_stub, 50)
    good = await submit(ingest.stub, header(account, B.INPUT_TYPE_SINGLE_PDF),
                        [("pdf", "cv.pdf", PDF, filegen.cv_pdf(1))])
    assert good.batch.total_candidates == 1
    cases = [
        (("pdf", "cv.docx", DOCX, filegen.docx_from_lines(["x"])), "INVALID_INPUT"),
        (("pdf", "cv.pdf", "text/plain", filegen.cv_pdf(1)), "INVALID_INPUT"),
        (("pdf", "cv.pdf", PDF, b"GIF89a not a pdf"), "INVALID_FILE_CONTENT"),
        (("pdf", "cv.pdf", PDF, b"%PDF-" + b"0" * 400_000), "PAYLOAD_TOO_LARGE"),
    ]
    for file, reason in cases:
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await submit(ingest.stub, header(account, B.INPUT_TYPE_SINGLE_PDF), [file])
        assert error_of(exc.value)[0] == reason, file[1:3]
        assert error_of(exc.value)[1] == (413 if reason == "PAYLOAD_TOO_LARGE" else 400)


async def test_job_description_as_file_and_its_limits(ingest: RunningIngest, billing_stub: BillingStub) -> None:
    account = await new_account(billing_stub, 50)
    cv = ("cv", "a.txt", "text/plain", "\n".join(filegen.cv_lines()).encode())
    jd_lines = ["Senior Backend Engineer", "Requirements", "Python, Kubernetes, PostgreSQL, gRPC and Terraform."]
    resp = await submit(ingest.stub, header(account, job_description_text=""),
                        [cv, ("job_description", "jd.docx", DOCX, filegen.docx_from_lines(jd_lines))])
    jd = await ingest.stub.GetJobDescription(pb.GetJobDescriptionRequest(batch_id=resp.batch.batch_id))
    assert jd.text.splitlines()[0] == "Senior Backend Engineer" and len(jd.sha256) == 64
    assert resp.batch.job_description_sha256 == jd.sha256

    problems = [
        (header(account, job_description_text=""), [cv], "INVALID_INPUT", "job_description_text"),
        (header(account, job_description_text="x" * 50_001), [cv], "INVALID_INPUT", "job_description_text"),
        (header(account, job_description_text=""), [cv, ("job_description", "jd.png", "image/png", b"\x89PNG")],
         "INVALID_INPUT", "job_description_file"),
        (header(account, job_description_text=""), [cv, ("job_description", "jd.pdf", PDF, filegen.pdf_image_only())],
         "INVALID_FILE_CONTENT", "job_description_file"),
        (header(account), [], "INVALID_INPUT", "cvs"),
        (header(account), [("zip", "x.zip", "application/zip", b"PK")], "INVALID_INPUT", "zip_file"),
        (header(account, max_candidates=1), [cv, cv], "INVALID_INPUT", "cvs"),
        (header(account, B.INPUT_TYPE_AWS_S3, source_config_json="{}"), [], "INVALID_INPUT",
         "source_config_json.bucket"),
    ]
    for h, files, reason, field in problems:
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await submit(ingest.stub, h, files)
        got_reason, status, body = error_of(exc.value)
        assert (got_reason, status) == (reason, 400), (field, body)
        assert field in body["details"]["fields"], body
    assert "'bucket' is required" in body["message"]


async def test_request_size_limit_is_413_and_leaves_nothing(ingest: RunningIngest, billing_stub: BillingStub) -> None:
    account = await new_account(billing_stub, 50)
    files = [("cv", f"cv{i}.txt", "text/plain", b"a" * 250_000) for i in range(13)]  # 3.25 MB > 3 MB
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await submit(ingest.stub, header(account), files)
    assert error_of(exc.value)[:2] == ("PAYLOAD_TOO_LARGE", 413)
    assert await ingest.db.fetchval("SELECT count(*) FROM batches") == 0


async def test_insufficient_credits_is_402_and_nothing_is_stored(ingest: RunningIngest,
                                                                billing_stub: BillingStub) -> None:
    account = await new_account(billing_stub, 2)
    files = [("cv", f"cv{i}.txt", "text/plain", "\n".join(filegen.cv_lines(f"P{i}")).encode()) for i in range(3)]
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await submit(ingest.stub, header(account, idempotency_key="k-402", request_sha256="a" * 64), files)
    reason, status, body = error_of(exc.value)
    assert (reason, status) == ("INSUFFICIENT_CREDITS", 402)
    assert body["details"]["required"] == "3"
    for table in ("batches", "candidates", "spool", "submissions", "outbox"):
        assert await ingest.db.fetchval(f"SELECT count(*) FROM {table}") == 0, table
    bal = await balance(billing_stub, account)
    assert (bal.available, bal.reserved) == (2, 0)
    # The key was not burnt: the same request succeeds once the balance allows it (one file fewer).
    ok = await submit(ingest.stub, header(account, idempotency_key="k-402", request_sha256="b" * 64), files[:2])
    assert ok.batch.total_candidates == 2


async def test_every_file_refused_fails_the_batch_at_once(ingest: RunningIngest, billing_stub: BillingStub) -> None:
    account = await new_account(billing_stub, 5)
    resp = await submit(ingest.stub, header(account), [("cv", "a.png", "image/png", b"\x89PNG....")])
    assert resp.batch.status == B.BATCH_STATUS_FAILED
    assert "None of the 1 candidate(s)" in resp.batch.error_message
    assert [s.outcome for s in resp.skipped_files] == [B.CANDIDATE_OUTCOME_UNSUPPORTED_TYPE]
    assert len(await _failed_events(ingest)) >= 1
    assert (await balance(billing_stub, account)).available == 5


async def _failed_events(ingest: RunningIngest) -> list[str]:
    rows = await ingest.db.fetch("SELECT subject FROM outbox WHERE subject = 'ingest.batch.failed'")
    return [r["subject"] for r in rows]


async def test_extract_text_without_a_batch(ingest: RunningIngest) -> None:
    ok = await ingest.stub.ExtractText(pb.ExtractTextRequest(filename="cv.pdf", content_type=PDF,
                                                             data=filegen.cv_pdf(1, "Zed")))
    assert ok.outcome == B.CANDIDATE_OUTCOME_INGESTED and "Zed" in ok.text
    enc = await ingest.stub.ExtractText(pb.ExtractTextRequest(
        filename="cv.pdf", data=filegen.pdf_pages([filegen.cv_lines()], encrypt=("secret", "owner"))))
    assert enc.outcome == B.CANDIDATE_OUTCOME_PDF_ENCRYPTED and enc.text == ""
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await ingest.stub.GetCandidateText(pb.GetCandidateTextRequest(candidate_id="nope"))
    assert exc.value.code() == grpc.StatusCode.NOT_FOUND
