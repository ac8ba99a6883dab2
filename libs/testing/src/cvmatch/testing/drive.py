"""A local HTTP server implementing the subset of the Google Drive v3 API that ingest uses, for tests.

Real HTTP on a free 127.0.0.1 port (stdlib ``ThreadingHTTPServer`` in a thread), so the client under test
runs its real code: URL building, Bearer auth, paging, streaming, error bodies. Implemented as Google
documents it:

* ``GET /drive/v3/files/{id}`` metadata (``fields`` ignored: every field is returned), and
  ``?alt=media`` for the content (Google Docs answer ``403 fileNotDownloadable``);
* ``GET /drive/v3/files?q='<id>' in parents and trashed = false&pageSize=&pageToken=`` with
  ``nextPageToken`` paging (``pageSize`` capped at 1000, default 100);
* ``GET /drive/v3/files/{id}/export?mimeType=`` for Google Docs (DOCX or plain text);
* ``POST /token``: the OAuth 2.0 JWT bearer grant for service accounts; the RS256 assertion is verified
  against the registered public key, ``aud`` must be this URL, ``exp`` in the future.

Errors use Drive's JSON error shape. ``fail_media_after`` makes media downloads fail with 500 after that
many successes, to test a source that breaks mid-way.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

FOLDER_MIME = "application/vnd.google-apps.folder"
GOOGLE_DOC_MIME = "application/vnd.google-apps.document"
DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
_PARENTS_Q = re.compile(r"^\s*'((?:[^'\\]|\\.)*)'\s+in\s+parents(?:\s+and\s+trashed\s*=\s*false)?\s*$")


@dataclass
class DriveFile:
    """A stored file or folder."""

    id: str
    name: str
    mime_type: str
    parent: str | None
    data: bytes = b""
    #: Google Docs: what each export MIME type returns.
    exports: dict[str, bytes] = field(default_factory=dict)
    trashed: bool = False

    def resource(self) -> dict[str, Any]:
        res: dict[str, Any] = {
            "kind": "drive#file",
            "id": self.id,
            "name": self.name,
            "mimeType": self.mime_type,
            "parents": [self.parent] if self.parent else [],
            "trashed": self.trashed,
        }
        if not self.mime_type.startswith("application/vnd.google-apps."):
            res["size"] = str(len(self.data))
            res["md5Checksum"] = hashlib.md5(self.data).hexdigest()
        return res


def _b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


class DriveServer:
    """Drive v3 subset + token endpoint. ``api_url`` and ``token_url`` go into the client's settings."""

    def __init__(self) -> None:
        self.files: dict[str, DriveFile] = {}
        self.tokens: set[str] = set()
        self.service_accounts: dict[str, rsa.RSAPublicKey] = {}
        self.requests: list[tuple[str, str]] = []  # (method, path?query) of every request, for assertions
        self.fail_media_after: int | None = None
        self._media_served = 0
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- content ----------------------------------------------------------------------------------------
    def _new_id(self) -> str:
        return f"f{next(self._ids):04d}{secrets.token_hex(6)}"

    def add_folder(self, name: str, parent: str | None = None) -> str:
        """Creates a folder and returns its id."""
        fid = self._new_id()
        self.files[fid] = DriveFile(fid, name, FOLDER_MIME, parent)
        return fid

    def add_file(self, name: str, data: bytes, mime_type: str, parent: str | None) -> str:
        """Stores a binary file and returns its id."""
        fid = self._new_id()
        self.files[fid] = DriveFile(fid, name, mime_type, parent, data=data)
        return fid

    def add_google_doc(self, name: str, parent: str | None, *, docx: bytes, text: str) -> str:
        """Stores a Google Doc exportable as DOCX and as plain text."""
        fid = self._new_id()
        self.files[fid] = DriveFile(
            fid, name, GOOGLE_DOC_MIME, parent, exports={DOCX_MIME: docx, "text/plain": text.encode("utf-8")}
        )
        return fid

    def issue_token(self) -> str:
        """A valid OAuth access token."""
        token = "ya29." + secrets.token_urlsafe(24)
        self.tokens.add(token)
        return token

    def add_service_account(self, email: str) -> dict[str, str]:
        """Registers a service account and returns its key file (as Google issues it)."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.service_accounts[email] = key.public_key()
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        return {
            "type": "service_account",
            "project_id": "test",
            "private_key_id": secrets.token_hex(8),
            "private_key": pem,
            "client_email": email,
            "client_id": "1",
            "token_uri": "https://attacker.invalid/token",
        }

    # -- lifecycle --------------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/drive/v3"

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/token"

    def start(self) -> DriveServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                server._handle(self, "GET")

            def do_POST(self) -> None:
                server._handle(self, "POST")

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="drive-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    # -- HTTP -------------------------------------------------------------------------------------------
    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str) -> None:
        h.send_response(status)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def _json(self, h: BaseHTTPRequestHandler, status: int, obj: Any) -> None:
        self._send(h, status, json.dumps(obj).encode(), "application/json; charset=UTF-8")

    def _error(self, h: BaseHTTPRequestHandler, status: int, reason: str, message: str) -> None:
        statuses = {
            400: "INVALID_ARGUMENT",
            401: "UNAUTHENTICATED",
            403: "PERMISSION_DENIED",
            404: "NOT_FOUND",
            500: "INTERNAL",
        }
        self._json(
            h,
            status,
            {
                "error": {
                    "code": status,
                    "message": message,
                    "status": statuses.get(status, ""),
                    "errors": [{"domain": "global", "reason": reason, "message": message}],
                }
            },
        )

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(h.path)
        with self._lock:
            self.requests.append((method, h.path))
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        if method == "POST" and parts.path == "/token":
            length = int(h.headers.get("Content-Length") or 0)
            form = {k: v[-1] for k, v in parse_qs(h.rfile.read(length).decode()).items()}
            return self._token(h, form)
        if method != "GET" or not parts.path.startswith("/drive/v3/files"):
            return self._error(h, 404, "notFound", "Not Found")
        auth = h.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.tokens:
            return self._error(h, 401, "authError", "Request had invalid authentication credentials.")
        rest = parts.path[len("/drive/v3/files") :].strip("/")
        if not rest:
            return self._list(h, query)
        fid, _, action = rest.partition("/")
        f = self.files.get(fid)
        if f is None or f.trashed:
            return self._error(h, 404, "notFound", f"File not found: {fid}.")
        if action == "export":
            if f.mime_type != GOOGLE_DOC_MIME:
                return self._error(h, 403, "fileNotExportable", "Export only supports Docs Editors files.")
            data = f.exports.get(query.get("mimeType", ""))
            if data is None:
                return self._error(h, 400, "badRequest", "The requested conversion is not supported.")
            return self._send(h, 200, data, query["mimeType"])
        if action:
            return self._error(h, 404, "notFound", "Not Found")
        if query.get("alt") == "media":
            if f.mime_type.startswith("application/vnd.google-apps."):
                return self._error(
                    h,
                    403,
                    "fileNotDownloadable",
                    "Only files with binary content can be downloaded. Use Export with Docs Editors files.",
                )
            with self._lock:
                if self.fail_media_after is not None and self._media_served >= self.fail_media_after:
                    return self._error(h, 500, "backendError", "Backend Error")
                self._media_served += 1
            return self._send(h, 200, f.data, f.mime_type)
        return self._json(h, 200, f.resource())

    def _list(self, h: BaseHTTPRequestHandler, query: dict[str, str]) -> None:
        m = _PARENTS_Q.match(query.get("q", ""))
        if m is None:
            return self._error(h, 400, "invalid", "Invalid Value (this test server supports '<id>' in parents)")
        parent = re.sub(r"\\(.)", r"\1", m.group(1))
        try:
            size = min(int(query.get("pageSize", "100")), 1000)
            offset = int(query.get("pageToken") or "0")
        except ValueError:
            return self._error(h, 400, "invalid", "Invalid Value")
        if size < 1:
            return self._error(h, 400, "invalid", "Invalid Value")
        children = [f for f in self.files.values() if f.parent == parent and not f.trashed]
        if query.get("orderBy") == "name":
            children.sort(key=lambda f: f.name)
        page = children[offset : offset + size]
        body: dict[str, Any] = {
            "kind": "drive#fileList",
            "incompleteSearch": False,
            "files": [f.resource() for f in page],
        }
        if offset + size < len(children):
            body["nextPageToken"] = str(offset + size)
        return self._json(h, 200, body)

    def _token(self, h: BaseHTTPRequestHandler, form: dict[str, str]) -> None:
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return self._json(h, 400, {"error": "unsupported_grant_type"})
        try:
            header_b64, claims_b64, sig_b64 = form.get("assertion", "").split(".")
            header = json.loads(_b64url_decode(header_b64))
            claims = json.loads(_b64url_decode(claims_b64))
            key = self.service_accounts[claims["iss"]]
            if header.get("alg") != "RS256":
                raise ValueError("alg")
            key.verify(
                _b64url_decode(sig_b64), f"{header_b64}.{claims_b64}".encode(), padding.PKCS1v15(), hashes.SHA256()
            )
            now = time.time()
            if claims["aud"] != self.token_url or not claims["iat"] - 300 <= now < claims["exp"]:
                raise ValueError("claims")
            if "drive" not in str(claims.get("scope", "")):
                raise ValueError("scope")
        except (ValueError, KeyError, TypeError, InvalidSignature):
            return self._json(h, 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
        token = self.issue_token()
        return self._json(h, 200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"})
