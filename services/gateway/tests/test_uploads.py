"""The gateway's upload parsing and form rules, without I/O: bodies encoded by httpx's multipart encoder and
fed in as the HttpBody stream Envoy sends (content type on the first message only)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from google.api import httpbody_pb2

from cvmatch.api.ingest.v1 import batch_pb2
from cvmatch.gateway import forms
from cvmatch.gateway.uploads import Form, Limits, read_form
from cvmatch.platform.errors import DomainError

LIMITS = Limits(max_request_bytes=20 * 1024 * 1024, max_file_bytes=5 * 1024 * 1024,
                bulk_parts=frozenset(forms.CANDIDATE_FILE))


def encode(data: dict[str, Any] | None = None, files: Any = None, json: Any = None) -> tuple[bytes, str]:
    req = httpx.Request("POST", "http://x/", data=data, files=files, json=json)
    return req.read(), req.headers["content-type"]


async def stream(body: bytes, content_type: str, piece: int = 7919) -> AsyncIterator[httpbody_pb2.HttpBody]:
    for i in range(0, max(len(body), 1), piece):
        yield httpbody_pb2.HttpBody(content_type=content_type if i == 0 else "", data=body[i:i + piece])


async def parse(body: bytes, content_type: str, limits: Limits = LIMITS, piece: int = 7919) -> Form:
    return await read_form(stream(body, content_type, piece), limits)


async def test_fields_and_files_arrive_intact_across_odd_chunk_boundaries() -> None:
    cv = b"%PDF-1.4 " + bytes(range(256)) * 4000
    body, ctype = encode({"jd_text": "Nurse \u2014 ICU", "job_id": "j1"},
                         [("cvs", ("a.pdf", cv, "application/pdf")), ("cvs", ("b.txt", b"hello", "text/plain"))])
    for piece in (1, 13, 65536):
        if piece == 1:
            body_small, ctype_small = encode({"jd_text": "x"}, [("cvs", ("a.txt", b"abc", "text/plain"))])
            form = await parse(body_small, ctype_small, piece=1)
            assert form.get("jd_text") == "x" and b"".join(form.files[0].chunks()) == b"abc"
            continue
        form = await parse(body, ctype, piece=piece)
        try:
            assert form.get("jd_text") == "Nurse \u2014 ICU"
            assert [f.filename for f in form.files_of("cvs")] == ["a.pdf", "b.txt"]
            first = form.files[0]
            assert first.size == len(cv) and first.sha256 == hashlib.sha256(cv).hexdigest()
            assert first.content_type == "application/pdf" and first.head.startswith(b"%PDF-")
            assert b"".join(first.chunks(1000)) == cv
        finally:
            form.close()


async def test_a_6_mb_cv_is_413_naming_the_field() -> None:
    big = b"%PDF-" + b"0" * (6 * 1024 * 1024)
    body, ctype = encode({"jd_text": "x"}, [("cvs", ("big.pdf", big, "application/pdf"))])
    with pytest.raises(DomainError) as exc:
        await parse(body, ctype, piece=1024 * 1024)
    assert exc.value.http_status == 413 and exc.value.reason == "PAYLOAD_TOO_LARGE"
    assert "big.pdf" in exc.value.message and exc.value.violations[0].field == "cvs"


async def test_archives_may_exceed_the_file_limit_but_not_the_request_limit() -> None:
    big = b"PK" + b"0" * (6 * 1024 * 1024)
    body, ctype = encode({"input_type": "ZIP_FILE"}, {"candidate_source_file": ("r.zip", big, "application/zip")})
    form = await parse(body, ctype, piece=1024 * 1024)
    assert form.files[0].size == len(big)
    form.close()
    small = Limits(max_request_bytes=1024 * 1024, max_file_bytes=5 * 1024 * 1024, bulk_parts=LIMITS.bulk_parts)
    with pytest.raises(DomainError) as exc:
        await parse(body, ctype, small, piece=64 * 1024)
    assert exc.value.http_status == 413 and "request body" in exc.value.message


@pytest.mark.parametrize("mutate, expected", [
    (lambda b, c: (b[:-30], c), "closing boundary"),
    (lambda b, c: (b, "multipart/form-data"), "boundary"),
    (lambda b, c: (b, "text/plain"), "Content-Type"),
    (lambda b, c: (b"", ""), "Content-Type"),
])
async def test_malformed_bodies_are_400_naming_the_problem(mutate: Any, expected: str) -> None:
    body, ctype = encode({"jd_text": "x"}, [("cvs", ("a.txt", b"abc", "text/plain"))])
    body, ctype = mutate(body, ctype)
    with pytest.raises(DomainError) as exc:
        await parse(body, ctype)
    assert exc.value.http_status == 400 and expected in exc.value.message


async def test_json_bodies_become_fields() -> None:
    body, ctype = encode(json={"input_type": "csv_file", "job_text": "Engineer", "max_candidates": 50,
                               "timeout": 30, "csv_text": "candidate_id,name,resume_text\n1,A,B\n"})
    form = await parse(body, ctype)
    assert form.is_json and form.get("max_candidates") == "50" and form.get("input_type") == "csv_file"
    with pytest.raises(DomainError) as exc:
        await parse(b"{not json", "application/json")
    assert exc.value.http_status == 400 and "JSON" in exc.value.message


async def _form(data: dict[str, Any], files: Any = None) -> Form:
    body, ctype = encode(data, files)
    return await parse(body, ctype)


async def test_batch_form_rules_name_every_field() -> None:
    with pytest.raises(DomainError) as exc:
        forms.batch_submission(await _form({"job_description_text": "x"}), 1, "r", "")
    assert exc.value.details["field"] == "input_type" and "required" in exc.value.message
    with pytest.raises(DomainError) as exc:
        forms.batch_submission(await _form({"input_type": "PDF_PILE", "job_description_text": "x"}), 1, "r", "")
    assert "PDF_PILE" in exc.value.message and "zip_file" in exc.value.details["expected"]
    with pytest.raises(DomainError) as exc:
        forms.batch_submission(await _form({"input_type": "AWS_S3", "job_description_text": "x",
                                            "source_config_json": "{bucket:"}), 1, "r", "")
    assert exc.value.details["field"] == "source_config_json" and "not valid JSON" in exc.value.message
    with pytest.raises(DomainError) as exc:
        forms.batch_submission(await _form({"input_type": "csv_file"}), 1, "r", "")
    fields = {v.field for v in exc.value.violations}
    assert fields == {"job_description_text", "candidate_source_file"}


async def test_batch_form_accepts_both_seeds_names_and_hashes_the_request() -> None:
    v1 = await _form({"input_type": "ZIP_FILE", "job_description_text": "Python"},
                     {"candidate_source_file": ("r.zip", b"PK\x03\x04zz", "application/zip")})
    js = await _form({"input_type": "zip_file", "job_text": "Python"},
                     {"candidate_file": ("r.zip", b"PK\x03\x04zz", "application/zip")})
    a = forms.batch_submission(v1, 7, "r1", "key-1")
    b = forms.batch_submission(js, 7, "r2", "")
    assert a.header.input_type == b.header.input_type == batch_pb2.INPUT_TYPE_ZIP_FILE
    assert [p for p, _ in a.files] == ["zip"] and a.header.idempotency_key == "key-1"
    assert a.header.account_id == 7 and a.header.job_description_text == "Python"
    other = await _form({"input_type": "ZIP_FILE", "job_description_text": "Python"},
                        {"candidate_source_file": ("r.zip", b"PK\x03\x04yy", "application/zip")})
    c = forms.batch_submission(other, 7, "r3", "key-1")
    assert a.header.request_sha256 != c.header.request_sha256
    again = forms.batch_submission(await _form({"input_type": "ZIP_FILE", "job_description_text": "Python"},
                                               {"candidate_source_file": ("r.zip", b"PK\x03\x04zz", "x/y")}),
                                   7, "r4", "key-1")
    assert again.header.request_sha256 == a.header.request_sha256


async def test_match_form_applies_the_plan_limit_as_skipped_cvs() -> None:
    files = [("cvs", (f"cv{i}.txt", f"cv {i}".encode(), "text/plain")) for i in range(4)]
    sub = forms.match_submission(await _form({"jd_text": "Nurse"}, files), 1, "r", "", max_cvs=3)
    assert [f.filename for _, f in sub.files] == ["cv0.txt", "cv1.txt", "cv2.txt"]
    assert [(f.filename, reason) for f, reason, _ in sub.skipped] == [("cv3.txt", "limits_exceeded")]
    with pytest.raises(DomainError) as exc:
        forms.match_submission(await _form({"jd_text": "Nurse"}), 1, "r", "", max_cvs=3)
    assert exc.value.details["field"] == "cvs"


async def test_deep_match_form_rules() -> None:
    pdf = ("cv.pdf", b"%PDF-1.7 hello", "application/pdf")
    ok = forms.deep_match_submission(await _form({"jd_text": "x", "requirements_config": '{"must_have": []}'},
                                                 {"cv_file": pdf}), 1, "r", "")
    forms.check_pdf_magic(ok)
    assert ok.header.requirements_json == '{"must_have": []}'
    with pytest.raises(DomainError) as exc:
        forms.deep_match_submission(await _form({"jd_text": "x"}, {"cv_file": (
            "cv.docx", b"PK..", "application/vnd.openxmlformats-officedocument.wordprocessingml.document")}),
            1, "r", "")
    assert exc.value.reason == "INVALID_INPUT" and exc.value.violations[0].field == "cv_file"
    gif = {"cv_file": ("cv.pdf", b"GIF89a", "application/pdf")}
    fake = forms.deep_match_submission(await _form({"jd_text": "x"}, gif), 1, "r", "")
    with pytest.raises(DomainError) as exc:
        forms.check_pdf_magic(fake)
    assert exc.value.reason == "INVALID_FILE_CONTENT" and exc.value.http_status == 400
    with pytest.raises(DomainError) as exc:
        forms.deep_match_submission(await _form({"requirements_config": "[1]"}), 1, "r", "")
    assert {v.field for v in exc.value.violations} == {"job_description_text", "requirements_config", "cv_file"}


async def test_sync_form_accepts_csv_text_and_bounds_its_numbers() -> None:
    sub, timeout = forms.sync_submission(await parse(*encode(json={
        "job_text": "Engineer", "csv_text": "candidate_id,name,resume_text\n1,A,B\n", "timeout": 30})), 1, "r", "")
    assert sub.header.input_type == batch_pb2.INPUT_TYPE_CSV_TEXT and timeout == 30
    assert sub.header.max_candidates == forms.SYNC_MAX_CANDIDATES
    with pytest.raises(DomainError) as exc:
        forms.sync_submission(await parse(*encode(json={
            "input_type": "csv_file", "job_text": "E", "max_candidates": 500, "timeout": "soon"})), 1, "r", "")
    assert {v.field for v in exc.value.violations} >= {"max_candidates", "timeout"}
