"""Accepting a submission: check it, count it, reserve credits, make it durable in one transaction.

Order matters for the promises of DESIGN §2 and §8:
1. everything that can refuse the request without side effects runs first (parts, limits, archive
   pre-checks, CSV parse, the job description extracted in the sandbox);
2. the idempotency record is written and committed (a concurrent duplicate now sees it: 409, or 200
   once accepted; a different request under the same key: 422);
   For a remote source (S3, Google Drive, database) the source is read only now, after the claim, so a
   replay never reads it again; a failure while reading removes the record;
3. billing reserves one credit per candidate that will be extracted (402 passes through intact);
4. the batch, its candidates, the spool and `ingest.batch.created` are written in one transaction.
A failure after (2) removes the record (and after (3) releases the credits), so nothing is left behind;
a crash between (3) and (4) leaves an `admitting` record that the reconciler releases.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import grpc

from cvmatch.api.billing.v1 import billing_service_pb2 as billing_pb
from cvmatch.api.billing.v1 import billing_service_pb2_grpc as billing_grpc
from cvmatch.ingest import domain, errors
from cvmatch.ingest.config import Settings
from cvmatch.ingest.domain import Admitted, CandidateState, Claim, Header, NewBatch, PlannedCandidate, Upload
from cvmatch.ingest.extraction import ExtractionLimits, ExtractionPool, ExtractionRequestError
from cvmatch.ingest.repository import Repository
from cvmatch.ingest.sources import (
    CONFIG_FIELD,
    FetchedItem,
    FileCredentialStore,
    SourceConfig,
    SourceError,
    SourceItem,
    iter_fetch,
    open_source,
    parse_source_config,
    resolve_credentials,
)

log = logging.getLogger(__name__)


class Billing(Protocol):
    """The part of billing's contract ingest uses."""

    async def reserve(self, account_id: int, batch_id: str, credits: int) -> None:
        """Holds credits for a batch; raises the downstream error (402) when short."""

    async def release(self, account_id: int, batch_id: str) -> None:
        """Returns a batch's unused reservation."""


class GrpcBilling:
    """Billing over its gRPC API (`cvmatch.api.billing.v1.BillingService`)."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = billing_grpc.BillingServiceStub(channel)

    async def reserve(self, account_id: int, batch_id: str, credits: int) -> None:
        """ReserveCredits; an AioRpcError is rebuilt into the client's error by the server interceptor."""
        await self._stub.ReserveCredits(
            billing_pb.ReserveCreditsRequest(account_id=account_id, batch_id=batch_id, credits=credits))

    async def release(self, account_id: int, batch_id: str) -> None:
        """ReleaseCredits (idempotent in billing)."""
        await self._stub.ReleaseCredits(billing_pb.ReleaseCreditsRequest(account_id=account_id, batch_id=batch_id))


@dataclass(frozen=True)
class RemoteSource:
    """A remote source as the request describes it, checked but not read yet."""

    config: SourceConfig
    #: ``rescore: true``: match again content already matched for the job (see `domain.split_rescore`).
    rescore: bool

    @property
    def storable_json(self) -> str:
        """What the batch row keeps of the source: never a credential, token or connection string."""
        return json.dumps(self.config.storable(), sort_keys=True)


def parse_remote(header: Header, settings: Settings) -> RemoteSource:
    """Checks ``source_config_json`` for an AWS_S3 / GOOGLE_DRIVE / DATABASE header (400 naming the field)."""
    config_json, rescore = domain.split_rescore(header.source_config_json)
    config = parse_source_config(header.input_type.name, config_json, max_rows_limit=settings.sources.db_max_rows)
    return RemoteSource(config, rescore)


def _planned(f: FetchedItem, limits: ExtractionLimits) -> PlannedCandidate:
    """One fetched item as a candidate: file bytes get the upload checks, row text is spooled like a CSV row."""
    item = f.item
    if f.ok and f.data is not None:
        checked = domain.checked_file(item.filename, f.data, item.content_type or "", limits)
        return dataclasses.replace(checked, external_id=item.id, source_sha256=f.sha256 if not checked.refused else "")
    if f.ok and f.text is not None:
        return PlannedCandidate(item.filename, CandidateState.PENDING, payload=f.text.encode("utf-8"),
                                payload_kind="text", content_type="text/plain", external_id=item.id,
                                source_sha256=f.sha256)
    outcome = f.outcome.value if f.outcome is not None else CandidateState.INVALID_FILE_CONTENT.value
    return PlannedCandidate(item.filename, CandidateState(outcome), f.message, external_id=item.id)


def _not_read(items: Sequence[SourceItem], state: CandidateState, message: str) -> list[PlannedCandidate]:
    return [PlannedCandidate(i.filename, state, message, external_id=i.id) for i in items]


async def remote_candidates(header: Header, remote: RemoteSource, settings: Settings) -> list[PlannedCandidate]:
    """Lists and reads a remote source into candidates, in listing order.

    Whole-source problems (unreachable, bad credentials, an empty folder, a query error, too many items)
    found before any content was read are raised as the public error naming ``source_config_json``
    (nothing is kept, nothing is charged). A source that fails part-way keeps what was read and reports
    each remaining item as ``source_error`` with the (secret-free) reason. Bytes read are bounded by
    ``max_source_bytes``: a listing over it is 413, content past it is ``limits_exceeded`` per item.
    """
    s = settings.sources
    store = FileCredentialStore(s.credentials_file) if s.credentials_file else None
    credentials = await resolve_credentials(remote.config, str(header.account_id), store)
    planned: list[PlannedCandidate] = []
    items: list[SourceItem] = []
    read_any = False
    total = 0
    cap = settings.max_source_bytes
    try:
        async with open_source(remote.config, credentials, settings=s) as source:
            # Every source raises its own EMPTY error for an empty listing (a 400 on source_config_json).
            items = await source.list_items()
            declared = sum(i.size or 0 for i in items if i.to_fetch)
            if declared > cap:
                raise errors.payload_too_large(
                    f"The source holds {declared} bytes of CVs; at most {cap} are read per batch. Narrow it "
                    "(a prefix, a sub-folder, a WHERE clause) or split it into several batches.", CONFIG_FIELD)
            async for f in iter_fetch(source, items):
                size = len(f.data or b"") + len((f.text or "").encode("utf-8"))
                if total + size > cap:
                    break  # the rest are reported below without reading them
                total += size
                read_any = read_any or f.ok
                planned.append(_planned(f, settings.limits))
    except SourceError as exc:
        if not read_any:
            raise exc.to_domain_error() from None
        log.warning("source failed part-way; keeping what was read",
                    extra={"source": remote.config.describe(), "failure": exc.failure.value, "read": len(planned)})
        return planned + _not_read(items[len(planned):], CandidateState.SOURCE_ERROR,
                                   f"Not read: the source failed part-way. {exc.message}")
    if len(planned) < len(items):
        planned += _not_read(items[len(planned):], CandidateState.LIMITS_EXCEEDED,
                             f"Not read: the batch already read {total} bytes from the source, the per-batch "
                             f"limit is {cap}. Submit the rest in another batch.")
    return planned


class Admission:
    """Runs CreateBatch's rules against the repository, the sandbox and billing."""

    def __init__(self, settings: Settings, repo: Repository, pool: ExtractionPool, billing: Billing,
                 on_accepted: Callable[[], None] = lambda: None) -> None:
        self._settings = settings
        self._repo = repo
        self._pool = pool
        self._billing = billing
        self._on_accepted = on_accepted

    async def admit(self, header: Header, uploads: Sequence[Upload]) -> Admitted:
        """Accepts a submission (or replays the earlier one); raises a DomainError naming the problem."""
        remote: RemoteSource | None = None
        candidates: list[PlannedCandidate]
        try:
            if header.input_type in domain.REMOTE_INPUTS:
                domain.check_parts(header, uploads)
                remote = parse_remote(header, self._settings)
                candidates, jd_text = [], await self._job_description(header, uploads)
            else:
                candidates, jd_text = await self._check(header, uploads)
        except ExtractionRequestError as exc:
            raise errors.from_request_error(exc) from None
        batch_id = str(uuid.uuid4())
        digest = header.request_sha256 or domain.request_digest(header, uploads)
        claim, existing = await self._repo.claim_submission(
            batch_id, header.account_id, header.idempotency_key, digest, self._settings.idempotency_ttl_seconds)
        if claim is Claim.MISMATCH:
            raise errors.idempotency_key_reused()
        if claim is Claim.IN_FLIGHT:
            raise errors.idempotency_in_flight()
        if claim is Claim.REPLAY:
            return await self._replay(existing, header.account_id)
        if remote is not None:
            try:
                candidates = await self._read_remote(header, remote)
            except BaseException:
                await asyncio.shield(self._repo.drop_submission(batch_id))
                raise
        new = NewBatch(batch_id=batch_id, header=header, job_description=jd_text,
                       job_description_sha256=hashlib.sha256(jd_text.encode()).hexdigest(), candidates=candidates,
                       source_config_json=remote.storable_json if remote is not None else "")
        return await self._accept(new)

    async def _read_remote(self, header: Header, remote: RemoteSource) -> list[PlannedCandidate]:
        """The candidates of a remote source; on a re-run of a job, content already matched is skipped."""
        candidates = await remote_candidates(header, remote, self._settings)
        try:
            domain.check_candidate_limit(header, len(candidates))
        except ExtractionRequestError as exc:
            raise errors.from_request_error(exc) from None
        if header.job_id and not remote.rescore:
            matched = await self._repo.matched_source_hashes(
                header.account_id, header.job_id, [c.source_sha256 for c in candidates if c.source_sha256])
            candidates = domain.skip_already_matched(candidates, matched)
        return candidates

    async def _check(self, header: Header, uploads: Sequence[Upload]) -> tuple[list[PlannedCandidate], str]:
        # Expanding a ZIP decompresses up to the archive limits: keep it off the event loop.
        candidates = await asyncio.to_thread(domain.plan_candidates, header, uploads, self._settings.limits)
        return candidates, await self._job_description(header, uploads)

    async def _job_description(self, header: Header, uploads: Sequence[Upload]) -> str:
        """The job description text: from the header, or extracted from its file in the sandbox."""
        jd_upload = domain.job_description_upload(header, uploads, self._settings.limits)
        if jd_upload is None:
            return domain.check_job_description(header.job_description_text,
                                                self._settings.max_job_description_chars)
        doc = await self._pool.extract(jd_upload.filename, jd_upload.data, jd_upload.content_type or None)
        if not doc.ok:
            raise domain.job_description_failure(doc.outcome, doc.message)
        return domain.check_job_description(doc.text, self._settings.max_job_description_chars,
                                            domain.FIELD_OF_PART[domain.PART_JOB_DESCRIPTION])

    async def _replay(self, batch_id: str, account_id: int) -> Admitted:
        batch = await self._repo.get_batch(batch_id, account_id)
        if batch is None:  # accepted records always have their batch; be explicit rather than crash
            raise errors.idempotency_in_flight()
        return Admitted(batch=batch, replay=True, skipped=await self._repo.refused_candidates(batch_id))

    async def _accept(self, new: NewBatch) -> Admitted:
        account = new.header.account_id
        try:
            if new.chargeable:
                await self._billing.reserve(account, new.batch_id, new.chargeable)
        except BaseException:
            await asyncio.shield(self._repo.drop_submission(new.batch_id))
            raise
        try:
            batch = await self._repo.create_batch(new)
        except BaseException:
            log.warning("batch could not be stored; releasing its credits", extra={"batch_id": new.batch_id})
            with contextlib.suppress(Exception):
                await asyncio.shield(self._undo(account, new.batch_id, new.chargeable > 0))
            raise
        self._on_accepted()
        log.info("batch accepted", extra={"batch_id": new.batch_id, "total": batch.total_candidates,
                                          "charged": new.chargeable})
        skipped = [domain.Candidate(c.candidate_id, new.batch_id, i, c.filename, c.external_id, c.state, c.message, "")
                   for i, c in enumerate(new.candidates) if c.refused]
        return Admitted(batch=batch, replay=False, skipped=skipped)

    async def _undo(self, account_id: int, batch_id: str, reserved: bool) -> None:
        if reserved:
            await self._billing.release(account_id, batch_id)
        await self._repo.drop_submission(batch_id)
