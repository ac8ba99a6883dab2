"""What every upload endpoint does: authenticate before reading the body, parse it under limits and send the
batch to ingest."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, TypeAlias

import grpc
from google.api import httpbody_pb2

from cvmatch.api.ingest.v1 import batch_pb2
from cvmatch.api.ingest.v1 import ingest_service_pb2 as ingest
from cvmatch.gateway.auth import Authenticator
from cvmatch.gateway.backends import Backends
from cvmatch.gateway.forms import CANDIDATE_FILE, Submission
from cvmatch.gateway.uploads import Form, Limits, read_form
from cvmatch.platform import errors
from cvmatch.platform.errors import DomainError
from cvmatch.platform.interceptors import from_downstream
from cvmatch.platform.logging import request_id_var

Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]
MAX_SKIP = 1_000_000
MAX_LIMIT = 1000


def header_value(context: Context, name: str) -> str:
    """A request header (Envoy passes HTTP headers as lowercase metadata)."""
    for key, value in context.invocation_metadata() or ():
        if key == name and isinstance(value, str):
            return value
    return ""


def page_bounds(skip: int, limit: int | None, default: int = 100) -> tuple[int, int]:
    """Validates `skip` / `limit` query parameters."""
    if skip < 0 or skip > MAX_SKIP:
        raise errors.invalid_input(f"'skip' must be between 0 and {MAX_SKIP}", "skip")
    lim = default if limit is None else limit
    if not 1 <= lim <= MAX_LIMIT:
        raise errors.invalid_input(f"'limit' must be between 1 and {MAX_LIMIT}", "limit")
    return skip, lim


class Submitter:
    """Parses an upload and hands it to ingest."""

    def __init__(self, auth: Authenticator, backends: Backends, max_request_bytes: int, max_file_bytes: int) -> None:
        self.auth = auth
        self.backends = backends
        self.limits = Limits(max_request_bytes, max_file_bytes, frozenset(CANDIDATE_FILE))

    async def read(self, body: AsyncIterator[httpbody_pb2.HttpBody]) -> Form:
        """The parsed request (the caller closes it)."""
        return await read_form(body, self.limits)

    async def check_webhook(self, url: str) -> None:
        """Refuses an unsafe callback URL before anything is stored."""
        if not url:
            return
        if url.lower().startswith("http://"):
            raise errors.invalid_input("The webhook_url must use https://", "webhook_url",
                                       reason="INSECURE_WEBHOOK_URL")
        try:
            await self.backends.validate_webhook_url(url)
        except grpc.aio.AioRpcError as exc:
            mapped = from_downstream(exc)
            if mapped.code == grpc.StatusCode.INVALID_ARGUMENT:
                # Keep the notifier's reason (PRIVATE_WEBHOOK_URL, ...) but name the public field.
                raise DomainError(mapped.message, mapped.reason, mapped.code, mapped.http_status,
                                  (errors.FieldViolation("webhook_url", mapped.message),),
                                  {**mapped.details, "field": "webhook_url"}) from None
            raise mapped from None

    async def send(self, sub: Submission) -> ingest.CreateBatchResponse:
        """Validates the webhook, then streams the batch to ingest; errors name the client's own fields."""
        await self.check_webhook(sub.webhook_url)
        return await self.submit(sub)

    async def submit(self, sub: Submission) -> ingest.CreateBatchResponse:
        """Streams the batch to ingest; an error about a part names the form field the client used."""
        if not sub.header.request_id:
            sub.header.request_id = request_id_var.get()
        try:
            resp = await self.backends.submit(sub.header, sub.files)
        except grpc.aio.AioRpcError as exc:
            err = from_downstream(exc)
            if err.code != grpc.StatusCode.INVALID_ARGUMENT:
                raise
        else:
            _refuse_if_nothing_usable(sub, resp)
            return resp
        violations = tuple(errors.FieldViolation(sub.public_field(v.field), v.description) for v in err.violations)
        details = dict(err.details)
        if "field" in details:
            details["field"] = sub.public_field(details["field"])
        raise DomainError(err.message, err.reason, err.code, err.http_status, violations, details,
                          err.retry_after_seconds)


def _refuse_if_nothing_usable(sub: Submission, resp: ingest.CreateBatchResponse) -> None:
    """Every file was refused at submission (a ZIP of only unsupported files, CVs that are not CVs): the
    client gets a 400 naming its field, as the seeds document for an invalid file type, not a batch that
    is born failed. Nothing was charged; the failed batch stays visible under its id.

    A re-run of a source whose content was all matched before (`already_matched`) is not refused: the
    batch is accepted (202) and completes with no new result, as a re-run with nothing new should.
    """
    total = resp.batch.total_candidates
    if total <= 0 or len(resp.skipped_files) < total:
        return
    if any(s.outcome == batch_pb2.CANDIDATE_OUTCOME_ALREADY_MATCHED for s in resp.skipped_files):
        return
    part = next((p for p, _ in sub.files if p in ("cv", "zip", "csv", "pdf")), "cv")
    field_name = sub.public_field(part)
    listed = "; ".join(f"{s.filename}: {s.reason}" for s in resp.skipped_files[:5])
    more = f" (and {len(resp.skipped_files) - 5} more)" if len(resp.skipped_files) > 5 else ""
    message = f"None of the uploaded files can be matched: {listed}{more}"
    all_bad_content = all(s.outcome == batch_pb2.CANDIDATE_OUTCOME_INVALID_FILE_CONTENT for s in resp.skipped_files)
    raise DomainError(message, "INVALID_FILE_CONTENT" if all_bad_content else "INVALID_INPUT",
                      grpc.StatusCode.INVALID_ARGUMENT, 400, (errors.FieldViolation(field_name, message),),
                      {"field": field_name, "batch_id": resp.batch.batch_id})
