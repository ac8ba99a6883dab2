"""SkillMatchIQ batch processing: `/api/v1/batch-jobs/*`, the JavaScript example's `/api/batch/*`, and
`POST /api/batch/sync`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from google.api import httpbody_pb2

from cvmatch.api.gateway.v1 import gateway_service_pb2 as gw
from cvmatch.api.gateway.v1 import gateway_service_pb2_grpc as gw_grpc
from cvmatch.api.gateway.v1 import resources_pb2
from cvmatch.api.ingest.v1 import batch_pb2
from cvmatch.gateway import forms, views
from cvmatch.gateway.auth import Caller
from cvmatch.gateway.backends import Backends
from cvmatch.gateway.respond import rfc3339, send_headers
from cvmatch.gateway.submitting import Context, Submitter, header_value, page_bounds
from cvmatch.platform.logging import request_id_var

SYNC_POLL_FIRST = 0.1
SYNC_POLL_MAX = 1.0


class BatchJobsService(gw_grpc.BatchJobsServiceServicer):
    """Every SkillMatchIQ endpoint."""

    def __init__(self, submitter: Submitter) -> None:
        self._sub = submitter
        self._auth = submitter.auth
        self._backends: Backends = submitter.backends

    async def _submit(self, body: AsyncIterator[httpbody_pb2.HttpBody],
                      context: Context) -> tuple[batch_pb2.Batch, bool, Caller]:
        caller = await self._auth.authorize(context, "match:execute")
        form = await self._sub.read(body)
        try:
            sub = forms.batch_submission(form, caller.account_id, request_id_var.get(),
                                         header_value(context, "idempotency-key"))
            resp = await self._sub.send(sub)
        finally:
            form.close()
        return resp.batch, resp.idempotent_replay, caller

    async def SubmitBatchJob(self, request_iterator: AsyncIterator[httpbody_pb2.HttpBody],
                             context: Context) -> resources_pb2.BatchJob:
        batch, replay, caller = await self._submit(request_iterator, context)
        await send_headers(context, caller, 200 if replay else 202)
        job = views.batch_job(batch)
        job.idempotent_replay = replay
        return job

    async def SubmitBatch(self, request_iterator: AsyncIterator[httpbody_pb2.HttpBody],
                          context: Context) -> gw.SubmitBatchResponse:
        batch, replay, caller = await self._submit(request_iterator, context)
        await send_headers(context, caller, 200 if replay else 202)
        return gw.SubmitBatchResponse(batch_id=batch.batch_id, status=views.status_of(batch),
                                      total_candidates=batch.total_candidates,
                                      created_at=rfc3339(batch.create_time), idempotent_replay=replay)

    async def GetBatchJobStatus(self, request: gw.GetBatchJobStatusRequest,
                                context: Context) -> resources_pb2.BatchJob:
        caller = await self._auth.authorize(context, "match:read")
        batch = await self._backends.batch(request.batch_job_id, caller.account_id)
        await send_headers(context, caller)
        return views.batch_job(batch)

    async def GetBatchStatus(self, request: gw.GetBatchStatusRequest, context: Context) -> gw.GetBatchStatusResponse:
        caller = await self._auth.authorize(context, "match:read")
        batch = await self._backends.batch(request.batch_id, caller.account_id)
        await send_headers(context, caller)
        job = views.batch_job(batch)
        return gw.GetBatchStatusResponse(
            batch_id=batch.batch_id, status=job.status, progress_percentage=views.progress_percentage(batch),
            total_candidates=batch.total_candidates, processed_candidates=batch.processed_candidates,
            error_message=job.error_message)

    async def GetBatchJobResults(self, request: gw.GetBatchJobResultsRequest,
                                 context: Context) -> gw.GetBatchJobResultsResponse:
        caller = await self._auth.authorize(context, "match:read")
        skip, limit = page_bounds(request.skip, request.limit if request.HasField("limit") else None)
        batch = await self._backends.batch(request.batch_job_id, caller.account_id)
        page = await self._backends.results(batch, skip, limit)
        await send_headers(context, caller)
        job = views.batch_job(batch)
        return gw.GetBatchJobResultsResponse(
            batch_job_id=job.batch_job_id, user_id=job.user_id, status=job.status, job_title=page.job_title,
            job_summary=page.job_summary, total_candidates=job.total_candidates,
            processed_candidates=job.processed_candidates, created_at=job.created_at, updated_at=job.updated_at,
            completed_at=job.completed_at, error_message=job.error_message, summary_stats=page.stats,
            processed_items=views.items(page))

    async def GetBatchResults(self, request: gw.GetBatchResultsRequest,
                              context: Context) -> gw.GetBatchResultsResponse:
        caller = await self._auth.authorize(context, "match:read")
        skip, limit = page_bounds(request.skip, request.limit if request.HasField("limit") else None)
        batch = await self._backends.batch(request.batch_id, caller.account_id)
        page = await self._backends.results(batch, skip, limit)
        await send_headers(context, caller)
        return gw.GetBatchResultsResponse(
            batch_id=batch.batch_id, status=views.status_of(batch), job_title=page.job_title,
            job_summary=page.job_summary, summary_stats=page.stats,
            results=views.items(page))

    async def SyncBatch(self, request_iterator: AsyncIterator[httpbody_pb2.HttpBody],
                        context: Context) -> gw.SyncBatchResponse:
        """Submits like an async batch (and is billed like one), then waits up to `timeout` seconds."""
        # `timeout` counts from the request's arrival (the upload and admission included), so that the
        # answer always leaves before the edge's timeouts of this route (above SYNC_MAX_TIMEOUT).
        arrived = time.monotonic()
        caller = await self._auth.authorize(context, "match:execute")
        form = await self._sub.read(request_iterator)
        try:
            sub, timeout = forms.sync_submission(form, caller.account_id, request_id_var.get(),
                                                 header_value(context, "idempotency-key"))
            resp = await self._sub.send(sub)
        finally:
            form.close()
        batch = resp.batch
        deadline = arrived + timeout
        delay = SYNC_POLL_FIRST
        while views.status_of(batch) not in views.TERMINAL and time.monotonic() < deadline:
            await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(SYNC_POLL_MAX, delay * 1.5)
            batch = await self._backends.batch(batch.batch_id, caller.account_id)
        page = await self._backends.results(batch, 0, forms.SYNC_MAX_CANDIDATES + batch.failed_candidates)
        await send_headers(context, caller)
        job = views.batch_job(batch)
        return gw.SyncBatchResponse(
            batch_id=batch.batch_id, status=job.status, job_title=page.job_title, job_summary=page.job_summary,
            summary_stats=page.stats,
            results=views.items(page),
            total_candidates=batch.total_candidates, processed_candidates=batch.processed_candidates,
            error_message=job.error_message)
