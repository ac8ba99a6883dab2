"""`/v1/webhooks` through the real Envoy and gateway to the notifier (the whole Stack), with a local
HTTPS receiver that verifies what it gets."""

from __future__ import annotations

import re
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme

from cvmatch.notifier.webhooks import verify, verify_x_signature
from cvmatch.testing.stack import Stack


class _Receiver(ThreadingHTTPServer):
    received: list[tuple[dict[str, str], bytes]]


class _Handler(BaseHTTPRequestHandler):
    server: _Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        self.server.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[_Receiver, Path]]:
    ca = trustme.CA()
    ca_file = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    server = _Receiver(("127.0.0.1", 0), _Handler)
    server.received = []
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, ca_file
    finally:
        server.shutdown()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, receiver: tuple[_Receiver, Path]) -> Iterator[Stack]:
    s = Stack(tmp_path_factory.mktemp("stack"), extra_env={
        "NOTIFIER_ALLOW_LOOPBACK": "true", "NOTIFIER_CA_FILE": str(receiver[1]),
        "NOTIFIER_RETRY_SCHEDULE": "0.2,0.4", "NOTIFIER_POLL_SECONDS": "0.05"}).start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def admin(stack: Stack) -> dict[str, str]:
    out = stack.run_billing("bootstrap-local")
    match = re.search(r"CVMATCH_API_KEY=(\S+)", out)
    assert match, out
    return {"Authorization": f"Bearer {match.group(1)}"}


def test_webhook_lifecycle_through_envoy(stack: Stack, admin: dict[str, str],
                                         receiver: tuple[_Receiver, Path]) -> None:
    server = receiver[0]
    url = f"https://127.0.0.1:{server.server_address[1]}/hooks"
    base = f"{stack.url}/v1/webhooks"
    assert httpx.get(base).status_code == 401

    created = httpx.post(base, headers=admin, json={"url": url, "events": ["batch.completed"],
                                                    "description": "ats"})
    assert created.status_code == 201, created.text
    data = created.json()["data"]
    secret, wid = data["secret"], data["id"]
    assert secret.startswith("whsec_") and data["enabled"] is True and data["events"] == ["batch.completed"]

    listed = httpx.get(base, headers=admin)
    assert listed.status_code == 200 and [w["id"] for w in listed.json()["data"]] == [wid]
    assert not listed.json()["data"][0].get("secret")
    assert httpx.get(f"{base}/{wid}", headers=admin).json()["data"]["url"] == url

    patched = httpx.patch(f"{base}/{wid}", headers=admin, json={"description": "ats v2", "events": ["*"]})
    assert patched.status_code == 200, patched.text
    assert patched.json()["data"]["description"] == "ats v2" and patched.json()["data"]["events"] == ["*"]

    ping = httpx.post(f"{base}/{wid}/test", headers=admin, json={})
    assert ping.status_code == 202, ping.text
    deadline = time.monotonic() + 10
    while not server.received:
        assert time.monotonic() < deadline, "the test ping did not arrive"
        time.sleep(0.05)
    headers, body = server.received[0]
    verify(body, headers, [secret])
    assert verify_x_signature(body, headers["x-signature"], secret)

    deadline = time.monotonic() + 10
    while True:
        log = httpx.get(f"{base}/{wid}/deliveries", headers=admin).json()["data"]
        if log and log[0]["status"] == "succeeded":
            break
        assert time.monotonic() < deadline, log
        time.sleep(0.1)
    assert log[0]["event"] == "webhook.test" and log[0]["attempt_log"][0]["status_code"] == 204
    assert log[0]["event_id"] == headers["webhook-id"]
    failed = httpx.get(f"{base}/{wid}/deliveries", headers=admin, params={"status": "failed"})
    assert failed.status_code == 200 and failed.json()["data"] == []
    replay = httpx.post(f"{base}/{wid}/deliveries/all/replay", headers=admin, json={})
    assert replay.status_code == 202 and replay.json()["data"] == {"replayed": 0}

    rotated = httpx.post(f"{base}/{wid}/rotate-secret", headers=admin, json={"overlap_seconds": 60})
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["data"]["secret"] not in ("", secret)

    deleted = httpx.delete(f"{base}/{wid}", headers=admin)
    assert deleted.status_code == 200 and deleted.json()["success"] is True
    missing = httpx.get(f"{base}/{wid}", headers=admin)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "NOT_FOUND"


@pytest.mark.parametrize(("url", "status", "code"), [
    ("http://example.com/hook", 400, "INSECURE_WEBHOOK_URL"),
    ("https://10.0.0.1/hook", 400, "PRIVATE_WEBHOOK_URL"),
    ("https://169.254.169.254/latest/meta-data", 400, "PRIVATE_WEBHOOK_URL"),
    ("https://[::ffff:127.0.0.1]/hook", 400, "PRIVATE_WEBHOOK_URL"),
    ("not a url", 400, "INVALID_WEBHOOK_URL"),
])
def test_refused_urls_get_the_seed_codes(stack: Stack, admin: dict[str, str], url: str, status: int,
                                         code: str) -> None:
    r = httpx.post(f"{stack.url}/v1/webhooks", headers=admin, json={"url": url, "events": ["batch.completed"]})
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code
    assert r.json()["error"]["details"]["field"] == "url"


def test_unknown_event_type_is_invalid_input(stack: Stack, admin: dict[str, str]) -> None:
    r = httpx.post(f"{stack.url}/v1/webhooks", headers=admin,
                   json={"url": "https://example.com/hook", "events": ["batch.exploded"]})
    assert r.status_code == 400 and r.json()["error"]["code"] == "INVALID_INPUT"
    assert "batch.exploded" in r.json()["error"]["message"]


def _key(stack: Stack, admin: dict[str, str], scopes: list[str]) -> dict[str, str]:
    created = httpx.post(f"{stack.url}/v1/auth/api-keys", headers=admin, json={"name": "hooks", "scopes": scopes})
    assert created.status_code == 201, created.text
    return {"X-API-Key": created.json()["data"]["key"]}


def test_webhook_scopes(stack: Stack, admin: dict[str, str], receiver: tuple[_Receiver, Path]) -> None:
    base = f"{stack.url}/v1/webhooks"
    reader, writer = _key(stack, admin, ["webhooks:read"]), _key(stack, admin, ["webhooks:write"])
    matcher = _key(stack, admin, ["match:execute"])
    body = {"url": f"https://127.0.0.1:{receiver[0].server_address[1]}/scoped", "events": ["batch.completed"]}
    assert httpx.get(base, headers=reader).status_code == 200
    refused = httpx.post(base, headers=reader, json=body)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "MISSING_PERMISSION"
    assert "webhooks:write" in refused.json()["error"]["message"]
    assert httpx.post(base, headers=matcher, json=body).status_code == 403
    created = httpx.post(base, headers=writer, json=body)
    assert created.status_code == 201, created.text
    wid = created.json()["data"]["id"]
    assert httpx.get(f"{base}/{wid}/deliveries", headers=writer).status_code == 200  # write implies read
    assert httpx.get(f"{base}/{wid}", headers=reader).status_code == 200
    assert httpx.delete(f"{base}/{wid}", headers=reader).status_code == 403
    assert httpx.delete(f"{base}/{wid}", headers=writer).status_code == 200


def test_submission_webhook_secret_is_readable_by_rotation(stack: Stack, admin: dict[str, str]) -> None:
    r = httpx.post(f"{stack.url}/v1/webhooks/submissions/rotate-secret", headers=admin, json={"overlap_seconds": 0})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["id"] == "submissions" and data["secret"].startswith("whsec_")
    assert data["events"] == ["batch.completed", "batch.failed"]


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/v1/webhooks/6a1f9c52-0000-4000-8000-000000000000"),
    ("POST", "/v1/webhooks/6a1f9c52-0000-4000-8000-000000000000/test"),
    ("DELETE", "/v1/auth/api-keys/6a1f9c52-0000-4000-8000-000000000000"),
])
def test_errors_after_authentication_carry_rate_limit_headers(stack: Stack, admin: dict[str, str], method: str,
                                                              path: str) -> None:
    r = httpx.request(method, f"{stack.url}{path}", headers=admin, json={} if method == "POST" else None)
    assert r.status_code == 404, r.text
    for header in ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"):
        assert header in r.headers, (header, dict(r.headers))
