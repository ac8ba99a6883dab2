"""ingest's gRPC API as the matcher uses it: a batch's job description and a candidate's text."""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from cvmatch.api.ingest.v1 import ingest_service_pb2 as pb
from cvmatch.api.ingest.v1 import ingest_service_pb2_grpc as pb_grpc
from cvmatch.platform import errors
from cvmatch.platform.grpc_client import open_channel


@dataclass(frozen=True)
class JobDescription:
    """A batch's job description."""

    text: str
    job_id: str
    requirements_json: str


@dataclass(frozen=True)
class CandidateText:
    """A candidate's extracted text and the names a recruiter knows it by."""

    text: str
    original_filename: str
    external_id: str


class NotInIngest(Exception):
    """ingest does not know the batch or candidate (it will not appear on a retry)."""


class IngestClient:
    """A channel to ingest with deadlines and retries on UNAVAILABLE (from the platform's client)."""

    def __init__(self, address: str, timeout_seconds: float) -> None:
        self._channel = open_channel(address, default_timeout=timeout_seconds)
        self._stub = pb_grpc.IngestServiceStub(self._channel)

    async def close(self) -> None:
        """Closes the channel."""
        await self._channel.close()

    @staticmethod
    def _map(exc: grpc.aio.AioRpcError, what: str) -> Exception:
        if exc.code() == grpc.StatusCode.NOT_FOUND:
            return NotInIngest(f"ingest has no {what}")
        # Anything else is worth a retry: the event is nak'ed and redelivered later.
        return errors.unavailable(f"ingest could not return the {what} ({exc.code().name})")

    async def job_description(self, batch_id: str) -> JobDescription:
        """The batch's job description; raises NotInIngest or a retryable error."""
        try:
            resp = await self._stub.GetJobDescription(pb.GetJobDescriptionRequest(batch_id=batch_id))
        except grpc.aio.AioRpcError as exc:
            raise self._map(exc, "job description for this batch") from None
        return JobDescription(resp.text, resp.job_id, resp.requirements_json)

    async def candidate_text(self, candidate_id: str) -> CandidateText:
        """The candidate's text; raises NotInIngest or a retryable error."""
        try:
            resp = await self._stub.GetCandidateText(pb.GetCandidateTextRequest(candidate_id=candidate_id))
        except grpc.aio.AioRpcError as exc:
            raise self._map(exc, "text for this candidate") from None
        return CandidateText(resp.text, resp.candidate.original_filename, resp.candidate.external_id)
