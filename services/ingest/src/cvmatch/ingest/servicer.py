"""gRPC surface of the ingest service: proto <-> domain only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import grpc

from cvmatch.api.ingest.v1 import batch_pb2, ingest_service_pb2_grpc
from cvmatch.api.ingest.v1 import ingest_service_pb2 as pb
from cvmatch.ingest import domain, errors
from cvmatch.ingest.admission import Admission
from cvmatch.ingest.config import Settings
from cvmatch.ingest.domain import ApiFlavor, Header, Upload
from cvmatch.ingest.events import API_FLAVOR_TO_PROTO, INPUT_TYPE_TO_PROTO, STATE_TO_PROTO
from cvmatch.ingest.extraction import ExtractionPool, Outcome
from cvmatch.ingest.repository import Repository
from cvmatch.platform.timestamps import timestamp

Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]

INPUT_TYPE_FROM_PROTO = {v: k for k, v in INPUT_TYPE_TO_PROTO.items()}
API_FLAVOR_FROM_PROTO = {v: k for k, v in API_FLAVOR_TO_PROTO.items()}
OUTCOME_TO_PROTO = {o: STATE_TO_PROTO[domain.CandidateState.from_outcome(o)] for o in Outcome}

DEFAULT_PAGE = 100
MAX_PAGE = 1000
MAX_IDEMPOTENCY_KEY = 255


def batch_proto(b: domain.Batch) -> batch_pb2.Batch:
    """The wire form of a batch."""
    return batch_pb2.Batch(
        batch_id=b.batch_id, account_id=b.account_id,
        status=batch_pb2.BatchStatus.Value(f"BATCH_STATUS_{b.status.name}"),
        input_type=INPUT_TYPE_TO_PROTO[b.input_type],  # type: ignore[arg-type]
        api_flavor=API_FLAVOR_TO_PROTO[b.api_flavor],  # type: ignore[arg-type]
        total_candidates=b.total_candidates, processed_candidates=b.processed_candidates,
        failed_candidates=b.failed_candidates, pending_candidates=b.pending_candidates,
        create_time=timestamp(b.created_at), update_time=timestamp(b.updated_at),
        complete_time=timestamp(b.completed_at), error_message=b.error_message, job_id=b.job_id,
        job_description_sha256=b.job_description_sha256, webhook_url=b.webhook_url,
        metadata_json=b.metadata_json, requirements_json=b.requirements_json)


def candidate_proto(c: domain.Candidate) -> batch_pb2.Candidate:
    """The wire form of a candidate."""
    return batch_pb2.Candidate(
        candidate_id=c.candidate_id, batch_id=c.batch_id, original_filename=c.original_filename,
        external_id=c.external_id, outcome=STATE_TO_PROTO[c.state],  # type: ignore[arg-type]
        outcome_message=c.message, content_sha256=c.content_sha256, position=c.position)


def header_from_proto(h: pb.BatchHeader) -> Header:
    """The domain header; raises for a missing account or input type."""
    if h.account_id <= 0:
        raise errors.invalid_input("account_id is required", "account_id")
    if len(h.idempotency_key) > MAX_IDEMPOTENCY_KEY:
        raise errors.invalid_input(f"idempotency_key must be at most {MAX_IDEMPOTENCY_KEY} characters",
                                   "idempotency_key")
    input_type = INPUT_TYPE_FROM_PROTO.get(h.input_type)
    if input_type is None:
        raise errors.invalid_input("input_type is required", "input_type")
    return Header(
        account_id=h.account_id, input_type=input_type,
        api_flavor=API_FLAVOR_FROM_PROTO.get(h.api_flavor, ApiFlavor.UNSPECIFIED),
        job_description_text=h.job_description_text, idempotency_key=h.idempotency_key.strip(),
        request_sha256=h.request_sha256, webhook_url=h.webhook_url, job_id=h.job_id,
        source_config_json=h.source_config_json, metadata_json=h.metadata_json,
        requirements_json=h.requirements_json, max_candidates=max(0, h.max_candidates), csv_text=h.csv_text)


@dataclass
class _Receiving:
    part: str
    filename: str
    content_type: str
    cap: int
    data: bytearray = field(default_factory=bytearray)
    size: int = 0

    def done(self) -> Upload:
        return Upload(self.part, self.filename, self.content_type, bytes(self.data), self.size)


async def read_submission(requests: AsyncIterator[pb.CreateBatchRequest], settings: Settings,
                          ) -> tuple[Header, list[Upload]]:
    """The header and the files of a CreateBatch stream; enforces the request size as bytes arrive.

    A file over its part's limit keeps only limit + 1 bytes (so it is seen as too large) while the
    stream is drained; the whole request over `max_request_bytes` is refused at once.
    """
    header: Header | None = None
    uploads: list[Upload] = []
    current: _Receiving | None = None
    total = 0
    async for req in requests:
        which = req.WhichOneof("payload")
        if header is None:
            if which != "header":
                raise errors.invalid_input("The first message of CreateBatch must be the header", "header")
            header = header_from_proto(req.header)
            continue
        if which != "chunk":
            raise errors.invalid_input("Only the first message of CreateBatch may be a header", "header")
        chunk = req.chunk
        total += len(chunk.data)
        if total > settings.max_request_bytes:
            raise errors.payload_too_large(f"The request is larger than {settings.max_request_bytes} bytes.",
                                           "request")
        if current is not None and chunk.part and chunk.part != current.part:
            # A new part began without `last` on the previous one: the previous file is complete.
            uploads.append(current.done())
            current = None
        if current is None:
            current = _Receiving(chunk.part, chunk.filename, chunk.content_type,
                                 domain.part_cap(chunk.part, settings.limits))
        room = current.cap - len(current.data)
        if room > 0:
            current.data += chunk.data[:room]
        current.size += len(chunk.data)
        if chunk.last:
            uploads.append(current.done())
            current = None
    if header is None:
        raise errors.invalid_input("CreateBatch needs a header", "header")
    if current is not None:
        uploads.append(current.done())
    return header, uploads


class IngestService(ingest_service_pb2_grpc.IngestServiceServicer):
    """Submissions, batch status and candidate texts."""

    def __init__(self, settings: Settings, repo: Repository, admission: Admission, pool: ExtractionPool) -> None:
        self._settings = settings
        self._repo = repo
        self._admission = admission
        self._pool = pool

    async def CreateBatch(self, request_iterator: AsyncIterator[pb.CreateBatchRequest],
                          context: Context) -> pb.CreateBatchResponse:
        header, uploads = await read_submission(request_iterator, self._settings)
        admitted = await self._admission.admit(header, uploads)
        return pb.CreateBatchResponse(
            batch=batch_proto(admitted.batch), idempotent_replay=admitted.replay,
            skipped_files=[pb.SkippedFile(filename=c.original_filename, outcome=STATE_TO_PROTO[c.state],  # type: ignore[arg-type]
                                          reason=c.message) for c in admitted.skipped])

    async def _batch(self, batch_id: str, account_id: int) -> domain.Batch:
        if not batch_id:
            raise errors.invalid_input("batch_id is required", "batch_id")
        batch = await self._repo.get_batch(batch_id, account_id or None)
        if batch is None:
            raise errors.batch_not_found(batch_id)
        return batch

    async def GetBatch(self, request: pb.GetBatchRequest, context: Context) -> pb.GetBatchResponse:
        return pb.GetBatchResponse(batch=batch_proto(await self._batch(request.batch_id, request.account_id)))

    async def ListCandidates(self, request: pb.ListCandidatesRequest,
                             context: Context) -> pb.ListCandidatesResponse:
        if request.skip < 0:
            raise errors.invalid_input("skip must be >= 0", "skip")
        if request.limit < 0 or request.limit > MAX_PAGE:
            raise errors.invalid_input(f"limit must be between 1 and {MAX_PAGE}", "limit")
        batch = await self._batch(request.batch_id, request.account_id)
        rows, total = await self._repo.list_candidates(batch.batch_id, request.skip, request.limit or DEFAULT_PAGE)
        return pb.ListCandidatesResponse(candidates=[candidate_proto(c) for c in rows], total=total)

    async def GetCandidateText(self, request: pb.GetCandidateTextRequest,
                               context: Context) -> pb.GetCandidateTextResponse:
        found = await self._repo.candidate_text(request.candidate_id)
        if found is None:
            raise errors.candidate_not_found(request.candidate_id)
        candidate, text = found
        return pb.GetCandidateTextResponse(candidate=candidate_proto(candidate), text=text)

    async def GetJobDescription(self, request: pb.GetJobDescriptionRequest,
                                context: Context) -> pb.GetJobDescriptionResponse:
        jd = await self._repo.job_description(request.batch_id)
        if jd is None:
            raise errors.batch_not_found(request.batch_id)
        return pb.GetJobDescriptionResponse(text=jd.text, sha256=jd.sha256, job_id=jd.job_id,
                                            requirements_json=jd.requirements_json)

    async def ExtractText(self, request: pb.ExtractTextRequest,
                          context: Context) -> pb.ExtractTextResponse:
        doc = await self._pool.extract(request.filename, request.data, request.content_type or None)
        return pb.ExtractTextResponse(outcome=OUTCOME_TO_PROTO[doc.outcome],  # type: ignore[arg-type]
                                      message=doc.message, text=doc.text, content_sha256=doc.content_sha256)
