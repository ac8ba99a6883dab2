"""The rules of ingest without I/O: planning candidates per input type, limits, idempotency, settling."""

from __future__ import annotations

import pytest

from cvmatch.ingest import domain
from cvmatch.ingest.config import Settings
from cvmatch.ingest.domain import CandidateState, Claim, Header, InputType, Upload
from cvmatch.ingest.extraction import ExtractionLimits, InvalidFileContent, InvalidUpload, PayloadTooLarge
from cvmatch.platform.settings import Env, SettingsError
from cvmatch.testing import filegen

LIMITS = ExtractionLimits(max_file_bytes=1000)
CV = "\n".join(filegen.cv_lines()).encode()


def _h(input_type: InputType = InputType.FILES, **kw: object) -> Header:
    return Header(account_id=1, input_type=input_type, api_flavor=domain.ApiFlavor.SKILLMATCHIQ, **kw)  # type: ignore[arg-type]


def _u(part: str, name: str, data: bytes, ctype: str = "", size: int | None = None) -> Upload:
    return Upload(part, name, ctype, data, len(data) if size is None else size)


def test_files_are_refused_alone_with_their_outcome() -> None:
    planned = domain.plan_candidates(_h(), [
        _u("cv", "a.txt", CV[:900]), _u("cv", "b.png", b"\x89PNG"), _u("cv", "c.pdf", b"nope"),
        _u("cv", "d.txt", CV[:1001], size=5000)], LIMITS)
    assert [(p.filename, p.state) for p in planned] == [
        ("a.txt", CandidateState.PENDING), ("b.png", CandidateState.UNSUPPORTED_TYPE),
        ("c.pdf", CandidateState.INVALID_FILE_CONTENT), ("d.txt", CandidateState.FILE_TOO_LARGE)]
    assert [p.refused for p in planned] == [False, True, True, True]
    assert planned[0].payload == CV[:900] and not planned[1].payload


def test_parts_must_match_the_input_type() -> None:
    with pytest.raises(InvalidUpload, match="not expected") as exc:
        domain.plan_candidates(_h(InputType.ZIP_FILE), [_u("cv", "a.txt", CV)], LIMITS)
    assert exc.value.field == "cvs"
    with pytest.raises(InvalidUpload, match="Unknown upload part"):
        domain.plan_candidates(_h(), [_u("resume", "a.txt", CV)], LIMITS)
    with pytest.raises(InvalidUpload, match="exactly one"):
        domain.plan_candidates(_h(InputType.CSV_FILE), [], LIMITS)
    with pytest.raises(InvalidUpload, match="not supported yet"):
        domain.plan_candidates(_h(InputType.DATABASE), [], LIMITS)


def test_zip_and_csv_yield_candidates_in_order() -> None:
    archive = filegen.zip_of([("x/one.txt", CV[:800]), ("__MACOSX/x/._one.txt", b"j"), ("two.doc", b"d")])
    planned = domain.plan_candidates(_h(InputType.ZIP_FILE), [_u("zip", "a.zip", archive)], LIMITS)
    assert [(p.filename, p.state) for p in planned] == [
        ("x/one.txt", CandidateState.PENDING), ("two.doc", CandidateState.UNSUPPORTED_TYPE)]
    rows = filegen.csv_bytes([["7", "Ann", "line one\nline two", ""], ["", "Bo", "text", "bo.pdf"]])
    planned = domain.plan_candidates(_h(InputType.CSV_FILE), [_u("csv", "c.csv", rows)], LIMITS)
    assert [(p.filename, p.external_id, p.payload, p.payload_kind) for p in planned] == [
        ("7", "7", b"line one\nline two", "text"), ("bo.pdf", "", b"text", "text")]
    with pytest.raises(PayloadTooLarge):
        domain.plan_candidates(_h(InputType.ZIP_FILE), [_u("zip", "a.zip", archive, size=10**9)], LIMITS)
    with pytest.raises(InvalidUpload, match="no CV files"):
        domain.plan_candidates(_h(InputType.ZIP_FILE),
                               [_u("zip", "a.zip", filegen.zip_of([("__MACOSX/._a", b"x")]))], LIMITS)


def test_single_pdf_and_plan_limit() -> None:
    with pytest.raises(InvalidFileContent):
        domain.plan_candidates(_h(InputType.SINGLE_PDF), [_u("pdf", "a.pdf", b"abc", "application/pdf")], LIMITS)
    ok = domain.plan_candidates(_h(InputType.SINGLE_PDF), [_u("pdf", "a.pdf", b"%PDF-1.4", "application/pdf")],
                                LIMITS)
    assert ok[0].state is CandidateState.PENDING
    with pytest.raises(InvalidUpload, match="at most 1"):
        domain.plan_candidates(_h(max_candidates=1), [_u("cv", "a.txt", CV[:900])] * 2, LIMITS)


def test_the_candidate_limit_names_the_field_the_candidates_came_in() -> None:
    two_rows = filegen.csv_bytes([["1", "Ann", "text one", ""], ["2", "Bo", "text two", ""]])
    archive = filegen.zip_of([("one.txt", CV[:800]), ("two.txt", CV[:700])])
    cases = [(_h(max_candidates=1), [_u("cv", "a.txt", CV[:900])] * 2, "cvs"),
             (_h(InputType.ZIP_FILE, max_candidates=1), [_u("zip", "a.zip", archive)], "zip_file"),
             (_h(InputType.CSV_FILE, max_candidates=1), [_u("csv", "c.csv", two_rows)], "csv_file"),
             (_h(InputType.CSV_TEXT, max_candidates=1, csv_text=two_rows.decode()), [], "csv_text")]
    for header, uploads, field_name in cases:
        with pytest.raises(InvalidUpload, match="at most 1") as exc:
            domain.plan_candidates(header, uploads, LIMITS)
        assert exc.value.field == field_name, header.input_type
    for remote in domain.REMOTE_INPUTS:
        with pytest.raises(InvalidUpload) as exc:
            domain.check_candidate_limit(_h(remote, max_candidates=1), 2)
        assert exc.value.field == "source_config_json"


def test_job_description_rules() -> None:
    assert domain.check_job_description("  Engineer  ", 50) == "Engineer"
    with pytest.raises(InvalidUpload, match="51 characters"):
        domain.check_job_description("x" * 51, 50)
    with pytest.raises(InvalidUpload, match="required"):
        domain.job_description_upload(_h(), [], LIMITS)
    assert domain.job_description_upload(_h(job_description_text="JD"), [], LIMITS) is None
    with pytest.raises(PayloadTooLarge):
        domain.job_description_upload(_h(), [_u("job_description", "jd.pdf", b"x", size=2000)], LIMITS)


def test_idempotency_and_digest() -> None:
    assert domain.judge_existing_key("a", "accepted", "a") is Claim.REPLAY
    assert domain.judge_existing_key("a", "admitting", "a") is Claim.IN_FLIGHT
    assert domain.judge_existing_key("a", "accepted", "b") is Claim.MISMATCH
    files = [_u("cv", "a.txt", b"1")]
    assert domain.request_digest(_h(), files) == domain.request_digest(_h(), list(files))
    assert domain.request_digest(_h(), files) != domain.request_digest(_h(), [_u("cv", "a.txt", b"2")])
    assert domain.request_digest(_h(), files) != domain.request_digest(_h(job_description_text="x"), files)


def test_settle() -> None:
    assert domain.settle(3, 2, 0) is None
    assert domain.settle(3, 3, 1) is domain.BatchStatus.COMPLETED
    assert domain.settle(3, 3, 3) is domain.BatchStatus.FAILED
    assert CandidateState.MATCH_FAILED.failed and not CandidateState.MATCHED.failed
    assert not CandidateState.INGESTED.terminal


def test_settings_fail_fast() -> None:
    base = {"DATABASE_URL": "postgresql://x/y"}
    assert Settings.from_env(Env(base)).limits.max_file_bytes == 5 * 1024 * 1024
    with pytest.raises(SettingsError, match="INGEST_LEASE_SECONDS"):
        Settings.from_env(Env({**base, "INGEST_LEASE_SECONDS": "1"}))
    with pytest.raises(SettingsError, match="INGEST_WORKERS"):
        Settings.from_env(Env({**base, "INGEST_WORKERS": "zero"}))
