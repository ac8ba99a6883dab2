"""Killing the notifier process (SIGKILL) in the middle of deliveries loses nothing: after a restart every
event is delivered, the interrupted ones with the same webhook-id."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import trustme

from cvmatch.api.billing.v1 import events_pb2 as billing_events
from cvmatch.api.notifier.v1 import notifier_service_pb2_grpc as pb_grpc
from cvmatch.testing.servers import free_port, wait_for_port

from .conftest import Receiver, Request, create_endpoint, new_account, publish


class NotifierProcess:
    """``python -m cvmatch.notifier serve`` as a child process."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.port = int(env["NOTIFIER_GRPC_PORT"])
        self.proc: subprocess.Popen[bytes] | None = None

    def run(self, *args: str) -> None:
        subprocess.run([sys.executable, "-m", "cvmatch.notifier", *args], env=self.env, check=True,
                       capture_output=True, timeout=60)

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "cvmatch.notifier", "serve"], env=self.env,
                                         stdout=log, stderr=log, start_new_session=True)
        wait_for_port(self.port, 30, self.proc, "notifier")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture
def notifier_process(database_url: str, nats_url: str, ca: trustme.CA, tmp_path: Path) -> Iterator[NotifierProcess]:
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("NOTIFIER_")},
        "DATABASE_URL": database_url, "NATS_URL": nats_url, "CVMATCH_ENV": "test",
        "NOTIFIER_GRPC_PORT": str(free_port()), "NOTIFIER_ALLOW_LOOPBACK": "true", "NOTIFIER_CA_FILE": str(ca_file),
        "NOTIFIER_RETRY_SCHEDULE": "0.2,0.4,0.8", "NOTIFIER_TIMEOUT_SECONDS": "2", "NOTIFIER_LEASE_SECONDS": "3",
        "NOTIFIER_ENDPOINT_CONCURRENCY": "3", "NOTIFIER_POLL_SECONDS": "0.05", "PYTHONUNBUFFERED": "1",
    }
    proc = NotifierProcess(env, tmp_path / "notifier.log")
    proc.run("migrate")
    try:
        yield proc
    finally:
        proc.stop()


async def test_kill_in_the_middle_of_deliveries_and_restart(notifier_process: NotifierProcess, receiver_factory,
                                                            js) -> None:
    hang = asyncio.Event()

    async def respond(index: int, request: Request) -> tuple[int, dict[str, str]]:
        if index < 3:
            await hang.wait()  # in progress when the process dies
        return 200, {}

    receiver: Receiver = await receiver_factory(respond)
    notifier_process.start()
    account = new_account()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{notifier_process.port}") as channel:
        stub = pb_grpc.NotifierServiceStub(channel)
        await create_endpoint(stub, account, receiver.url(host="127.0.0.1"), ["credits.low"])
    events = 8
    for i in range(events):
        await publish(js, "billing.credits.low",
                      billing_events.CreditsLow(account_id=account, available=i, threshold=9))
    in_progress = await receiver.wait_for(3)
    interrupted = {r.headers["webhook-id"] for r in in_progress[:3]}
    notifier_process.kill()
    assert len(receiver.requests) == 3  # the rest waited behind the endpoint's concurrency limit
    notifier_process.start()
    # Unanswered attempts are retried once their lease (3 s) runs out; everything else goes at once.
    await receiver.wait_for(events + 3, timeout=30)
    await asyncio.sleep(0.5)
    ids = Counter(r.headers["webhook-id"] for r in receiver.requests)
    assert len(ids) == events  # every event delivered
    assert {i for i, n in ids.items() if n == 2} == interrupted  # same webhook-id after the restart
    assert max(ids.values()) == 2
