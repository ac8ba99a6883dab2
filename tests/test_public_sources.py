"""Candidate sources (issue 8) end to end through the public REST API: Envoy, the whole stack, a real
S3-compatible server (rclone) and real PostgreSQL / SQLite databases. Each source batch must give the same
results (file names and scores) as the same CVs uploaded as a ZIP; bad configs are 400 naming the field;
no secret comes back in any response; a re-run with nothing new is accepted and completes."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import grpc
import httpx
import nats
import nats.js.errors
import pytest

from cvmatch.api.billing.v1 import account_pb2
from cvmatch.api.billing.v1 import billing_service_pb2 as billing
from cvmatch.api.billing.v1 import billing_service_pb2_grpc as billing_grpc
from cvmatch.testing import filegen
from cvmatch.testing.drive import DriveServer
from cvmatch.testing.s3 import S3Server
from cvmatch.testing.stack import Stack

JD = ("Senior Software Engineer. Required: Python, Kubernetes, PostgreSQL, gRPC. Preferred: Terraform, React. "
      "5+ years building distributed systems; BSc or MSc in Computer Science.")
PASSWORD = "Db-Pa55word-that-must-never-leak"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
# Every credential the module hands to a source; the last test looks for each in logs and events.
USED_SECRETS: list[str] = []


def _txt(name: str) -> bytes:
    return "\n".join(filegen.cv_lines(name)).encode()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, s3: S3Server, drive: DriveServer) -> Iterator[Stack]:
    work = tmp_path_factory.mktemp("public-sources")
    creds = work / "credentials.json"
    creds.write_text(json.dumps({"*": {"hr-bucket": {"kind": "aws", "secret": {
        "access_key_id": s3.access_key, "secret_access_key": s3.secret_key}}}}))
    (work / "sqlite").mkdir()
    s = Stack(work / "stack", extra_env={
        "INGEST_SOURCE_CREDENTIALS_FILE": str(creds), "INGEST_SOURCE_SQLITE_DIRS": str(work / "sqlite"),
        "INGEST_SOURCE_MAX_ATTEMPTS": "1", "INGEST_SOURCE_CONNECT_TIMEOUT_SECONDS": "2",
        "INGEST_SOURCE_DRIVE_API_URL": drive.api_url, "INGEST_SOURCE_DRIVE_TOKEN_URL": drive.token_url}).start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def client(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.url, timeout=60.0) as c:
        yield c


@pytest.fixture(scope="module")
def key(stack: Stack) -> str:
    with grpc.insecure_channel(stack.address("billing")) as channel:
        stub = billing_grpc.BillingServiceStub(channel)
        acct = stub.CreateAccount(billing.CreateAccountRequest(
            name=f"sources-{time.time_ns()}", plan=account_pb2.PLAN_ENTERPRISE, initial_credits=500),
            timeout=10).account.account_id
        secret: str = stub.CreateApiKey(billing.CreateApiKeyRequest(
            account_id=acct, name="test", scopes=["match:execute"]), timeout=10).secret
    return secret


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _submit(client: httpx.Client, key: str, input_type: str, secrets: tuple[str, ...] = (),
            **fields: str) -> dict[str, Any]:
    r = client.post("/api/v1/batch-jobs", headers=_auth(key),
                    data={"input_type": input_type, "job_description_text": JD, **fields})
    assert r.status_code == 202, r.text
    for s in secrets:
        assert s not in r.text
    body: dict[str, Any] = r.json()
    return body


def _upload_zip(client: httpx.Client, key: str, entries: list[tuple[str, bytes]]) -> dict[str, Any]:
    r = client.post("/api/v1/batch-jobs", headers=_auth(key),
                    data={"input_type": "ZIP_FILE", "job_description_text": JD},
                    files={"candidate_source_file": ("cvs.zip", filegen.zip_of(entries), "application/zip")})
    assert r.status_code == 202, r.text
    body: dict[str, Any] = r.json()
    return body


def _finished(client: httpx.Client, key: str, batch_id: str, secrets: tuple[str, ...] = (),
              timeout: float = 120.0) -> tuple[dict[str, Any], dict[str, Any]]:
    """Polls the status until terminal, then reads the results; no secret in either body."""
    deadline = time.monotonic() + timeout
    while True:
        r = client.get(f"/api/v1/batch-jobs/{batch_id}/status", headers=_auth(key))
        assert r.status_code == 200, r.text
        status = r.json()
        if status["status"] in ("completed", "failed") or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert status["status"] == "completed", status
    results = client.get(f"/api/v1/batch-jobs/{batch_id}/results?skip=0&limit=100", headers=_auth(key))
    assert results.status_code == 200, results.text
    for s in secrets:
        assert s not in r.text and s not in results.text
    body: dict[str, Any] = results.json()
    return status, body


def _scored(results: dict[str, Any]) -> list[tuple[str, float]]:
    return sorted((i["original_filename"], i["match_score"]["overall_score"])
                  for i in results["processed_items"] if not i["error"])


def test_s3_batch_matches_like_a_zip_and_a_rerun_with_nothing_new_is_accepted(
        client: httpx.Client, key: str, s3: S3Server) -> None:
    files = {"jane.pdf": filegen.cv_pdf(1, "Jane Doe"),
             "team/john.docx": filegen.docx_from_lines(filegen.cv_lines("John Roe")),
             "ann.txt": _txt("Ann Lee")}
    bucket = f"cvs-{uuid.uuid4().hex[:10]}"
    for name, data in files.items():
        s3.put(bucket, name, data)
    secrets = (s3.secret_key,)
    USED_SECRETS.extend(secrets)
    config = json.dumps({"bucket": bucket, "endpoint_url": s3.endpoint_url, "credential": "hr-bucket"})
    job = f"job-{uuid.uuid4().hex[:8]}"
    batch = _submit(client, key, "AWS_S3", secrets, source_config_json=config, job_id=job)
    assert batch["total_candidates"] == 3
    _, from_s3 = _finished(client, key, batch["batch_job_id"], secrets)
    zipped = _upload_zip(client, key, list(files.items()))
    _, from_zip = _finished(client, key, zipped["batch_job_id"])
    assert len(_scored(from_s3)) == 3
    assert _scored(from_s3) == _scored(from_zip)

    # The same source again for the same job: everything was matched already. Accepted (202) and completed
    # with no new result (and no new charge), not refused as "nothing usable".
    again = _submit(client, key, "AWS_S3", secrets, source_config_json=config, job_id=job)
    status, rerun = _finished(client, key, again["batch_job_id"], secrets)
    assert status["total_candidates"] == 3 and status["processed_candidates"] == 3
    assert _scored(rerun) == []


def test_postgresql_and_sqlite_batches_match_like_a_zip(client: httpx.Client, key: str, stack: Stack) -> None:
    cvs = {"jane.txt": _txt("Jane Doe"), "john.txt": _txt("John Roe")}
    assert stack.postgres is not None
    hr_url = stack.postgres.create_database(f"hr_{uuid.uuid4().hex[:8]}")

    async def fill() -> None:
        conn = await asyncpg.connect(hr_url)
        try:
            await conn.execute("CREATE TABLE applicants (id int, name text, resume_content text, filename text, "
                               "position_id int)")
            await conn.executemany("INSERT INTO applicants VALUES ($1, $2, $3, $4, 12345)",
                                   [(i, n, t.decode(), n) for i, (n, t) in enumerate(cvs.items())])
        finally:
            await conn.close()

    asyncio.run(fill())
    p = urlsplit(hr_url)
    pg_url = urlunsplit(p._replace(netloc=f"{p.username}:{PASSWORD}@{p.hostname}:{p.port}"))
    query = "SELECT id, name, resume_content, filename FROM applicants WHERE position_id = 12345 ORDER BY id"
    columns = {"resume_text": "resume_content", "filename": "filename"}
    secrets = (PASSWORD, pg_url)
    USED_SECRETS.extend(secrets)
    pg = _submit(client, key, "DATABASE", secrets, source_config_json=json.dumps(
        {"type": "postgresql", "connection_string": pg_url, "query": query, "columns": columns}))
    _, from_pg = _finished(client, key, pg["batch_job_id"], secrets)

    sqlite_dir = Path(stack.env["INGEST_SOURCE_SQLITE_DIRS"])
    db = sqlite_dir / f"hr-{uuid.uuid4().hex[:6]}.db"
    with sqlite3.connect(db) as lite:
        lite.execute("CREATE TABLE people (id text, name text, cv text, file text)")
        lite.executemany("INSERT INTO people VALUES (?, ?, ?, ?)",
                         [(f"p{i}", n, t.decode(), n) for i, (n, t) in enumerate(cvs.items())])
    lite_url = f"sqlite:///{db}"
    lt = _submit(client, key, "DATABASE", (lite_url,), source_config_json=json.dumps({
        "type": "sqlite", "connection_string": lite_url, "query": "SELECT id, name, cv, file FROM people",
        "columns": {"resume_text": "cv", "filename": "file"}}))
    _, from_sqlite = _finished(client, key, lt["batch_job_id"], (lite_url,))

    zipped = _upload_zip(client, key, list(cvs.items()))
    _, from_zip = _finished(client, key, zipped["batch_job_id"])
    assert len(_scored(from_zip)) == 2
    assert _scored(from_pg) == _scored(from_zip) == _scored(from_sqlite)


def test_google_drive_batch_matches_like_a_zip(client: httpx.Client, key: str, drive: DriveServer) -> None:
    docx = filegen.docx_from_lines(filegen.cv_lines("Mark Twain"))
    folder = drive.add_folder("Applicants")
    drive.add_file("jane.pdf", filegen.cv_pdf(1, "Jane Doe"), "application/pdf", folder)
    # A Google Doc is exported as DOCX: the same file as the DOCX in the ZIP below.
    drive.add_google_doc("Mark Doc", folder, docx=docx, text="\n".join(filegen.cv_lines("Mark Twain")))
    drive.add_file("ann.txt", _txt("Ann Lee"), "text/plain", folder)
    token = drive.issue_token()
    USED_SECRETS.append(token)
    batch = _submit(client, key, "GOOGLE_DRIVE", (token,),
                    source_config_json=json.dumps({"folder_id": folder, "access_token": token}))
    assert batch["total_candidates"] == 3
    _, from_drive = _finished(client, key, batch["batch_job_id"], (token,))
    zipped = _upload_zip(client, key, [("jane.pdf", filegen.cv_pdf(1, "Jane Doe")), ("Mark Doc.docx", docx),
                                       ("ann.txt", _txt("Ann Lee"))])
    _, from_zip = _finished(client, key, zipped["batch_job_id"])
    assert len(_scored(from_drive)) == 3
    assert _scored(from_drive) == _scored(from_zip)


@pytest.mark.parametrize(("input_type", "config", "field"), [
    ("AWS_S3", {"prefix": "cvs/"}, "source_config_json.bucket"),
    ("DATABASE", {"type": "postgresql", "connection_string": f"postgresql://u:{PASSWORD}@127.0.0.1/x",
                  "query": "DELETE FROM applicants"}, "source_config_json.query"),
    ("DATABASE", {"type": "oracle", "connection_string": f"oracle://u:{PASSWORD}@h/x", "query": "SELECT 1"},
     "source_config_json.type"),
])
def test_bad_source_config_is_400_naming_the_field_without_secrets(
        client: httpx.Client, key: str, input_type: str, config: dict[str, str], field: str) -> None:
    r = client.post("/api/v1/batch-jobs", headers=_auth(key), data={
        "input_type": input_type, "job_description_text": JD, "source_config_json": json.dumps(config)})
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["error"]["code"] == "INVALID_INPUT"
    assert body["error"]["details"]["field"] == field, body
    assert PASSWORD not in r.text


def test_sync_accepts_a_float_timeout_and_answers_200_within_it(client: httpx.Client, key: str) -> None:
    rows = "".join(f'{i},P{i},"{_txt(f"Person {i}").decode()}",p{i}.txt\n' for i in range(30))
    started = time.monotonic()
    r = client.post("/api/batch/sync", headers=_auth(key), json={
        "input_type": "csv_file", "job_text": JD, "max_candidates": 50.0, "timeout": 1.0,
        "csv_text": "candidate_id,name,resume_text,filename\n" + rows})
    elapsed = time.monotonic() - started
    assert r.status_code == 200, r.text
    assert r.json()["status"] in ("processing", "completed")
    assert elapsed < 15, elapsed
    too_many = client.post("/api/batch/sync", headers=_auth(key), json={
        "input_type": "csv_file", "job_text": JD, "max_candidates": 2, "timeout": 1,
        "csv_text": "candidate_id,name,resume_text,filename\n" + rows})
    assert too_many.status_code == 400, too_many.text
    assert too_many.json()["error"]["details"]["field"] == "csv_text"


def test_no_secret_in_any_log_or_event(stack: Stack) -> None:
    """Runs last: every service's log and every event on every stream, searched for each credential."""
    assert len(USED_SECRETS) >= 4, USED_SECRETS  # the source tests above ran and registered theirs
    logs = {p.name: p.read_bytes() for p in Path(stack.dir).glob("*.log")}
    assert any(name.startswith("ingest") for name in logs)
    for name, text in logs.items():
        for secret in USED_SECRETS:
            assert secret.encode() not in text, f"a credential appears in {name}"

    async def events() -> list[bytes]:
        nc = await nats.connect(stack.env["NATS_URL"])
        try:
            js = nc.jetstream()
            out: list[bytes] = []
            for stream in ("INGEST", "MATCHER", "BILLING", "NOTIFIER"):
                info = await js.stream_info(stream)
                if not info.state.messages:
                    continue
                for seq in range(info.state.first_seq, info.state.last_seq + 1):
                    try:
                        msg = await js.get_msg(stream, seq)
                    except nats.js.errors.NotFoundError:  # a sequence the stream no longer holds
                        continue
                    out.append((msg.data or b"") + json.dumps(msg.headers or {}).encode())
            return out
        finally:
            await nc.close()

    messages = asyncio.run(events())
    assert len(messages) > 10
    for raw in messages:
        for secret in USED_SECRETS:
            assert secret.encode() not in raw
