"""The public REST API through the real Envoy and the whole stack (one Stack for the module).

The first group checks what the gateway decides alone (authentication, multipart parsing and limits,
form validation, the OpenAPI document); the second runs the seeds' flows end to end (submit, poll,
results) through ingest, the matcher and billing.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import httpx
import jsonschema
import pytest
import yaml
from google.api import annotations_pb2
from google.protobuf import descriptor_pb2
from openapi_spec_validator import validate

from cvmatch.api.billing.v1 import account_pb2
from cvmatch.api.billing.v1 import billing_service_pb2 as billing
from cvmatch.api.billing.v1 import billing_service_pb2_grpc as billing_grpc
from cvmatch.testing import filegen
from cvmatch.testing.edge import render_envoy_config
from cvmatch.testing.stack import Stack

REPO = Path(__file__).resolve().parents[1]
JD = ("Senior Software Engineer. Required: Python, Kubernetes, PostgreSQL, gRPC. Preferred: Terraform, React. "
      "5+ years building distributed systems; BSc or MSc in Computer Science.")



def cv_text(name: str) -> str:
    """A CV as CSV resume_text: long enough for the matcher (a one-line text is refused as too sparse)."""
    return "\n".join(filegen.cv_lines(name))


@pytest.fixture(scope="module")
def client(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.url, timeout=60.0) as c:
        yield c


def _account(stack: Stack, name: str, plan: str = "free", credits: int = 100, scopes: str = "match:execute",
             **custom: int) -> tuple[int, str]:
    """A new account and key, made through billing's internal gRPC API (as an operator tool would)."""
    with grpc.insecure_channel(stack.address("billing")) as channel:
        stub = billing_grpc.BillingServiceStub(channel)
        acct = stub.CreateAccount(billing.CreateAccountRequest(
            name=f"{name}-{time.time_ns()}", plan=account_pb2.Plan.Value(f"PLAN_{plan.upper()}"),
            initial_credits=credits), timeout=10).account.account_id
        if custom:
            stub.SetPlan(billing.SetPlanRequest(account_id=acct, plan=account_pb2.PLAN_CUSTOM,
                                                custom_limits=account_pb2.PlanLimits(**custom)), timeout=10)
        secret = stub.CreateApiKey(billing.CreateApiKeyRequest(account_id=acct, name="test",
                                                               scopes=scopes.split(",")), timeout=10).secret
    return acct, secret


@pytest.fixture(scope="module")
def key(stack: Stack) -> str:
    return _account(stack, "public-api", plan="enterprise", credits=500, scopes="match:execute,cvdeepmatch")[1]


@pytest.fixture(scope="module")
def openapi(client: httpx.Client) -> dict[str, Any]:
    doc: dict[str, Any] = client.get("/openapi.json").json()
    return doc


def _conforms(doc: dict[str, Any], r: httpx.Response, verb: str, template: str) -> dict[str, Any]:
    """The response matches the OpenAPI document's schema for its operation and status."""
    responses = doc["paths"][template][verb]["responses"]
    assert str(r.status_code) in responses, (template, r.status_code)
    schema = responses[str(r.status_code)]["content"]["application/json"]["schema"]
    jsonschema.validate(r.json(), {**schema, "components": doc["components"]},
                        cls=jsonschema.Draft202012Validator)
    body: dict[str, Any] = r.json()
    return body


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _error(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert body["error"]["code"] == code, body
    assert body["detail"] == body["error"]["message"]
    assert r.headers["x-request-id"] and body["request_id"] == r.headers["x-request-id"]
    # SkillSync's envelope fields too.
    assert body["success"] is False and body["meta"]["request_id"] == body["request_id"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body["meta"]["timestamp"])
    return body


# ------------------------------------------------------------------------------ what the gateway decides


def test_uploads_need_a_key(client: httpx.Client) -> None:
    for path in ("/api/v1/batch-jobs", "/api/batch/submit", "/api/batch/sync", "/api/match",
                 "/api/v1/cvdeepmatch/submit"):
        r = client.post(path, files={"cvs": ("a.txt", b"x", "text/plain")}, data={"input_type": "ZIP_FILE"})
        _error(r, 401, "INVALID_API_KEY")


def test_missing_and_unknown_fields_are_400_naming_the_field(client: httpx.Client, key: str) -> None:
    zip_file = {"candidate_source_file": ("r.zip", filegen.zip_of([("a.txt", b"Python")]), "application/zip")}
    r = client.post("/api/v1/batch-jobs", headers=_auth(key), files=zip_file,
                    data={"job_description_text": JD})
    body = _error(r, 400, "INVALID_INPUT")
    assert body["error"]["message"] == "The 'input_type' field is required"
    assert body["error"]["details"]["field"] == "input_type"
    assert "zip_file" in body["error"]["details"]["expected"]
    assert int(r.headers["x-ratelimit-limit"]) > 0 and "x-ratelimit-remaining" in r.headers
    r = client.post("/api/v1/batch-jobs", headers=_auth(key), files=zip_file,
                    data={"input_type": "RAR_FILE", "job_description_text": JD})
    assert "RAR_FILE" in _error(r, 400, "INVALID_INPUT")["error"]["message"]
    r = client.post("/api/v1/batch-jobs", headers=_auth(key),
                    data={"input_type": "AWS_S3", "job_description_text": JD, "source_config_json": "{bucket"})
    assert _error(r, 400, "INVALID_INPUT")["error"]["details"]["field"] == "source_config_json"
    r = client.post("/api/v1/batch-jobs", headers=_auth(key), data={"input_type": "CSV_FILE"})
    fields = _error(r, 400, "INVALID_INPUT")["error"]["details"]["fields"]
    assert set(fields) == {"job_description_text", "candidate_source_file"}
    r = client.post("/api/match", headers={"X-API-Key": key}, data={"jd_text": JD})
    assert _error(r, 400, "INVALID_INPUT")["error"]["details"]["field"] == "cvs"
    r = client.post("/api/batch/sync", headers=_auth(key),
                    json={"input_type": "csv_file", "job_text": JD, "max_candidates": "many"})
    assert "max_candidates" in _error(r, 400, "INVALID_INPUT")["error"]["details"]["fields"]


def test_a_6_mb_cv_is_413(client: httpx.Client, key: str) -> None:
    big = b"%PDF-1.4\n" + b"0" * (6 * 1024 * 1024)
    r = client.post("/api/match", headers={"X-API-Key": key}, data={"jd_text": JD},
                    files=[("cvs", ("big.pdf", big, "application/pdf"))])
    body = _error(r, 413, "PAYLOAD_TOO_LARGE")
    assert "big.pdf" in body["error"]["message"] and body["error"]["details"]["fields"] == {"cvs": body["detail"]}
    r = client.post("/api/v1/cvdeepmatch/submit", headers={"X-API-Key": key}, data={"jd_text": JD},
                    files={"cv_file": ("big.pdf", big, "application/pdf")})
    _error(r, 413, "PAYLOAD_TOO_LARGE")


def test_malformed_multipart_is_400(client: httpx.Client, key: str) -> None:
    body = b'--XyZ\r\nContent-Disposition: form-data; name="jd_text"\r\n\r\nNurse\r\n--XyZ\r\nContent-Disp'
    r = client.post("/api/match", headers={"X-API-Key": key, "Content-Type": "multipart/form-data; boundary=XyZ"},
                    content=body)
    assert "closing boundary" in _error(r, 400, "INVALID_INPUT")["error"]["message"]
    r = client.post("/api/match", headers={"X-API-Key": key, "Content-Type": "text/plain"}, content=b"hello")
    assert _error(r, 400, "INVALID_INPUT")["error"]["details"]["field"] == "Content-Type"


def test_deep_match_validation_errors(client: httpx.Client, stack: Stack, key: str) -> None:
    url = "/api/v1/cvdeepmatch/submit"
    pdf = filegen.cv_pdf(1)
    r = client.post(url, headers={"X-API-Key": key}, data={"requirements_config": "[not json"})
    fields = _error(r, 400, "INVALID_INPUT")["error"]["details"]["fields"]
    assert set(fields) == {"job_description_text", "requirements_config", "cv_file"}
    r = client.post(url, headers={"X-API-Key": key}, data={"jd_text": JD}, files={"cv_file": (
        "cv.docx", filegen.docx_from_lines(["Jane"]),
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document")})
    assert _error(r, 400, "INVALID_INPUT")["error"]["details"]["fields"].keys() == {"cv_file"}
    r = client.post(url, headers={"X-API-Key": key}, data={"jd_text": JD},
                    files={"cv_file": ("cv.pdf", b"GIF89a not a pdf", "application/pdf")})
    _error(r, 400, "INVALID_FILE_CONTENT")
    r = client.post(url, headers={"X-API-Key": key}, data={"jd_text": JD, "webhook_url": "http://example.com/h"},
                    files={"cv_file": ("cv.pdf", pdf, "application/pdf")})
    _error(r, 400, "INSECURE_WEBHOOK_URL")
    _, read_only = _account(stack, "deep-read-only", scopes="match:execute")
    r = client.post(url, headers={"X-API-Key": read_only}, data={"jd_text": JD},
                    files={"cv_file": ("cv.pdf", pdf, "application/pdf")})
    _error(r, 403, "MISSING_PERMISSION")
    _, limited = _account(stack, "deep-limited", scopes="cvdeepmatch", requests_per_minute=2, requests_per_day=1000,
                          burst=2, concurrent_requests=5, max_cvs_per_job=10)
    statuses = [client.get("/api/v1/cvdeepmatch/nothing", headers={"X-API-Key": limited}) for _ in range(3)]
    limited_r = statuses[-1]
    _error(limited_r, 429, "RATE_LIMIT_EXCEEDED")
    assert int(limited_r.headers["retry-after"]) >= 1


def test_private_webhook_url_is_refused(client: httpx.Client, key: str) -> None:
    r = client.post("/api/v1/cvdeepmatch/submit", headers={"X-API-Key": key},
                    data={"jd_text": JD, "webhook_url": "https://127.0.0.1/hook"},
                    files={"cv_file": ("cv.pdf", filegen.cv_pdf(1), "application/pdf")})
    _error(r, 400, "PRIVATE_WEBHOOK_URL")


def test_openapi_document_is_valid_and_covers_every_route(client: httpx.Client) -> None:
    r = client.get("/openapi.json")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    doc = r.json()
    validate(doc)
    # Every route Envoy transcodes (from the descriptor set it loads) must be in the document.
    envoy = yaml.safe_load(render_envoy_config(1, 2, {"gateway": [("127.0.0.1", 3)]}))
    transcoder = next(f for f in envoy["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
                      ["typed_config"]["http_filters"] if f["name"].endswith("grpc_json_transcoder"))
    services = set(transcoder["typed_config"]["services"])
    fds = descriptor_pb2.FileDescriptorSet.FromString((REPO / "deploy/envoy/cvmatch.pb").read_bytes())
    routes = set()
    for file in fds.file:
        for svc in file.service:
            if f"{file.package}.{svc.name}" not in services:
                continue
            for m in svc.method:
                if m.options.HasExtension(annotations_pb2.http):
                    rule = m.options.Extensions[annotations_pb2.http]
                    verb = rule.WhichOneof("pattern")
                    routes.add((verb, getattr(rule, verb)))
    assert len(routes) >= 20
    documented = {(verb, path) for path, ops in doc["paths"].items() for verb in ops}
    assert routes - documented == set()
    assert doc["paths"]["/api/v1/batch-jobs"]["post"]["responses"]["202"]
    form = doc["paths"]["/api/match"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert {"cvs", "jd_text", "jd_file"} <= set(form["properties"])


def test_cors_preflight_and_response_headers(client: httpx.Client, key: str) -> None:
    origin = "https://app.example.com"
    pre = client.options("/api/match", headers={"Origin": origin, "Access-Control-Request-Method": "POST",
                                                "Access-Control-Request-Headers": "x-api-key"})
    assert pre.status_code in (200, 204), pre.text
    assert pre.headers["access-control-allow-origin"] == origin
    assert "POST" in pre.headers["access-control-allow-methods"]
    r = client.get("/api/credits/balance", headers={"Origin": origin, "X-API-Key": key})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == origin
    assert "x-ratelimit-remaining" in r.headers["access-control-expose-headers"]


def test_headers_grpc_cannot_carry_are_dropped_not_500(client: httpx.Client, key: str) -> None:
    r = client.get("/api/credits/balance", headers={"X-API-Key": key, "X-Odd|Name": "1", "EE``y": "b"})
    assert r.status_code == 200, r.text


def test_unknown_ids_are_404(client: httpx.Client, key: str) -> None:
    for path in ("/api/v1/batch-jobs/00000000-0000-0000-0000-000000000000/status",
                 "/api/v1/batch-jobs/00000000-0000-0000-0000-000000000000/results",
                 "/api/batch/00000000-0000-0000-0000-000000000000/status",
                 "/api/match/00000000-0000-0000-0000-000000000000/progress",
                 "/api/match/00000000-0000-0000-0000-000000000000",
                 "/api/v1/cvdeepmatch/00000000-0000-0000-0000-000000000000"):
        r = client.get(path, headers=_auth(key))
        _error(r, 404, "NOT_FOUND")
        # An error after authentication (here one ingest or the matcher returned) still counts the
        # request and says so.
        assert int(r.headers["x-ratelimit-limit"]) > 0 and int(r.headers["x-ratelimit-remaining"]) >= 0
        assert r.headers["x-ratelimit-reset"].isdigit()


def test_a_missing_scope_is_403_with_the_rate_headers(client: httpx.Client, stack: Stack) -> None:
    reader = _account(stack, "reader", plan="free", credits=5, scopes="match:read")[1]
    r = client.post("/api/v1/cvdeepmatch/submit", headers=_auth(reader), data={"jd_text": JD},
                    files={"cv_file": ("cv.pdf", filegen.pdf_pages([["Python developer"]]), "application/pdf")})
    _error(r, 403, "MISSING_PERMISSION")
    assert int(r.headers["x-ratelimit-limit"]) > 0 and "x-ratelimit-remaining" in r.headers


# ------------------------------------------------------------------------------ end-to-end flows


def _wait(client: httpx.Client, path: str, key: str, done: Any, timeout: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        r = client.get(path, headers=_auth(key))
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        if done(body):
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.3)


def test_skillmatchiq_zip_batch_end_to_end(client: httpx.Client, key: str, openapi: dict[str, Any]) -> None:
    archive = filegen.zip_of([
        ("jane.pdf", filegen.cv_pdf(2, "Jane Doe")),
        ("john.txt", "\n".join(filegen.cv_lines("John Roe", n_jobs=1)).encode()),
        ("broken.pdf", b"%PDF-1.4 this is not really a pdf"),
    ])
    r = client.post("/api/v1/batch-jobs", headers=_auth(key),
                    data={"input_type": "zip_file", "job_description_text": JD, "job_id": "senior-eng"},
                    files={"candidate_source_file": ("resumes.zip", archive, "application/zip")})
    assert r.status_code == 202, r.text
    job = _conforms(openapi, r, "post", "/api/v1/batch-jobs")
    assert job["status"] == "pending" and job["user_id"] > 0
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", job["created_at"])
    bid = job["batch_job_id"]
    status = _wait(client, f"/api/v1/batch-jobs/{bid}/status", key, lambda b: b["status"] in ("completed", "failed"))
    assert status["status"] == "completed", status
    assert status["processed_candidates"] == status["total_candidates"] == 3
    assert status["error_message"] is None and status["completed_at"]
    _conforms(openapi, client.get(f"/api/v1/batch-jobs/{bid}/status", headers=_auth(key)), "get",
              "/api/v1/batch-jobs/{batch_job_id}/status")
    results = _conforms(openapi, client.get(f"/api/v1/batch-jobs/{bid}/results?skip=0&limit=10",
                                            headers=_auth(key)), "get", "/api/v1/batch-jobs/{batch_job_id}/results")
    items = results["processed_items"]
    assert [i["original_filename"] for i in items][-1] == "broken.pdf"
    assert items[-1]["error"] and items[-1]["match_score"]["overall_score"] == 0
    scored = [i for i in items if i["error"] is None]
    assert len(scored) == 2
    assert scored[0]["match_score"]["overall_score"] >= scored[1]["match_score"]["overall_score"] > 0
    for k in ("skill_match_percentage", "core_skill_match_percentage", "role_match_percentage",
              "qualification_match_percentage", "sector_match_percentage"):
        assert isinstance(scored[0]["match_score"][k], int | float)
    for part in ("skills", "roles", "qualifications", "sectors"):
        assert set(scored[0]["match_results_summary"][part]) >= {"matches", "gaps", "surpluses"}
    stats = results["summary_stats"]
    assert stats["total_candidates"] == 3 and stats["successful_matches"] == 2 and stats["error_count"] == 1
    page = client.get(f"/api/v1/batch-jobs/{bid}/results?skip=1&limit=1", headers=_auth(key)).json()
    assert [i["original_filename"] for i in page["processed_items"]] == [scored[1]["original_filename"]]
    # The JavaScript variant reads the same batch.
    js = _conforms(openapi, client.get(f"/api/batch/{bid}/status", headers=_auth(key)), "get",
                   "/api/batch/{batch_id}/status")
    assert js["progress_percentage"] == 100 and js["status"] == "completed"
    js_results = _conforms(openapi, client.get(f"/api/batch/{bid}/results", headers=_auth(key)), "get",
                           "/api/batch/{batch_id}/results")
    assert js_results["results"][0]["filename"] == scored[0]["original_filename"]


def test_javascript_submit_and_idempotent_replay(client: httpx.Client, key: str) -> None:
    data = filegen.csv_bytes([["1", "John Doe", cv_text("John Doe"), "john.pdf"],
                              ["2", "Jane Smith", cv_text("Jane Smith"), "jane.docx"]])
    files = {"candidate_file": ("candidates.csv", data, "text/csv")}
    form = {"input_type": "csv_file", "job_text": JD, "job_id": "js-1"}
    headers = {**_auth(key), "Idempotency-Key": f"js-{time.time_ns()}"}
    first = client.post("/api/batch/submit", headers=headers, data=form, files=files)
    assert first.status_code == 202, first.text
    again = client.post("/api/batch/submit", headers=headers, data=form, files=files)
    assert again.status_code == 200, again.text
    assert again.json()["batch_id"] == first.json()["batch_id"] and again.json()["idempotent_replay"] is True
    changed = client.post("/api/batch/submit", headers=headers, data={**form, "job_text": JD + " Go."}, files=files)
    assert changed.status_code == 422, changed.text
    bid = first.json()["batch_id"]
    _wait(client, f"/api/batch/{bid}/status", key, lambda b: b["status"] == "completed")
    results = client.get(f"/api/batch/{bid}/results", headers=_auth(key)).json()
    assert {r["filename"] for r in results["results"]} == {"john.pdf", "jane.docx"}


def test_sync_batch_with_csv_text(client: httpx.Client, key: str, openapi: dict[str, Any]) -> None:
    csv_text = filegen.csv_bytes([["1", "John", cv_text("John"), "john.pdf"]], bom=False).decode()
    r = client.post("/api/batch/sync", headers=_auth(key),
                    json={"input_type": "csv_file", "job_text": JD, "max_candidates": 50, "timeout": 60,
                          "csv_text": csv_text})
    assert r.status_code == 200, r.text
    body = _conforms(openapi, r, "post", "/api/batch/sync")
    assert body["status"] == "completed" and body["results"][0]["filename"] == "john.pdf"
    assert body["results"][0]["match_score"]["overall_score"] > 0


def test_sync_batch_with_a_zip_upload_is_billed_like_a_batch(client: httpx.Client, stack: Stack,
                                                             openapi: dict[str, Any]) -> None:
    _, secret = _account(stack, "sync-billing", plan="enterprise", credits=10)
    archive = filegen.zip_of([("cvs/ann.pdf", filegen.cv_pdf(1, "Ann Lee")),
                              ("cvs/bob.txt", cv_text("Bob Stone").encode()),
                              ("cvs/notes.xlsx", b"PK not a CV")])
    r = client.post("/api/batch/sync", headers=_auth(secret),
                    data={"input_type": "ZIP_FILE", "job_text": JD, "timeout": "60"},
                    files={"candidate_file": ("cvs.zip", archive, "application/zip")})
    assert r.status_code == 200, r.text
    body = _conforms(openapi, r, "post", "/api/batch/sync")
    assert body["status"] == "completed", body
    errors = {i["filename"]: i["error"] for i in body["results"]}
    assert errors == {"cvs/ann.pdf": None, "cvs/bob.txt": None, "cvs/notes.xlsx": "unsupported_type"}, errors
    # One credit per matched CV, captured from the matcher's events; the unsupported file costs nothing.
    balance = _wait(client, "/api/credits/balance", secret, lambda b: b["used"] == 2 and b["reserved"] == 0)
    assert balance["available"] == 8, balance


def test_cv_matching_api_complete_example(client: httpx.Client, key: str, openapi: dict[str, Any]) -> None:
    headers = {"X-API-Key": key}
    resp = client.post("/api/match", headers=headers, data={"jd_text": JD}, files=[
        ("cvs", ("alice.pdf", filegen.cv_pdf(1, "Alice Chen"), "application/pdf")),
        ("cvs", ("bob.txt", b"Bob Smith\nWarehouse associate, forklift certified.", "text/plain")),
    ])
    assert resp.status_code == 200, resp.text
    job = _conforms(openapi, resp, "post", "/api/match")
    assert job["cv_count"] == 2 and job["status"] == "pending" and job["skipped_cvs"] == []
    progress = _wait(client, f"/api/match/{job['job_id']}/progress", key, lambda b: b["status"] == "completed")
    assert progress["completed"] == progress["total"] == 2 and progress["pending"] == 0
    _conforms(openapi, client.get(f"/api/match/{job['job_id']}/progress", headers=headers), "get",
              "/api/match/{job_id}/progress")
    results = _conforms(openapi, client.get(f"/api/match/{job['job_id']}", headers=headers), "get",
                        "/api/match/{job_id}")
    assert results["results"][0]["cv_filename"] == "alice.pdf"
    for r in results["results"]:
        assert isinstance(r["match_score"], int) and 0 <= r["match_score"] <= 100
        assert r["verdict"] in ("STRONG_MATCH", "GOOD_MATCH", "MODERATE_MATCH", "WEAK_MATCH", "NOT_SUITABLE")
        assert r["recommendation"] in ("Interview", "Consider", "Not recommended")


def test_cv_matching_plan_limit_skips_extra_cvs(client: httpx.Client, stack: Stack) -> None:
    _, free = _account(stack, "free-plan", plan="free", credits=50)
    files = [("cvs", (f"cv{i}.txt", f"Engineer {i} Python".encode(), "text/plain")) for i in range(11)]
    r = client.post("/api/match", headers={"X-API-Key": free}, data={"jd_text": JD}, files=files)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["cv_count"] == 10 and [s["filename"] for s in body["skipped_cvs"]] == ["cv10.txt"]


def test_insufficient_credits_is_402(client: httpx.Client, stack: Stack) -> None:
    _, poor = _account(stack, "poor", credits=1, scopes="match:execute,cvdeepmatch")
    files = [("cvs", (f"cv{i}.txt", cv_text(f"Cv {i}").encode(), "text/plain")) for i in range(3)]
    r = client.post("/api/match", headers={"X-API-Key": poor}, data={"jd_text": JD}, files=files)
    _error(r, 402, "INSUFFICIENT_CREDITS")
    _, broke = _account(stack, "broke", credits=0, scopes="cvdeepmatch")
    r = client.post("/api/v1/cvdeepmatch/submit", headers={"X-API-Key": broke}, data={"jd_text": JD},
                    files={"cv_file": ("cv.pdf", filegen.cv_pdf(1), "application/pdf")})
    _error(r, 402, "INSUFFICIENT_CREDITS")


def test_cvdeepmatch_submit_replay_and_result(client: httpx.Client, key: str, openapi: dict[str, Any]) -> None:
    form = {"job_description_text": JD, "requirements_config": json.dumps({"must_have_skills": ["Python"]}),
            "idempotency_key": f"deep-{time.time_ns()}"}
    files = {"cv_file": ("jane.pdf", filegen.cv_pdf(2), "application/pdf")}
    r = client.post("/api/v1/cvdeepmatch/submit", headers={"X-API-Key": key}, data=form, files=files)
    assert r.status_code == 202, r.text
    first = _conforms(openapi, r, "post", "/api/v1/cvdeepmatch/submit")
    assert first["status"] == "pending" and first["idempotent_replay"] is False
    replay = client.post("/api/v1/cvdeepmatch/submit", headers={"X-API-Key": key}, data=form, files=files)
    assert replay.status_code == 200, replay.text
    assert replay.json()["id"] == first["id"] and replay.json()["idempotent_replay"] is True
    done = _wait(client, f"/api/v1/cvdeepmatch/{first['id']}", key, lambda b: b["status"] in ("completed", "failed"))
    assert done["status"] == "completed", done
    _conforms(openapi, client.get(f"/api/v1/cvdeepmatch/{first['id']}", headers={"X-API-Key": key}), "get",
              "/api/v1/cvdeepmatch/{id}")
    assert 0 <= done["result"]["score"] <= 100 and done["result"]["match_score"]["overall_score"] >= 0


def test_unusable_uploads_are_400_naming_the_clients_field(client: httpx.Client, key: str) -> None:
    def submit(path: str, field: str, name: str, data: bytes, ctype: str, kind: str) -> dict[str, Any]:
        text_field = "job_description_text" if path.endswith("batch-jobs") else "job_text"
        r = client.post(path, headers=_auth(key), data={"input_type": kind, text_field: JD},
                        files={field: (name, data, ctype)})
        assert r.status_code == 400, r.text
        body: dict[str, Any] = r.json()
        assert body["error"]["details"]["field"] == field, body
        assert body["error"]["details"]["fields"].keys() == {field}
        return body

    submit("/api/v1/batch-jobs", "candidate_source_file", "empty.zip", filegen.zip_of([]), "application/zip",
           "ZIP_FILE")
    only_junk = filegen.zip_of([("setup.exe", b"MZ\x90\x00"), ("photo.png", b"\x89PNG\r\n\x1a\n")])
    body = submit("/api/v1/batch-jobs", "candidate_source_file", "junk.zip", only_junk, "application/zip",
                  "ZIP_FILE")
    assert "setup.exe" in body["error"]["message"]
    no_columns = filegen.csv_bytes([["1", "x"]], header=["id", "text"])
    submit("/api/batch/submit", "candidate_file", "c.csv", no_columns, "text/csv", "csv_file")
    r = client.post("/api/match", headers={"X-API-Key": key}, data={"jd_text": JD},
                    files=[("cvs", ("a.pdf", b"not a pdf at all", "application/pdf"))])
    assert r.status_code == 400 and r.json()["error"]["details"]["field"] == "cvs", r.text


def test_cvdeepmatch_is_500_without_internals_when_the_pipeline_breaks(client: httpx.Client, stack: Stack,
                                                                      key: str) -> None:
    # A fault injected below the service: ingest may no longer write batches, so accepting the submission
    # fails inside ingest. The client gets the seed's 500 with the envelope and nothing of the exception.
    async def privileges(statement: str) -> None:
        conn = await asyncpg.connect(stack.env["DATABASE_URL"])
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(privileges("REVOKE INSERT ON ingest.batches FROM cvmatch_ingest"))
    try:
        r = client.post("/api/v1/cvdeepmatch/submit", headers={"X-API-Key": key},
                        data={"jd_text": JD, "idempotency_key": f"broken-{time.time_ns()}"},
                        files={"cv_file": ("cv.pdf", filegen.cv_pdf(1), "application/pdf")})
        _error(r, 500, "INTERNAL")
        assert "permission" not in r.text.lower() and "batches" not in r.text and "Traceback" not in r.text
    finally:
        asyncio.run(privileges("GRANT INSERT ON ingest.batches TO cvmatch_ingest"))


def test_cvdeepmatch_is_502_when_the_pipeline_cannot_start(client: httpx.Client, stack: Stack, key: str) -> None:
    # Last in the module: it stops ingest and starts it again.
    stack.kill("ingest")
    try:
        r = client.post("/api/v1/cvdeepmatch/submit", headers={"X-API-Key": key},
                        data={"jd_text": JD, "idempotency_key": f"down-{time.time_ns()}"},
                        files={"cv_file": ("cv.pdf", filegen.cv_pdf(1), "application/pdf")})
        body = _error(r, 502, "STEP_FUNCTIONS_FAILED")
        assert "idempotency_key" in body["error"]["message"]
    finally:
        stack.restart("ingest")
        stack.wait_healthy(60)

