"""CreateBatch from remote sources through ingest's gRPC API: a real S3-compatible server (rclone), a local
Drive v3 server, a real PostgreSQL and SQLite; errors, a part-way failure, re-runs, and secrets kept out."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import grpc
import pytest
from nats.aio.client import Client as NatsClient

from cvmatch.api.ingest.v1 import batch_pb2 as B
from cvmatch.api.ingest.v1 import ingest_service_pb2 as pb
from cvmatch.testing import filegen
from cvmatch.testing.drive import DriveServer
from cvmatch.testing.s3 import S3Server
from cvmatch.testing.servers import free_port

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
    publish_matched,
    submit,
)

PASSWORD = "Sup3r-Secret-Pw-for-tests"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


@pytest.fixture
async def ingest(start_ingest: IngestFactory, s3: S3Server, drive: DriveServer, tmp_path: Path) -> RunningIngest:
    """Ingest with a credentials file (a good and a bad S3 key), the local Drive API and a SQLite directory."""
    creds = tmp_path / "credentials.json"
    creds.write_text(json.dumps({"*": {
        "hr-bucket": {"kind": "aws", "secret": {"access_key_id": s3.access_key, "secret_access_key": s3.secret_key}},
        "stale-key": {"kind": "aws", "secret": {"access_key_id": s3.access_key,
                                                "secret_access_key": "wrong-" + s3.secret_key}},
    }}))
    (tmp_path / "sqlite").mkdir()
    return await start_ingest(
        INGEST_SOURCE_CREDENTIALS_FILE=str(creds), INGEST_SOURCE_DRIVE_API_URL=drive.api_url,
        INGEST_SOURCE_DRIVE_TOKEN_URL=drive.token_url, INGEST_SOURCE_SQLITE_DIRS=str(tmp_path / "sqlite"),
        INGEST_SOURCE_MAX_ATTEMPTS="1", INGEST_SOURCE_CONNECT_TIMEOUT_SECONDS="2",
        INGEST_SOURCE_READ_TIMEOUT_SECONDS="10")


def _txt(name: str) -> bytes:
    return "\n".join(filegen.cv_lines(name)).encode()


def _cv_files() -> dict[str, tuple[str, bytes]]:
    return {"jane.pdf": ("application/pdf", filegen.cv_pdf(1, "Jane Doe")),
            "team/john.docx": (DOCX, filegen.docx_from_lines(filegen.cv_lines("John Roe"))),
            "ann.txt": ("text/plain", _txt("Ann Lee"))}


async def _settled(ingest: RunningIngest, batch_id: str) -> list[B.Candidate]:
    async def done() -> list[B.Candidate] | None:
        cs = await candidates(ingest.stub, batch_id)
        return cs if cs and all(c.outcome != B.CANDIDATE_OUTCOME_PENDING for c in cs) else None

    result: list[B.Candidate] = await eventually(done)
    return result


async def _status(ingest: RunningIngest, batch_id: str, status: int) -> B.Batch:
    async def check() -> B.Batch | None:
        b = (await ingest.stub.GetBatch(pb.GetBatchRequest(batch_id=batch_id))).batch
        return b if b.status == status else None

    result: B.Batch = await eventually(check)
    return result


async def _stored_text(ingest: RunningIngest) -> str:
    """Every row ingest holds (batches, candidates, submissions, spool, outbox payloads) as one string."""
    parts = []
    for table in ("batches", "candidates", "submissions"):
        parts += [str(r[0]) for r in await ingest.db.fetch(f"SELECT t::text FROM {table} t")]
    for r in await ingest.db.fetch("SELECT data FROM spool UNION ALL SELECT payload FROM outbox"):
        parts.append(bytes(r[0]).decode("latin-1"))
    return "\n".join(parts)


def _source_header(account: int, input_type: int, config: Mapping[str, object], **fields: object) -> pb.BatchHeader:
    return header(account, input_type, source_config_json=json.dumps(dict(config)), **fields)


async def test_s3_batch_completes_like_uploads_then_reruns_skip_what_was_matched(
        ingest: RunningIngest, billing_stub: BillingStub, nc: NatsClient, s3: S3Server) -> None:
    account = await new_account(billing_stub, 20)
    bucket = f"cvs-{uuid.uuid4().hex[:10]}"
    files = _cv_files()
    for key, (_, data) in files.items():
        s3.put(bucket, key, data)
    s3.put(bucket, "photo.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 50)
    config = {"bucket": bucket, "endpoint_url": s3.endpoint_url, "credential": "hr-bucket"}

    resp = await submit(ingest.stub, _source_header(account, B.INPUT_TYPE_AWS_S3, config, job_id="job-7"))
    bid = resp.batch.batch_id
    assert resp.batch.total_candidates == 4
    assert [(s.filename, s.outcome) for s in resp.skipped_files] == [
        ("photo.png", B.CANDIDATE_OUTCOME_UNSUPPORTED_TYPE)]
    assert (await balance(billing_stub, account)).reserved == 3
    cs = await _settled(ingest, bid)
    ingested = [c for c in cs if c.outcome == B.CANDIDATE_OUTCOME_INGESTED]
    assert sorted(c.external_id for c in ingested) == sorted(files)

    # The same files uploaded give the same texts (same hashes) as read from the bucket.
    upload = await submit(ingest.stub, header(account), [("cv", k.rsplit("/", 1)[-1], ct, d)
                                                         for k, (ct, d) in files.items()])
    uploaded = await _settled(ingest, upload.batch.batch_id)
    assert sorted(c.content_sha256 for c in uploaded) == sorted(c.content_sha256 for c in ingested)

    for c in ingested:
        await publish_matched(nc, c.candidate_id, bid, account)
    done = await _status(ingest, bid, B.BATCH_STATUS_COMPLETED)
    assert (done.processed_candidates, done.failed_candidates) == (4, 1)
    stored = json.loads(await ingest.db.fetchval("SELECT source_config_json FROM batches WHERE batch_id = $1",
                                                 uuid.UUID(bid)))
    assert stored["bucket"] == bucket and stored["credential"] == "hr-bucket"

    # Re-run of the same job with one new file: the three matched ones are skipped and not charged.
    s3.put(bucket, "zoe.txt", _txt("Zoe Park"))
    # Billing captures and releases from the events asynchronously: let it settle the first batch (3
    # captured) before measuring what the re-run reserves.
    async def settled() -> object:
        bal = await balance(billing_stub, account)
        return bal if bal.captured == 3 else None

    before = await eventually(settled)
    again = await submit(ingest.stub, _source_header(account, B.INPUT_TYPE_AWS_S3, config, job_id="job-7"))
    skipped = {s.filename: s.outcome for s in again.skipped_files}
    assert skipped == {"jane.pdf": B.CANDIDATE_OUTCOME_ALREADY_MATCHED, "team/john.docx":
                       B.CANDIDATE_OUTCOME_ALREADY_MATCHED, "ann.txt": B.CANDIDATE_OUTCOME_ALREADY_MATCHED,
                       "photo.png": B.CANDIDATE_OUTCOME_UNSUPPORTED_TYPE}
    assert all("rescore" in s.reason for s in again.skipped_files if s.outcome == B.CANDIDATE_OUTCOME_ALREADY_MATCHED)
    after = await balance(billing_stub, account)
    assert after.reserved - before.reserved == 1
    rerun = await _settled(ingest, again.batch.batch_id)
    fresh = [c for c in rerun if c.outcome == B.CANDIDATE_OUTCOME_INGESTED]
    assert [c.external_id for c in fresh] == ["zoe.txt"]
    await publish_matched(nc, fresh[0].candidate_id, again.batch.batch_id, account)
    rdone = await _status(ingest, again.batch.batch_id, B.BATCH_STATUS_COMPLETED)
    assert (rdone.processed_candidates, rdone.failed_candidates) == (5, 1)  # already_matched is not a failure

    # Another job, or rescore: true, matches everything again.
    other = await submit(ingest.stub, _source_header(account, B.INPUT_TYPE_AWS_S3, config, job_id="job-8"))
    assert [s.filename for s in other.skipped_files] == ["photo.png"]
    rescore = await submit(ingest.stub, _source_header(account, B.INPUT_TYPE_AWS_S3, {**config, "rescore": True},
                                                       job_id="job-7"))
    assert [s.filename for s in rescore.skipped_files] == ["photo.png"]

    text = await _stored_text(ingest)
    assert s3.secret_key not in text
    for r in (resp, again, other, rescore, done, rdone):
        assert s3.secret_key not in str(r)


async def test_database_batches_postgres_and_sqlite(ingest: RunningIngest, billing_stub: BillingStub,
                                                    database_url: str, tmp_path: Path) -> None:
    account = await new_account(billing_stub, 20)
    cvs = {1: "\n".join(filegen.cv_lines("Jane Doe")), 2: "\n".join(filegen.cv_lines("John Roe"))}
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("CREATE TABLE applicants (id int, name text, resume_content text, position_id int)")
        await conn.executemany("INSERT INTO applicants VALUES ($1, $2, $3, 12345)",
                               [(i, t.splitlines()[0], t) for i, t in cvs.items()])
    finally:
        await conn.close()
    p = urlsplit(database_url)
    pg_url = urlunsplit(p._replace(netloc=f"{p.username}:{PASSWORD}@{p.hostname}:{p.port}"))
    query = "SELECT id, name, resume_content FROM applicants WHERE position_id = 12345 ORDER BY id"
    resp = await submit(ingest.stub, _source_header(
        account, B.INPUT_TYPE_DATABASE, {"type": "postgresql", "connection_string": pg_url, "query": query}))
    cs = await _settled(ingest, resp.batch.batch_id)
    assert [(c.external_id, c.outcome) for c in cs] == [("1", B.CANDIDATE_OUTCOME_INGESTED),
                                                        ("2", B.CANDIDATE_OUTCOME_INGESTED)]
    got = await ingest.stub.GetCandidateText(pb.GetCandidateTextRequest(candidate_id=cs[1].candidate_id))
    assert "John Roe" in got.text

    db = tmp_path / "sqlite" / "hr.db"
    with sqlite3.connect(db) as lite:
        lite.execute("CREATE TABLE people (id text, name text, cv text)")
        lite.executemany("INSERT INTO people VALUES (?, ?, ?)", [(f"p{i}", "x", t) for i, t in cvs.items()])
    resp2 = await submit(ingest.stub, _source_header(account, B.INPUT_TYPE_DATABASE, {
        "type": "sqlite", "connection_string": f"sqlite:///{db}", "query": "SELECT id, name, cv FROM people",
        "columns": {"resume_text": "cv"}}))
    cs2 = await _settled(ingest, resp2.batch.batch_id)
    assert [(c.external_id, c.outcome) for c in cs2] == [("p1", B.CANDIDATE_OUTCOME_INGESTED),
                                                         ("p2", B.CANDIDATE_OUTCOME_INGESTED)]
    assert {c.content_sha256 for c in cs2} == {c.content_sha256 for c in cs}

    text = await _stored_text(ingest)
    assert PASSWORD not in text and pg_url not in text
    assert PASSWORD not in str(resp) and PASSWORD not in str(cs)


async def test_drive_batch_and_a_failure_part_way_keeps_what_was_read(
        ingest: RunningIngest, billing_stub: BillingStub, drive: DriveServer) -> None:
    account = await new_account(billing_stub, 20)
    root = drive.add_folder("Applicants")
    drive.add_file("jane.pdf", filegen.cv_pdf(1, "Jane Doe"), "application/pdf", root)
    drive.add_google_doc("Mark Doc", root, docx=filegen.docx_from_lines(filegen.cv_lines("Mark Twain")), text="x")
    drive.add_file("ann.txt", _txt("Ann Lee"), "text/plain", root)
    token = drive.issue_token()
    resp = await submit(ingest.stub, _source_header(account, B.INPUT_TYPE_GOOGLE_DRIVE,
                                                    {"folder_id": root, "access_token": token}))
    cs = await _settled(ingest, resp.batch.batch_id)
    assert sorted(c.original_filename for c in cs if c.outcome == B.CANDIDATE_OUTCOME_INGESTED) == [
        "Mark Doc.docx", "ann.txt", "jane.pdf"]
    assert token not in await _stored_text(ingest) and token not in str(resp)

    # Media downloads start failing after one file: the first is kept, the rest are reported, one credit.
    broken = drive.add_folder("Broken")
    for name in ("a.txt", "b.txt", "c.txt"):
        drive.add_file(name, _txt(name), "text/plain", broken)
    drive.fail_media_after = drive._media_served + 1  # the counter spans the module's server
    before = await balance(billing_stub, account)
    try:
        part = await submit(ingest.stub, _source_header(account, B.INPUT_TYPE_GOOGLE_DRIVE,
                                                        {"folder_id": broken, "access_token": token}))
    finally:
        drive.fail_media_after = None
    assert [(s.filename, s.outcome) for s in part.skipped_files] == [
        ("b.txt", B.CANDIDATE_OUTCOME_SOURCE_ERROR), ("c.txt", B.CANDIDATE_OUTCOME_SOURCE_ERROR)]
    assert all("failed part-way" in s.reason for s in part.skipped_files)
    assert (await balance(billing_stub, account)).reserved - before.reserved == 1
    kept = await _settled(ingest, part.batch.batch_id)
    assert [c.outcome for c in kept] == [B.CANDIDATE_OUTCOME_INGESTED, B.CANDIDATE_OUTCOME_SOURCE_ERROR,
                                         B.CANDIDATE_OUTCOME_SOURCE_ERROR]


async def test_source_errors_fail_clearly_and_keep_no_credit(ingest: RunningIngest, billing_stub: BillingStub,
                                                             s3: S3Server, drive: DriveServer,
                                                             database_url: str) -> None:
    account = await new_account(billing_stub, 10)
    bucket = f"cvs-{uuid.uuid4().hex[:10]}"
    s3.put(bucket, "jane.txt", _txt("Jane"))
    empty = drive.add_folder("Empty")
    cases: list[tuple[int, dict[str, object], str, str]] = [
        (B.INPUT_TYPE_AWS_S3, {"bucket": bucket, "endpoint_url": f"http://127.0.0.1:{free_port()}",
                               "credential": "hr-bucket"}, "source_config_json", "reachable"),
        (B.INPUT_TYPE_AWS_S3, {"bucket": bucket, "endpoint_url": s3.endpoint_url, "credential": "stale-key"},
         "source_config_json", ""),
        (B.INPUT_TYPE_AWS_S3, {"bucket": bucket, "endpoint_url": s3.endpoint_url, "credential": "nope"},
         "source_config_json.credential", "nope"),
        (B.INPUT_TYPE_AWS_S3, {"endpoint_url": s3.endpoint_url}, "source_config_json.bucket", ""),
        (B.INPUT_TYPE_GOOGLE_DRIVE, {"folder_id": empty, "access_token": drive.issue_token()},
         "source_config_json", ""),
        (B.INPUT_TYPE_DATABASE, {"type": "postgresql", "connection_string": database_url,
                                 "query": "SELECT id, resume_text FROM no_such_table"}, "source_config_json", ""),
        (B.INPUT_TYPE_DATABASE, {"type": "postgresql", "connection_string": database_url,
                                 "query": "DELETE FROM applicants"}, "source_config_json.query", ""),
        (B.INPUT_TYPE_DATABASE, {"type": "oracle", "connection_string": database_url, "query": "SELECT 1"},
         "source_config_json.type", ""),
        (B.INPUT_TYPE_AWS_S3, {"bucket": bucket, "endpoint_url": s3.endpoint_url, "credential": "hr-bucket",
                               "rescore": "yes"}, "source_config_json.rescore", ""),
    ]
    for input_type, config, field, word in cases:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await submit(ingest.stub, _source_header(account, input_type, config, idempotency_key=uuid.uuid4().hex))
        code, http, body = error_of(info.value)
        assert (code, http) == ("INVALID_INPUT", 400), (config, body)
        assert f'"{field}":' in json.dumps(body), (config, body)  # the field the error names
        assert word.lower() in body["message"].lower(), body
        assert s3.secret_key not in json.dumps(body) and database_url not in json.dumps(body)
    bal = await balance(billing_stub, account)
    assert (bal.available, bal.reserved) == (10, 0)
    assert await ingest.db.fetchval("SELECT count(*) FROM batches WHERE account_id = $1", account) == 0
    assert await ingest.db.fetchval("SELECT count(*) FROM submissions WHERE account_id = $1", account) == 0
