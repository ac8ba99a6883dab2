"""Google Drive folders through the Drive v3 REST API, with httpx.

Only the documented subset the sources need: ``files.get`` (the folder's metadata, ``alt=media``
downloads), ``files.list`` with ``q='<folder>' in parents and trashed = false`` and paging, and
``files.export`` (Google Docs as DOCX). Authentication is a Bearer token: an OAuth access token given for
one batch, or one obtained from a stored service-account key with the OAuth 2.0 JWT bearer grant
(RFC 7523) signed RS256 with ``cryptography``. The API and token URLs come from
:class:`~.settings.SourceSettings` (tests point them at a local server).
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections import deque
from typing import Any

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ..extraction.archive import is_junk
from ..extraction.outcomes import Outcome
from .base import check_count, classify, too_large
from .config import DriveConfig
from .credentials import GoogleServiceAccount, OAuthToken
from .errors import ItemGone, SourceError, SourceFailure, scrub
from .items import CV_EXTENSIONS, FetchedItem, SourceItem, extension
from .settings import SourceSettings

SCOPE = "https://www.googleapis.com/auth/drive.readonly"
FOLDER_MIME = "application/vnd.google-apps.folder"
GOOGLE_DOC_MIME = "application/vnd.google-apps.document"
DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
_EXT_BY_MIME = {"application/pdf": ".pdf", DOCX_MIME: ".docx", "text/plain": ".txt"}
_LIST_FIELDS = "nextPageToken,incompleteSearch,files(id,name,mimeType,size,md5Checksum)"
_RATE_REASONS = frozenset({"userRateLimitExceeded", "rateLimitExceeded", "backendError"})
_NOT_DOWNLOADABLE = frozenset({"cannotDownloadFile", "fileNotDownloadable", "cannotExportFile"})
_TOKEN_LIFETIME = 3600
_SOURCE = "google_drive"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def service_account_assertion(account: GoogleServiceAccount, token_url: str, now: int | None = None) -> str:
    """The signed JWT (RS256) a service account exchanges for an access token."""
    now = int(time.time()) if now is None else now
    header: dict[str, Any] = {"alg": "RS256", "typ": "JWT"}
    if account.private_key_id:
        header["kid"] = account.private_key_id
    claims = {"iss": account.client_email, "scope": SCOPE, "aud": token_url, "iat": now, "exp": now + _TOKEN_LIFETIME}
    signing_input = (
        _b64url(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + _b64url(json.dumps(claims, separators=(",", ":")).encode())
    )
    key = serialization.load_pem_private_key(account.private_key.reveal().encode("utf-8"), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("not an RSA key")
    signature = key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64url(signature)}"


def _q_literal(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def _reason(response: httpx.Response) -> str:
    """The first ``errors[].reason`` of a Drive error body (``""`` when there is none)."""
    try:
        body = json.loads(response.content[:65536])
        errors = body.get("error", {}).get("errors") or []
        return str(errors[0].get("reason", "")) if errors else str(body.get("error", {}).get("status", ""))
    except (ValueError, AttributeError, TypeError, IndexError):
        return ""


class DriveSource:
    """One Drive folder (optionally with its sub-folders), read with one HTTP client."""

    def __init__(
        self, config: DriveConfig, credentials: GoogleServiceAccount | OAuthToken | None, settings: SourceSettings
    ) -> None:
        self.config = config
        self.settings = settings
        self._credentials = credentials
        self._client: httpx.AsyncClient | None = None
        self._token: str | None = None
        self._token_expires = 0.0
        self._api = settings.drive_api_url.rstrip("/")

    def _secrets(self) -> tuple[str | None, ...]:
        token = self.config.access_token.reveal() if self.config.access_token else None
        return (token, self._token)

    def _error(
        self,
        message: str,
        failure: SourceFailure,
        *,
        retryable: bool = False,
        item_id: str | None = None,
        code: str = "",
    ) -> SourceError:
        return SourceError(
            scrub(message, self._secrets()),
            failure=failure,
            source=_SOURCE,
            retryable=retryable,
            item_id=item_id,
            code=code,
        )

    async def __aenter__(self) -> DriveSource:
        if self.config.access_token is None and self._credentials is None:
            raise self._error(
                f"The stored credential '{self.config.credential_name}' was not found.", SourceFailure.ACCESS_DENIED
            )
        s = self.settings
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(s.read_timeout_seconds, connect=s.connect_timeout_seconds),
            # Drive may answer a download with a redirect to its content host; httpx drops the
            # Authorization header when a redirect leaves the origin.
            follow_redirects=True,
            max_redirects=3,
            headers={"User-Agent": "cvmatch-ingest"},
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Closes the HTTP client."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # -- auth -----------------------------------------------------------------------------------------
    async def _bearer(self) -> str:
        if self.config.access_token is not None:
            return self.config.access_token.reveal()
        if isinstance(self._credentials, OAuthToken):
            return self._credentials.access_token.reveal()
        if self._token is None or time.monotonic() > self._token_expires:
            assert isinstance(self._credentials, GoogleServiceAccount)
            self._token = await self._service_account_token(self._credentials)
        return self._token

    async def _service_account_token(self, account: GoogleServiceAccount) -> str:
        assert self._client is not None
        url = self.settings.drive_token_url
        try:
            assertion = service_account_assertion(account, url)
        except (ValueError, TypeError):
            raise self._error(
                "The stored service-account key could not be loaded (not an RSA PEM key).", SourceFailure.ACCESS_DENIED
            ) from None
        try:
            resp = await self._client.post(
                url, data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion}
            )
        except httpx.HTTPError:
            raise self._error(
                "Could not reach the Google token endpoint.", SourceFailure.UNREACHABLE, retryable=True
            ) from None
        if resp.status_code != 200:
            try:
                code = str(resp.json().get("error", ""))[:40]
            except ValueError:
                code = ""
            raise self._error(
                f"Google refused the service-account key ({code or resp.status_code}).", SourceFailure.ACCESS_DENIED
            )
        try:
            body = resp.json()
            token = str(body["access_token"])
            lifetime = float(body.get("expires_in", _TOKEN_LIFETIME))
        except (ValueError, KeyError, TypeError):
            raise self._error("The token endpoint answered without an access token.", SourceFailure.PROTOCOL) from None
        # Renew a minute early so a long batch never sends an expired token.
        self._token_expires = time.monotonic() + max(lifetime - 60, 30)
        return token

    # -- HTTP -----------------------------------------------------------------------------------------
    async def _send(
        self, path: str, params: dict[str, str], *, item_id: str | None = None, stream: bool = False
    ) -> httpx.Response:
        """GET with auth and bounded retries; returns a 200 response (streamed if asked, caller closes)
        or raises a :class:`SourceError` (``ItemGone`` for a 404 on an item)."""
        assert self._client is not None
        attempts = self.settings.max_attempts
        for attempt in range(1, attempts + 1):
            headers = {"Authorization": f"Bearer {await self._bearer()}"}
            request = self._client.build_request("GET", f"{self._api}/{path}", params=params, headers=headers)
            try:
                resp = await self._client.send(request, stream=stream)
            except httpx.TimeoutException:
                if attempt < attempts:
                    await asyncio.sleep(0.25 * 2**attempt)
                    continue
                raise self._error(
                    "Google Drive did not answer in time.", SourceFailure.UNREACHABLE, retryable=True, item_id=item_id
                ) from None
            except httpx.HTTPError:
                if attempt < attempts:
                    await asyncio.sleep(0.25 * 2**attempt)
                    continue
                raise self._error(
                    "Could not connect to Google Drive.", SourceFailure.UNREACHABLE, retryable=True, item_id=item_id
                ) from None
            if resp.status_code == 200:
                return resp
            if stream:
                await resp.aread()  # the error body is small; read it to get the reason
                await resp.aclose()
            reason = _reason(resp)
            transient = resp.status_code in (429, 500, 502, 503, 504) or (
                resp.status_code == 403 and reason in _RATE_REASONS
            )
            if transient and attempt < attempts:
                await asyncio.sleep(0.25 * 2**attempt)
                continue
            raise self._status_error(resp.status_code, reason, item_id=item_id)
        raise AssertionError("unreachable")  # pragma: no cover

    def _status_error(self, status: int, reason: str, *, item_id: str | None) -> SourceError:
        if status == 401:
            return self._error(
                "Google Drive rejected the credentials (invalid or expired token).",
                SourceFailure.ACCESS_DENIED,
                item_id=item_id,
                code=reason,
            )
        if status == 404:
            if item_id is not None:
                return ItemGone(
                    "The file was deleted before it could be read.",
                    failure=SourceFailure.NOT_FOUND,
                    source=_SOURCE,
                    item_id=item_id,
                )
            return self._error(
                f"The Google Drive folder '{self.config.folder_id}' was not found, or it is not "
                "shared with the credential.",
                SourceFailure.NOT_FOUND,
            )
        if status == 403 and reason not in _RATE_REASONS:
            return self._error(
                f"Google Drive denied access ({reason or 'forbidden'}); share the folder with the credential.",
                SourceFailure.ACCESS_DENIED,
                item_id=item_id,
                code=reason,
            )
        if status in (403, 429) or status >= 500:
            return self._error(
                f"Google Drive is unavailable or rate-limiting ({status}); try again later.",
                SourceFailure.UNREACHABLE,
                retryable=True,
                item_id=item_id,
                code=reason,
            )
        return self._error(
            f"Google Drive refused the request ({status} {reason}).".replace(" )", ")"),
            SourceFailure.PROTOCOL,
            item_id=item_id,
            code=reason,
        )

    async def _json(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        resp = await self._send(path, params)
        try:
            body = resp.json()
        except ValueError:
            raise self._error("Google Drive answered with invalid JSON.", SourceFailure.PROTOCOL) from None
        if not isinstance(body, dict):
            raise self._error("Google Drive answered with unexpected JSON.", SourceFailure.PROTOCOL)
        return body

    # -- listing --------------------------------------------------------------------------------------
    async def list_items(self) -> list[SourceItem]:
        """The folder's files (and sub-folders' when ``recursive``), page by page. Google Docs are listed
        as ``<name>.docx`` exports; other Google types and non-CV files are marked ``unsupported_type``."""
        root = await self._json(
            f"files/{self.config.folder_id}", {"fields": "id,name,mimeType", "supportsAllDrives": "true"}
        )
        if root.get("mimeType") != FOLDER_MIME:
            raise self._error(f"'{self.config.folder_id}' is a file, not a folder.", SourceFailure.NOT_FOUND)
        items: list[SourceItem] = []
        queue: deque[tuple[str, str]] = deque([(self.config.folder_id, "")])
        seen = {self.config.folder_id}
        while queue:
            folder_id, path = queue.popleft()
            page_token: str | None = None
            while True:
                params = {
                    "q": f"'{_q_literal(folder_id)}' in parents and trashed = false",
                    "fields": _LIST_FIELDS,
                    "pageSize": str(self.settings.list_page_size),
                    "supportsAllDrives": "true",
                    "includeItemsFromAllDrives": "true",
                    "orderBy": "name",
                }
                if page_token:
                    params["pageToken"] = page_token
                page = await self._json("files", params)
                for f in page.get("files") or ():
                    item = self._item(f, path)
                    if item is None:
                        mime, fid = f.get("mimeType"), str(f.get("id", ""))
                        if mime == FOLDER_MIME and self.config.recursive and fid and fid not in seen:
                            seen.add(fid)
                            if len(seen) > self.settings.max_drive_folders:
                                raise self._error(
                                    f"The folder has more than {self.settings.max_drive_folders} "
                                    "sub-folders; pick a narrower folder.",
                                    SourceFailure.TOO_MANY_ITEMS,
                                )
                            queue.append((fid, f"{path}{f.get('name', fid)}/"))
                        continue
                    items.append(item)
                    check_count(len(items), self.settings, _SOURCE)
                page_token = page.get("nextPageToken")
                if not page_token:
                    break
        if not items:
            raise self._error("The Google Drive folder has no files.", SourceFailure.EMPTY)
        return items

    def _item(self, f: dict[str, Any], path: str) -> SourceItem | None:
        """An item for a listed file; ``None`` for folders, shortcuts and junk (not candidates)."""
        fid, name, mime = str(f.get("id", "")), str(f.get("name", "")), str(f.get("mimeType", ""))
        if not fid or mime in (FOLDER_MIME, "application/vnd.google-apps.shortcut") or is_junk(name):
            return None
        md5 = f.get("md5Checksum")
        source_hash = f"md5:{str(md5).lower()}" if md5 else None
        try:
            size = int(f["size"]) if f.get("size") is not None else None
        except (TypeError, ValueError):
            size = None
        if mime == GOOGLE_DOC_MIME:
            return SourceItem(
                id=fid, filename=f"{path}{name}.docx", size=None, content_type=DOCX_MIME, export_mime_type=DOCX_MIME
            )
        if mime.startswith("application/vnd.google-apps."):
            return SourceItem(id=fid, filename=f"{path}{name}", size=None, content_type=mime).skipped(
                Outcome.UNSUPPORTED_TYPE, "Only Google Docs are exported; this Google file type is not a CV."
            )
        # A file without a CV extension but with a CV MIME type gets the extension its type implies, so
        # detection downstream sees what Drive says it is (the bytes must still agree).
        filename = f"{path}{name}"
        if extension(name) not in CV_EXTENSIONS and mime in _EXT_BY_MIME:
            filename += _EXT_BY_MIME[mime]
        return classify(
            SourceItem(id=fid, filename=filename, size=size, content_type=mime or None, source_hash=source_hash),
            self.settings,
        )

    # -- fetching -------------------------------------------------------------------------------------
    async def fetch(self, item: SourceItem) -> FetchedItem:
        """Downloads (or exports) one file, streaming, abandoning it past ``max_file_bytes``."""
        if item.export_mime_type:
            path, params = f"files/{item.id}/export", {"mimeType": item.export_mime_type}
        else:
            path, params = f"files/{item.id}", {"alt": "media", "supportsAllDrives": "true"}
        try:
            resp = await self._send(path, params, item_id=item.id, stream=True)
        except SourceError as exc:
            if exc.code == "exportSizeLimitExceeded":
                return too_large(item, self.settings)
            if exc.code in _NOT_DOWNLOADABLE:
                return FetchedItem.failed(
                    item, Outcome.UNSUPPORTED_TYPE, "Google Drive does not allow this file to be downloaded."
                )
            raise
        limit = self.settings.max_file_bytes
        buf = bytearray()
        try:
            declared = resp.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > limit:
                return too_large(item, self.settings)
            async for chunk in resp.aiter_bytes():
                buf += chunk
                if len(buf) > limit:
                    return too_large(item, self.settings)
        except httpx.HTTPError:
            raise self._error(
                "The download from Google Drive was interrupted.",
                SourceFailure.UNREACHABLE,
                retryable=True,
                item_id=item.id,
            ) from None
        finally:
            await resp.aclose()
        return FetchedItem.of_bytes(item, bytes(buf))
