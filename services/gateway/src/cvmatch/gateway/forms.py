"""The submit endpoints' rules: which fields each seed sends (with every alias the seeds use), what is
required, and how a form becomes ingest's batch header and canonical file parts.

Pure: no I/O. Every problem found is reported at once, per field, in `error.details.fields`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import grpc

from cvmatch.api.ingest.v1 import batch_pb2
from cvmatch.api.ingest.v1 import ingest_service_pb2 as ingest
from cvmatch.gateway.uploads import Form, UploadedFile, request_sha256
from cvmatch.platform.errors import DomainError, FieldViolation

INPUT_TYPES = {
    "zip_file": batch_pb2.INPUT_TYPE_ZIP_FILE,
    "csv_file": batch_pb2.INPUT_TYPE_CSV_FILE,
    "google_drive": batch_pb2.INPUT_TYPE_GOOGLE_DRIVE,
    "aws_s3": batch_pb2.INPUT_TYPE_AWS_S3,
    "database": batch_pb2.INPUT_TYPE_DATABASE,
}
SYNC_INPUT_TYPES = ("zip_file", "csv_file", "csv_text")
# SkillMatchIQ's v1 names first, then the JavaScript example's, then the other seeds' names for the same thing.
JOB_TEXT = ("job_description_text", "job_text", "jd_text")
JD_FILE = ("jd_file", "job_description_file", "job_description")
CANDIDATE_FILE = ("candidate_source_file", "candidate_file", "file")
SOURCE_CONFIG = ("source_config_json", "source_config", "config")
CSV_TEXT = ("csv_text", "candidates_csv", "csv_data")
MAX_JD_CHARS = 50_000
# How ingest names the uploaded parts in its errors, and the public names when the client sent none.
INTERNAL_FIELDS = {"zip_file": "zip", "csv_file": "csv", "jd_file": "job_description", "cv_file": "pdf", "cvs": "cv"}
PUBLIC_DEFAULTS = {"zip": "candidate_source_file", "csv": "candidate_source_file", "job_description": "jd_file",
                   "pdf": "cv_file", "cv": "cvs", "url": "webhook_url"}
PDF_CONTENT_TYPES = ("application/pdf", "application/x-pdf")
SYNC_MAX_CANDIDATES = 100
SYNC_DEFAULT_TIMEOUT = 300
# Counted from the request's arrival; below the edge's 620 s timeouts of the sync route (deploy/envoy).
SYNC_MAX_TIMEOUT = 590


@dataclass(frozen=True)
class Submission:
    """What goes to ingest: the header and the files under their canonical part names."""

    header: ingest.BatchHeader
    files: Sequence[tuple[str, UploadedFile]]
    webhook_url: str = ""
    skipped: Sequence[tuple[UploadedFile, str, str]] = field(default_factory=tuple)

    def public_field(self, internal: str) -> str:
        """The form field the client used for what ingest names `internal` (`zip_file` -> `candidate_file`)."""
        canonical = INTERNAL_FIELDS.get(internal, internal)
        for part, f in self.files:
            if part == canonical:
                return f.part
        return PUBLIC_DEFAULTS.get(canonical, internal)


class Problems:
    """Collects field violations so the client learns every problem of a request at once."""

    def __init__(self) -> None:
        self.items: list[FieldViolation] = []
        self.details: dict[str, str] = {}

    def add(self, field_name: str, message: str, **details: str) -> None:
        self.items.append(FieldViolation(field_name, message))
        if len(self.items) == 1:
            self.details = {"field": field_name, **details}

    def raise_if_any(self) -> None:
        if not self.items:
            return
        message = self.items[0].description if len(self.items) == 1 else "; ".join(
            v.description for v in self.items)
        raise DomainError(message, "INVALID_INPUT", grpc.StatusCode.INVALID_ARGUMENT, 400, tuple(self.items),
                          self.details)


def _present(files: list[UploadedFile]) -> list[UploadedFile]:
    # Browsers send an empty, unnamed part for a file input left empty.
    return [f for f in files if f.filename or f.size]


def _json_object(form: Form, names: Sequence[str], problems: Problems) -> str:
    text = form.get(*names)
    if text is None:
        return ""
    try:
        value = json.loads(text)
    except ValueError as exc:
        problems.add(names[0], f"The '{names[0]}' field is not valid JSON: {exc}")
        return ""
    if not isinstance(value, dict):
        problems.add(names[0], f"The '{names[0]}' field must be a JSON object")
        return ""
    return json.dumps(value, sort_keys=True)


def _int_field(form: Form, name: str, default: int, low: int, high: int, problems: Problems) -> int:
    text = form.get(name)
    if text is None:
        return default
    value = _integral(text)
    if value is None:
        problems.add(name, f"The '{name}' field must be an integer, got '{text[:40]}'")
        return default
    if not low <= value <= high:
        problems.add(name, f"The '{name}' field must be between {low} and {high}")
        return default
    return value


def _integral(text: str) -> int | None:
    """`300`, or a JSON number with a zero fraction (`300.0`, as many JSON encoders write it); else None."""
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return None
    return int(number) if number.is_integer() else None


def _input_type(form: Form, allowed: Sequence[str], problems: Problems) -> str:
    raw = form.get("input_type")
    expected = ", ".join(allowed)
    if raw is None:
        problems.add("input_type", "The 'input_type' field is required", provided="null", expected=expected)
        return ""
    value = raw.strip().lower()
    if value not in allowed:
        problems.add("input_type", f"Unknown input_type '{raw[:40]}': expected one of {expected}",
                     provided=raw[:40], expected=expected)
        return ""
    return value


def _job_text(form: Form, problems: Problems, *, jd_files: list[UploadedFile],
              names: Sequence[str] = JOB_TEXT) -> str:
    text = form.get(*names) or ""
    if len(text) > MAX_JD_CHARS:
        problems.add(names[0], f"The job description is longer than {MAX_JD_CHARS:,} characters")
    if not text.strip() and not jd_files:
        problems.add(names[0], f"The '{names[0]}' field is required (or upload a job description file)")
    if len(jd_files) > 1:
        problems.add("jd_file", "Send at most one job description file")
    return text


def _common_header(form: Form, problems: Problems, account_id: int, request_id: str,
                   idempotency_header: str) -> ingest.BatchHeader:
    key = (form.get("idempotency_key") or idempotency_header).strip()
    if len(key) > 255:
        problems.add("idempotency_key", "The idempotency key is longer than 255 characters")
    return ingest.BatchHeader(
        account_id=account_id, idempotency_key=key, request_id=request_id,
        job_id=(form.get("job_id") or "").strip()[:255],
        webhook_url=(form.get("webhook_url", "callback_url") or "").strip(),
        metadata_json=_json_object(form, ("metadata_json", "metadata"), problems))


def _finish(header: ingest.BatchHeader, form: Form, flavor: str,
            files: list[tuple[str, UploadedFile]], skipped: Sequence[tuple[UploadedFile, str, str]] = ()) -> Submission:
    fields = {
        "input_type": str(header.input_type), "job_description_text": header.job_description_text,
        "job_id": header.job_id, "webhook_url": header.webhook_url, "source_config_json": header.source_config_json,
        "metadata_json": header.metadata_json, "requirements_json": header.requirements_json,
        "max_candidates": str(header.max_candidates), "csv_text": header.csv_text,
    }
    header.request_sha256 = request_sha256(flavor, form, fields)
    return Submission(header, files, header.webhook_url, tuple(skipped))


def batch_submission(form: Form, account_id: int, request_id: str, idempotency_header: str) -> Submission:
    """SkillMatchIQ's `POST /api/v1/batch-jobs` and the JavaScript example's `POST /api/batch/submit`."""
    problems = Problems()
    kind = _input_type(form, tuple(INPUT_TYPES), problems)
    jd_files = _present(form.files_of(*JD_FILE))
    text = _job_text(form, problems, jd_files=jd_files)
    header = _common_header(form, problems, account_id, request_id, idempotency_header)
    header.api_flavor = batch_pb2.API_FLAVOR_SKILLMATCHIQ
    header.job_description_text = text
    header.source_config_json = _json_object(form, SOURCE_CONFIG, problems)
    candidates = _present(form.files_of(*CANDIDATE_FILE))
    files: list[tuple[str, UploadedFile]] = [("job_description", f) for f in jd_files]
    if kind:
        header.input_type = INPUT_TYPES[kind]
        if kind in ("zip_file", "csv_file"):
            if not candidates:
                problems.add("candidate_source_file",
                             f"The 'candidate_source_file' file is required for input_type {kind.upper()}")
            elif len(candidates) > 1:
                problems.add("candidate_source_file", "Send exactly one 'candidate_source_file'")
            else:
                files.append(("zip" if kind == "zip_file" else "csv", candidates[0]))
        elif not header.source_config_json and form.get(*SOURCE_CONFIG) is None:
            problems.add("source_config_json", f"The 'source_config_json' field is required for input_type "
                         f"{kind.upper()}")
    problems.raise_if_any()
    return _finish(header, form, "skillmatchiq", files)


def sync_submission(form: Form, account_id: int, request_id: str,
                    idempotency_header: str) -> tuple[Submission, int]:
    """`POST /api/batch/sync`: a CSV or ZIP upload, or CSV text; returns the submission and the timeout."""
    problems = Problems()
    csv_text = form.get(*CSV_TEXT) or ""
    candidates = _present(form.files_of(*CANDIDATE_FILE))
    if form.get("input_type") is None and csv_text and not candidates:
        kind = "csv_text"
    else:
        kind = _input_type(form, SYNC_INPUT_TYPES, problems)
    jd_files = _present(form.files_of(*JD_FILE))
    text = _job_text(form, problems, jd_files=jd_files, names=("job_text", "job_description_text", "jd_text"))
    header = _common_header(form, problems, account_id, request_id, idempotency_header)
    header.api_flavor = batch_pb2.API_FLAVOR_SYNC
    header.job_description_text = text
    header.max_candidates = _int_field(form, "max_candidates", SYNC_MAX_CANDIDATES, 1, SYNC_MAX_CANDIDATES, problems)
    timeout = _int_field(form, "timeout", SYNC_DEFAULT_TIMEOUT, 1, SYNC_MAX_TIMEOUT, problems)
    files: list[tuple[str, UploadedFile]] = [("job_description", f) for f in jd_files]
    if kind == "csv_text" or (kind == "csv_file" and csv_text and not candidates):
        if not csv_text.strip():
            problems.add("csv_text", "Send the candidates as 'csv_text' or upload a 'candidate_file'")
        header.input_type = batch_pb2.INPUT_TYPE_CSV_TEXT
        header.csv_text = csv_text
    elif kind:
        if not candidates:
            problems.add("candidate_file", f"Upload the candidates as 'candidate_file' for input_type {kind}, "
                         "or send 'csv_text'")
        elif len(candidates) > 1:
            problems.add("candidate_file", "Send exactly one 'candidate_file'")
        else:
            header.input_type = INPUT_TYPES[kind]
            files.append(("zip" if kind == "zip_file" else "csv", candidates[0]))
    problems.raise_if_any()
    return _finish(header, form, "sync", files), timeout


def match_submission(form: Form, account_id: int, request_id: str, idempotency_header: str,
                     max_cvs: int) -> Submission:
    """CV Matching API `POST /api/match`: repeated `cvs`, `jd_text` or `jd_file`; the plan's CV limit."""
    problems = Problems()
    jd_files = _present(form.files_of(*JD_FILE))
    text = _job_text(form, problems, jd_files=jd_files, names=("jd_text", "job_description_text", "job_text"))
    header = _common_header(form, problems, account_id, request_id, idempotency_header)
    header.api_flavor = batch_pb2.API_FLAVOR_CV_MATCHING
    header.input_type = batch_pb2.INPUT_TYPE_FILES
    header.job_description_text = text
    cvs = _present(form.files_of("cvs", "cvs[]", "cv", "files"))
    skipped: list[tuple[UploadedFile, str, str]] = []
    if not cvs:
        problems.add("cvs", "At least one CV file is required in the 'cvs' field")
    elif max_cvs > 0 and len(cvs) > max_cvs:
        skipped = [(f, "limits_exceeded", f"Your plan allows {max_cvs} CVs per job") for f in cvs[max_cvs:]]
        cvs = cvs[:max_cvs]
    problems.raise_if_any()
    files = [("job_description", f) for f in jd_files] + [("cv", f) for f in cvs]
    return _finish(header, form, "cv_matching", files, skipped)


def deep_match_submission(form: Form, account_id: int, request_id: str, idempotency_header: str) -> Submission:
    """CVDeepMatch `POST /api/v1/cvdeepmatch/submit`: one PDF, a job description, a requirements config."""
    problems = Problems()
    jd_files = _present(form.files_of(*JD_FILE))
    text = _job_text(form, problems, jd_files=jd_files, names=("job_description_text", "jd_text", "job_text"))
    header = _common_header(form, problems, account_id, request_id, idempotency_header)
    header.api_flavor = batch_pb2.API_FLAVOR_CVDEEPMATCH
    header.input_type = batch_pb2.INPUT_TYPE_SINGLE_PDF
    header.job_description_text = text
    header.requirements_json = _json_object(form, ("requirements_config", "requirements_config_json",
                                                   "requirements"), problems)
    cvs = _present(form.files_of("cv_file", "cv"))
    webhook = header.webhook_url
    if webhook and not webhook.lower().startswith(("https://", "http://")):
        problems.add("webhook_url", "The 'webhook_url' must be an absolute https:// URL")
    files: list[tuple[str, UploadedFile]] = [("job_description", f) for f in jd_files]
    if not cvs:
        problems.add("cv_file", "The 'cv_file' field is required: upload the CV as a PDF")
    elif len(cvs) > 1:
        problems.add("cv_file", "Send exactly one 'cv_file'")
    else:
        cv = cvs[0]
        # The seed's gate: a .pdf name AND an application/pdf type (ingest checks the same; a part sent
        # without a type, i.e. application/octet-stream, is refused here rather than one hop later).
        if not cv.filename.lower().endswith(".pdf") or cv.content_type not in PDF_CONTENT_TYPES:
            problems.add("cv_file", f"Only PDF CVs are accepted (a .pdf file of type application/pdf); got "
                         f"'{cv.filename[:80]}' ({cv.content_type})")
        files.append(("pdf", cv))
    problems.raise_if_any()
    return _finish(header, form, "cvdeepmatch", files)


def check_pdf_magic(sub: Submission) -> None:
    """CVDeepMatch's magic-byte check: the CV must start with `%PDF-` (INVALID_FILE_CONTENT otherwise)."""
    for part, f in sub.files:
        if part == "pdf" and not f.head.startswith(b"%PDF-"):
            raise DomainError("The uploaded cv_file does not begin with a valid PDF header (%PDF-)",
                              "INVALID_FILE_CONTENT", grpc.StatusCode.INVALID_ARGUMENT, 400,
                              (FieldViolation("cv_file", "not a PDF: the content does not start with %PDF-"),),
                              {"field": "cv_file"})
