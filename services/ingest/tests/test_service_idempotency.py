"""Idempotency keys (DESIGN §8): replay 200, different request 422, concurrent duplicate 409, and 50
concurrent identical submissions creating exactly one batch."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from cvmatch.api.ingest.v1 import ingest_service_pb2 as pb
from cvmatch.testing import filegen

from .conftest import BillingStub, IngestFactory, RunningIngest, balance, error_of, header, new_account, submit


def _files(n: int = 2, tag: str = "") -> list[tuple[str, str, str, bytes]]:
    return [("cv", f"cv{i}{tag}.txt", "text/plain", "\n".join(filegen.cv_lines(f"P{i}{tag}")).encode())
            for i in range(n)] + [("cv", "bad.png", "image/png", b"\x89PNG")]


@pytest.fixture
async def ingest(start_ingest: IngestFactory) -> RunningIngest:
    return await start_ingest(INGEST_IDEMPOTENCY_TTL_SECONDS="2")


async def test_replay_and_reuse_with_a_different_request(ingest: RunningIngest, billing_stub: BillingStub) -> None:
    account = await new_account(billing_stub, 20)
    first = await submit(ingest.stub, header(account, idempotency_key="key-1"), _files())
    again = await submit(ingest.stub, header(account, idempotency_key="key-1"), _files())
    assert again.idempotent_replay and not first.idempotent_replay
    assert again.batch.batch_id == first.batch.batch_id
    assert [s.filename for s in again.skipped_files] == ["bad.png"]
    # Same key, different files (ingest hashes the request itself when the gateway sends no hash).
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await submit(ingest.stub, header(account, idempotency_key="key-1"), _files(tag="x"))
    assert error_of(exc.value)[:2] == ("IDEMPOTENCY_KEY_REUSED", 422)
    # The gateway's hash wins when present.
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await submit(ingest.stub, header(account, idempotency_key="key-1", request_sha256="f" * 64), _files())
    assert error_of(exc.value)[:2] == ("IDEMPOTENCY_KEY_REUSED", 422)
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await submit(ingest.stub, header(account, idempotency_key="k" * 256), _files())
    assert error_of(exc.value)[:2] == ("INVALID_INPUT", 400)
    # Keys are per account.
    other = await new_account(billing_stub, 20)
    mine = await submit(ingest.stub, header(other, idempotency_key="key-1"), _files())
    assert mine.batch.batch_id != first.batch.batch_id and not mine.idempotent_replay
    assert (await balance(billing_stub, account)).reserved == 2
    # After the retention window the key is free again.
    await asyncio.sleep(2.2)
    fresh = await submit(ingest.stub, header(account, idempotency_key="key-1"), _files(tag="x"))
    assert fresh.batch.batch_id != first.batch.batch_id and not fresh.idempotent_replay


async def test_fifty_concurrent_identical_submissions_create_one_batch(ingest: RunningIngest,
                                                                       billing_stub: BillingStub) -> None:
    account = await new_account(billing_stub, 20)
    h = header(account, idempotency_key="burst", request_sha256="c" * 64)
    results = await asyncio.gather(*(submit(ingest.stub, h, _files()) for _ in range(50)), return_exceptions=True)
    ok = [r for r in results if isinstance(r, pb.CreateBatchResponse)]
    errors = [r for r in results if not isinstance(r, pb.CreateBatchResponse)]
    assert ok, errors[:1]
    assert len({r.batch.batch_id for r in ok}) == 1
    assert sum(1 for r in ok if not r.idempotent_replay) == 1
    for e in errors:
        assert isinstance(e, grpc.aio.AioRpcError), e
        assert error_of(e)[:2] == ("IDEMPOTENCY_REQUEST_IN_PROGRESS", 409)
    assert await ingest.db.fetchval("SELECT count(*) FROM batches") == 1
    assert await ingest.db.fetchval("SELECT count(*) FROM candidates") == 3
    assert await ingest.db.fetchval("SELECT count(*) FROM outbox WHERE subject = 'ingest.batch.created'") == 1
    bal = await balance(billing_stub, account)
    assert (bal.reserved, bal.available) == (2, 18)
    # Once accepted, every retry is a replay.
    late = await submit(ingest.stub, h, _files())
    assert late.idempotent_replay and late.batch.batch_id == ok[0].batch.batch_id
