"""The rules of ingest: what a submission may contain, which candidates it yields, when a batch is done.

Pure: no grpc, asyncpg or nats. Whole-request problems are raised as the extraction layer's typed
errors (:class:`InvalidUpload`, :class:`InvalidFileContent`, :class:`PayloadTooLarge`), which
`errors.from_request_error` maps once to the public error.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from cvmatch.ingest.extraction import (
    ArchiveEntry,
    ExtractionLimits,
    InvalidFileContent,
    InvalidUpload,
    Outcome,
    PayloadTooLarge,
    check_pdf_upload,
    detect_kind,
    expand_zip,
    parse_csv,
)


class InputType(enum.StrEnum):
    """Where a batch's candidates come from; stored as these strings."""

    ZIP_FILE = "zip_file"
    CSV_FILE = "csv_file"
    GOOGLE_DRIVE = "google_drive"
    AWS_S3 = "aws_s3"
    DATABASE = "database"
    FILES = "files"
    SINGLE_PDF = "single_pdf"
    CSV_TEXT = "csv_text"


class ApiFlavor(enum.StrEnum):
    """Which public API created the batch."""

    UNSPECIFIED = "unspecified"
    SKILLMATCHIQ = "skillmatchiq"
    CV_MATCHING = "cv_matching"
    CVDEEPMATCH = "cvdeepmatch"
    SYNC = "sync"


class BatchStatus(enum.StrEnum):
    """Lifecycle of a batch."""

    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        """True once the batch will never change again."""
        return self in (BatchStatus.COMPLETED, BatchStatus.FAILED)


class CandidateState(enum.StrEnum):
    """A candidate's outcome: in flight (pending, ingested), matched, or why it was not used."""

    PENDING = "pending"
    INGESTED = "ingested"
    MATCHED = "matched"
    MATCH_FAILED = "match_failed"
    INVALID_FILE_CONTENT = "invalid_file_content"
    UNSUPPORTED_TYPE = "unsupported_type"
    FILE_TOO_LARGE = "file_too_large"
    PDF_ENCRYPTED = "pdf_encrypted"
    NO_EXTRACTABLE_TEXT = "no_extractable_text"
    LIMITS_EXCEEDED = "limits_exceeded"
    PARSE_ERROR = "parse_error"
    #: Skipped on a re-run: this content was already matched for the job (not a failure, never charged).
    ALREADY_MATCHED = "already_matched"
    #: A remote source failed part-way and this item could not be read.
    SOURCE_ERROR = "source_error"

    @property
    def terminal(self) -> bool:
        """True when the candidate has its final outcome."""
        return self not in (CandidateState.PENDING, CandidateState.INGESTED)

    @property
    def failed(self) -> bool:
        """True for a final outcome that is neither a match nor a re-run skip of an earlier match."""
        return self.terminal and self not in (CandidateState.MATCHED, CandidateState.ALREADY_MATCHED)

    @classmethod
    def from_outcome(cls, outcome: Outcome) -> CandidateState:
        """The state after extraction: ingested when text came out, else the extraction outcome."""
        return cls.INGESTED if outcome is Outcome.OK else cls(outcome.value)


# The canonical part names the gateway uses for the files of a CreateBatch stream.
PART_CV = "cv"
PART_ZIP = "zip"
PART_CSV = "csv"
PART_JOB_DESCRIPTION = "job_description"
PART_PDF = "pdf"
PARTS = (PART_CV, PART_ZIP, PART_CSV, PART_JOB_DESCRIPTION, PART_PDF)

# The request field a problem is reported against (the public name of each part).
FIELD_OF_PART = {PART_CV: "cvs", PART_ZIP: "zip_file", PART_CSV: "csv_file",
                 PART_JOB_DESCRIPTION: "job_description_file", PART_PDF: "cv_file"}
FIELD_JD_TEXT = "job_description_text"
FIELD_CSV_TEXT = "csv_text"

# The part each file-based input type carries its candidates in.
SOURCE_PART = {InputType.FILES: PART_CV, InputType.ZIP_FILE: PART_ZIP, InputType.CSV_FILE: PART_CSV,
               InputType.SINGLE_PDF: PART_PDF}
REMOTE_INPUTS = (InputType.AWS_S3, InputType.GOOGLE_DRIVE, InputType.DATABASE)


@dataclass(frozen=True)
class Upload:
    """One file of a submission. ``data`` stops at the part's cap; ``size`` is what the client sent."""

    part: str
    filename: str
    content_type: str
    data: bytes
    size: int

    @property
    def truncated(self) -> bool:
        """True when the client sent more than was kept (the file is over its limit)."""
        return self.size > len(self.data)


@dataclass(frozen=True)
class Header:
    """What the submission says about itself (the stream's first message)."""

    account_id: int
    input_type: InputType
    api_flavor: ApiFlavor
    job_description_text: str = ""
    idempotency_key: str = ""
    request_sha256: str = ""
    webhook_url: str = ""
    job_id: str = ""
    source_config_json: str = ""
    metadata_json: str = ""
    requirements_json: str = ""
    max_candidates: int = 0
    csv_text: str = ""


@dataclass(frozen=True)
class PlannedCandidate:
    """A candidate to store: spooled for extraction (``state`` pending) or refused at submission."""

    filename: str
    state: CandidateState
    message: str = ""
    payload: bytes = b""
    #: ``file`` bytes go through the sandbox; ``text`` (a CSV row) is already text.
    payload_kind: str = "file"
    content_type: str = ""
    external_id: str = ""
    #: SHA-256 of the content as read from a remote source (file bytes or row text); "" for uploads.
    source_sha256: str = ""
    candidate_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def refused(self) -> bool:
        """Refused at submission: stored with its outcome, never extracted nor charged."""
        return self.state is not CandidateState.PENDING


@dataclass(frozen=True)
class NewBatch:
    """Everything written in the one transaction that accepts a batch."""

    batch_id: str
    header: Header
    job_description: str
    job_description_sha256: str
    candidates: Sequence[PlannedCandidate]
    #: The remote source's secret-free description (JSON of ``SourceConfig.storable()``); "" for uploads.
    source_config_json: str = ""

    @property
    def chargeable(self) -> int:
        """Credits to reserve: one per candidate that will be extracted and matched."""
        return sum(1 for c in self.candidates if not c.refused)


@dataclass(frozen=True)
class Batch:
    """A batch as stored."""

    batch_id: str
    account_id: int
    status: BatchStatus
    input_type: InputType
    api_flavor: ApiFlavor
    total_candidates: int
    processed_candidates: int
    failed_candidates: int
    created_at: dt.datetime
    updated_at: dt.datetime
    completed_at: dt.datetime | None
    error_message: str
    job_id: str
    job_description_sha256: str
    webhook_url: str
    metadata_json: str
    requirements_json: str

    @property
    def pending_candidates(self) -> int:
        """Candidates without a final outcome yet."""
        return self.total_candidates - self.processed_candidates


@dataclass(frozen=True)
class Candidate:
    """A candidate as stored (without its text)."""

    candidate_id: str
    batch_id: str
    position: int
    original_filename: str
    external_id: str
    state: CandidateState
    message: str
    content_sha256: str


@dataclass(frozen=True)
class Admitted:
    """The answer to a submission."""

    batch: Batch
    replay: bool
    skipped: Sequence[Candidate]


class Claim(enum.Enum):
    """What an idempotency key says about a new submission."""

    NEW = "new"
    REPLAY = "replay"
    IN_FLIGHT = "in_flight"
    MISMATCH = "mismatch"


def judge_existing_key(existing_sha256: str, existing_state: str, request_sha256: str) -> Claim:
    """A key already held by a live submission: same request -> replay (or in flight), else a mismatch."""
    if existing_sha256 != request_sha256:
        return Claim.MISMATCH
    return Claim.REPLAY if existing_state == "accepted" else Claim.IN_FLIGHT


def request_digest(header: Header, uploads: Iterable[Upload]) -> str:
    """The hash that tells a replay from a different request when the gateway did not send one."""
    h = hashlib.sha256()
    for value in (header.input_type.value, header.job_description_text, header.webhook_url, header.job_id,
                  header.source_config_json, header.metadata_json, header.requirements_json, header.csv_text):
        h.update(len(value).to_bytes(8, "big") + value.encode())
    for u in uploads:
        h.update(f"\x00{u.part}\x00{u.filename}\x00{u.size}\x00".encode())
        h.update(hashlib.sha256(u.data).digest())
    return h.hexdigest()


def part_cap(part: str, limits: ExtractionLimits) -> int:
    """How many bytes of a part are kept: one more than the limit, so "over the limit" is visible."""
    if part == PART_ZIP:
        return limits.max_archive_bytes + 1
    if part == PART_CSV:
        return limits.max_csv_bytes + 1
    return limits.max_file_bytes + 1


def check_job_description(text: str, max_chars: int, field_name: str = FIELD_JD_TEXT) -> str:
    """The job description, stripped; raises when it is empty or too long."""
    stripped = text.strip()
    if not stripped:
        raise InvalidUpload("The job description is empty.", field=field_name)
    if len(stripped) > max_chars:
        raise InvalidUpload(f"The job description has {len(stripped)} characters; the limit is {max_chars}.",
                            field=field_name)
    return stripped


def job_description_upload(header: Header, uploads: Sequence[Upload], limits: ExtractionLimits) -> Upload | None:
    """The job description file to extract, or None when the header carries the text; raises when neither."""
    files = [u for u in uploads if u.part == PART_JOB_DESCRIPTION]
    if len(files) > 1:
        raise InvalidUpload("Send one job description file.", field=FIELD_OF_PART[PART_JOB_DESCRIPTION])
    if header.job_description_text.strip():
        return None
    if not files:
        raise InvalidUpload("A job description is required: send job_description_text or a job description file.",
                            field=FIELD_JD_TEXT)
    jd = files[0]
    if jd.truncated:
        raise PayloadTooLarge(f"The job description file is larger than {limits.max_file_bytes} bytes.",
                              field=FIELD_OF_PART[PART_JOB_DESCRIPTION], outcome=Outcome.FILE_TOO_LARGE)
    return jd


def job_description_failure(outcome: Outcome, message: str) -> InvalidUpload | InvalidFileContent:
    """The request error for a job description file that yielded no text."""
    field_name = FIELD_OF_PART[PART_JOB_DESCRIPTION]
    if outcome is Outcome.UNSUPPORTED_TYPE:
        return InvalidUpload(f"Job description file: {message}", field=field_name, outcome=outcome)
    return InvalidFileContent(f"Job description file: {message}", field=field_name, outcome=outcome)


def check_parts(header: Header, uploads: Sequence[Upload]) -> None:
    """Every file arrives in a part its input type expects."""
    expected = SOURCE_PART.get(header.input_type)
    for u in uploads:
        if u.part not in PARTS:
            raise InvalidUpload(f"Unknown upload part {u.part!r}; expected one of {', '.join(PARTS)}.",
                                field=u.part or "file")
        if u.part != PART_JOB_DESCRIPTION and u.part != expected:
            raise InvalidUpload(f"A {u.part!r} file is not expected for input_type {header.input_type.name}.",
                                field=FIELD_OF_PART[u.part])


def _single(uploads: Sequence[Upload], part: str, what: str) -> Upload:
    found = [u for u in uploads if u.part == part]
    if len(found) != 1:
        raise InvalidUpload(f"Send exactly one {what} (got {len(found)}).", field=FIELD_OF_PART[part])
    return found[0]


def checked_file(filename: str, data: bytes, content_type: str, limits: ExtractionLimits,
                  *, size: int | None = None) -> PlannedCandidate:
    """One CV file: spooled when its type and bytes agree, refused with its outcome otherwise."""
    name = filename or "unnamed"
    if (size if size is not None else len(data)) > limits.max_file_bytes:
        return PlannedCandidate(name, CandidateState.FILE_TOO_LARGE,
                                f"The file is larger than {limits.max_file_bytes} bytes.", content_type=content_type)
    detection = detect_kind(name, data, content_type or None)
    if detection.outcome is not Outcome.OK:
        return PlannedCandidate(name, CandidateState(detection.outcome.value), detection.message,
                                content_type=content_type)
    return PlannedCandidate(name, CandidateState.PENDING, payload=data, content_type=content_type)


def _csv_candidates(data: bytes, limits: ExtractionLimits, field_name: str) -> list[PlannedCandidate]:
    out = []
    for row in parse_csv(data, limits, field=field_name):
        # A display name for the row: its file name, else its id; the person's name only as a last resort.
        label = row.filename or row.candidate_id or row.name or f"row {row.row_number}"
        out.append(PlannedCandidate(label, CandidateState.PENDING, payload=row.resume_text.encode("utf-8"),
                                    payload_kind="text", content_type="text/plain", external_id=row.candidate_id))
    return out


def plan_candidates(header: Header, uploads: Sequence[Upload], limits: ExtractionLimits) -> list[PlannedCandidate]:
    """The candidates of a file-based submission, in submission order; raises for a bad request.

    CPU-bound for a large ZIP (members are decompressed in memory after the central-directory checks):
    the caller runs it off the event loop.
    """
    check_parts(header, uploads)
    it = header.input_type
    planned: list[PlannedCandidate]
    if it is InputType.FILES:
        cvs = [u for u in uploads if u.part == PART_CV]
        if not cvs:
            raise InvalidUpload("At least one CV file is required.", field=FIELD_OF_PART[PART_CV])
        planned = [checked_file(u.filename, u.data, u.content_type, limits, size=u.size) for u in cvs]
    elif it is InputType.ZIP_FILE:
        z = _single(uploads, PART_ZIP, "ZIP archive")
        field_name = FIELD_OF_PART[PART_ZIP]
        if z.truncated:
            raise PayloadTooLarge(f"The archive is larger than {limits.max_archive_bytes} bytes.", field=field_name,
                                  outcome=Outcome.FILE_TOO_LARGE)
        planned = []
        for entry in expand_zip(z.data, limits, field=field_name):
            if isinstance(entry, ArchiveEntry):
                planned.append(checked_file(entry.name, entry.data, "", limits))
            else:
                planned.append(PlannedCandidate(entry.name, CandidateState(entry.outcome.value), entry.message))
    elif it is InputType.CSV_FILE:
        c = _single(uploads, PART_CSV, "CSV file")
        if c.truncated:
            raise PayloadTooLarge(f"The CSV is larger than {limits.max_csv_bytes} bytes.",
                                  field=FIELD_OF_PART[PART_CSV], outcome=Outcome.FILE_TOO_LARGE)
        planned = _csv_candidates(c.data, limits, FIELD_OF_PART[PART_CSV])
    elif it is InputType.CSV_TEXT:
        if not header.csv_text.strip():
            raise InvalidUpload("csv_text is required for input_type CSV_TEXT.", field=FIELD_CSV_TEXT)
        planned = _csv_candidates(header.csv_text.encode("utf-8"), limits, FIELD_CSV_TEXT)
    elif it is InputType.SINGLE_PDF:
        p = _single(uploads, PART_PDF, "PDF file")
        field_name = FIELD_OF_PART[PART_PDF]
        if p.truncated:
            raise PayloadTooLarge(f"The PDF is larger than {limits.max_file_bytes} bytes.", field=field_name,
                                  outcome=Outcome.FILE_TOO_LARGE)
        check_pdf_upload(p.filename, p.content_type, p.data, field=field_name)
        planned = [PlannedCandidate(p.filename, CandidateState.PENDING, payload=p.data, content_type=p.content_type)]
    else:
        raise InvalidUpload(f"input_type {it.name} is not supported yet.", field="input_type")
    if not planned:
        source_part = SOURCE_PART.get(it, "")
        raise InvalidUpload("The upload contains no CV files.", field=FIELD_OF_PART.get(source_part, "file"))
    check_candidate_limit(header, len(planned))
    return planned


def split_rescore(source_config_json: str) -> tuple[str, bool]:
    """Takes the ``rescore`` flag out of a source config: (the config without it, the flag).

    ``rescore: true`` asks a re-run to match again content already matched for the job. A config that is
    not a JSON object is returned unchanged for the source parser to report.
    """
    try:
        obj = json.loads(source_config_json) if source_config_json.strip() else None
    except ValueError:
        return source_config_json, False
    if not isinstance(obj, dict) or "rescore" not in obj:
        return source_config_json, False
    flag = obj.pop("rescore")
    if not isinstance(flag, bool):
        raise InvalidUpload("rescore must be true or false.", field="source_config_json.rescore")
    return json.dumps(obj), flag


ALREADY_MATCHED_MESSAGE = ("This content was already matched for this job_id in an earlier batch; it was not "
                           "matched nor charged again (send \"rescore\": true in source_config_json to match "
                           "it again).")


def skip_already_matched(candidates: Sequence[PlannedCandidate], matched: set[str]) -> list[PlannedCandidate]:
    """The candidates with those whose source content was already matched for the job marked skipped."""
    return [replace(c, state=CandidateState.ALREADY_MATCHED, message=ALREADY_MATCHED_MESSAGE, payload=b"")
            if not c.refused and c.source_sha256 and c.source_sha256 in matched else c for c in candidates]


# The field that carries a batch's candidates, per input type (what a too-many-candidates error names).
FIELD_FIRST_CANDIDATES = {InputType.FILES: FIELD_OF_PART[PART_CV], InputType.ZIP_FILE: FIELD_OF_PART[PART_ZIP],
                          InputType.CSV_FILE: FIELD_OF_PART[PART_CSV], InputType.SINGLE_PDF: FIELD_OF_PART[PART_PDF],
                          InputType.CSV_TEXT: FIELD_CSV_TEXT}
FIELD_SOURCE_CONFIG = "source_config_json"


def candidates_field(input_type: InputType) -> str:
    """The request field holding the candidates of this input type (remote sources: their config)."""
    return FIELD_FIRST_CANDIDATES.get(input_type, FIELD_SOURCE_CONFIG)


def check_candidate_limit(header: Header, count: int) -> None:
    """The per-batch candidate limit (the plan's, or the sync call's `max_candidates`), when the gateway
    passed it; the error names the field the candidates came in."""
    if header.max_candidates > 0 and count > header.max_candidates:
        raise InvalidUpload(f"{count} candidates submitted; at most {header.max_candidates} are allowed in this "
                            "batch.", field=candidates_field(header.input_type), outcome=Outcome.LIMITS_EXCEEDED)


def gave_up_message(republishes: int, waited_seconds: float) -> str:
    """Why a candidate the matcher never answered was given up (no file name or content)."""
    return (f"No match result arrived after the candidate was sent for matching {republishes + 1} times over "
            f"about {round(waited_seconds * (republishes + 1))} s; the matcher did not answer. Submit it again.")


def settle(total: int, processed: int, failed: int) -> BatchStatus | None:
    """The final status once every candidate has an outcome (failed when not one could be used)."""
    if processed < total:
        return None
    return BatchStatus.FAILED if failed >= total else BatchStatus.COMPLETED


def failure_message(total: int, by_state: dict[CandidateState, int]) -> str:
    """Why a batch failed, in counts only (no file names or content)."""
    parts = ", ".join(f"{n} {state.value}" for state, n in sorted(by_state.items(), key=lambda kv: kv[0].value))
    return f"None of the {total} candidate(s) could be matched ({parts})."
