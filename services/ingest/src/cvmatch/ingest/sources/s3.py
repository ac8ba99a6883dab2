"""Amazon S3 and S3-compatible stores (MinIO, Ceph, R2, rclone...), through aiobotocore.

botocore brings what a hand-rolled SigV4 client would miss: the whole AWS credential chain (environment,
shared profiles, web identity for EKS pods, ECS task roles, EC2 instance metadata), temporary
credentials that refresh, region redirects and standard retries. Listing is ListObjectsV2 page by page;
objects are streamed and abandoned as soon as they pass the per-file limit.
"""

from __future__ import annotations

import contextlib
import logging
import re
from typing import Any

import aiohttp
from aiobotocore.session import get_session  # type: ignore[import-untyped]
from botocore.config import Config  # type: ignore[import-untyped]
from botocore.exceptions import (  # type: ignore[import-untyped]
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from ..extraction.archive import is_junk
from .base import check_count, classify, too_large
from .config import S3Config
from .credentials import AwsCredentials
from .errors import ItemGone, SourceError, SourceFailure
from .items import FetchedItem, SourceItem
from .settings import SourceSettings

# botocore's DEBUG records print whole requests, headers included: X-Amz-Security-Token is a live secret.
# A service running at LOG_LEVEL=DEBUG must still never write it, so these loggers stop at INFO.
for _name in ("botocore", "aiobotocore"):
    _logger = logging.getLogger(_name)
    _logger.setLevel(max(_logger.getEffectiveLevel(), logging.INFO))

_CHUNK = 64 * 1024
_MD5_ETAG = re.compile(r"^[0-9a-fA-F]{32}$")
_CREDENTIAL_CODES = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "TokenRefreshRequired",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
    }
)
_DENIED_CODES = frozenset({"AccessDenied", "AllAccessDisabled", "Forbidden", "403", "AccountProblem"})
_REGION_CODES = frozenset({"PermanentRedirect", "AuthorizationHeaderMalformed", "301", "IllegalLocationConstraint"})
_MISSING_KEY_CODES = frozenset({"NoSuchKey", "404", "NotFound"})


_loader: Any = None


def _new_session() -> Any:
    """A fresh session (its own credential resolution) sharing one model loader: loading and parsing
    botocore's S3 service model costs ~0.5 s, and it never changes within a process."""
    global _loader
    session = get_session()
    if _loader is None:
        _loader = session.get_component("data_loader")
    else:
        session.register_component("data_loader", _loader)
    return session


def source_hash_from_etag(etag: str | None) -> str | None:
    """``md5:<hex>`` for a single-part ETag; ``None`` for multipart (``<hex>-<parts>``) or absent ones."""
    if not etag:
        return None
    bare = etag.strip().strip('"')
    return f"md5:{bare.lower()}" if _MD5_ETAG.match(bare) else None


class S3Source:
    """One bucket/prefix, opened with one client for the whole batch."""

    def __init__(self, config: S3Config, credentials: AwsCredentials | None, settings: SourceSettings) -> None:
        self.config = config
        self.settings = settings
        self._credentials = credentials
        self._client: Any = None
        self._stack = contextlib.AsyncExitStack()

    def _error(
        self,
        message: str,
        failure: SourceFailure,
        *,
        retryable: bool = False,
        item_id: str | None = None,
        code: str = "",
    ) -> SourceError:
        return SourceError(message, failure=failure, source="aws_s3", retryable=retryable, item_id=item_id, code=code)

    async def __aenter__(self) -> S3Source:
        cfg, creds = self.config, self._credentials
        if creds is None:
            if cfg.credential_name:
                raise self._error(
                    f"The stored credential '{cfg.credential_name}' was not found.", SourceFailure.ACCESS_DENIED
                )
            if not self.settings.s3_ambient_credentials:
                raise self._error(
                    "This server does not read buckets with its own AWS identity; store the "
                    "bucket's access key as a credential and reference it with 'credential'.",
                    SourceFailure.NOT_ALLOWED,
                )
            if cfg.endpoint_url and not self.settings.s3_ambient_credentials_custom_endpoint:
                raise self._error(
                    "A custom 'endpoint_url' needs a stored credential ('credential'): the "
                    "server's own AWS identity is never sent to other endpoints.",
                    SourceFailure.NOT_ALLOWED,
                )
        kwargs: dict[str, Any] = {}
        if creds is not None:
            kwargs.update(
                aws_access_key_id=creds.access_key_id,
                aws_secret_access_key=creds.secret_access_key.reveal(),
                aws_session_token=creds.session_token.reveal() if creds.session_token else None,
            )
        boto_config = Config(
            connect_timeout=self.settings.connect_timeout_seconds,
            read_timeout=self.settings.read_timeout_seconds,
            retries={"mode": "standard", "max_attempts": self.settings.max_attempts},
            # Path style for custom endpoints: S3-compatible stores rarely have wildcard DNS for buckets.
            s3={"addressing_style": "path" if cfg.endpoint_url else "auto"},
            signature_version="s3v4",
            user_agent_extra="cvmatch-ingest",
        )
        session = _new_session()
        try:
            self._client = await self._stack.enter_async_context(
                session.create_client(
                    "s3",
                    region_name=cfg.region or ("us-east-1" if cfg.endpoint_url else None),
                    endpoint_url=cfg.endpoint_url,
                    config=boto_config,
                    **kwargs,
                )
            )
        except BotoCoreError as exc:
            raise self._translate(exc) from None
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Closes the client and its connection pool."""
        await self._stack.aclose()

    def _translate(self, exc: Exception, *, item_id: str | None = None) -> SourceError:
        """A botocore error as a secret-free :class:`SourceError` (``ItemGone`` for a missing object)."""
        bucket = self.config.bucket
        if isinstance(exc, ClientError):
            err = exc.response.get("Error", {})
            code = str(err.get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            if item_id is not None and code in _MISSING_KEY_CODES:
                return ItemGone(
                    "The object was deleted before it could be read.",
                    failure=SourceFailure.NOT_FOUND,
                    source="aws_s3",
                    item_id=item_id,
                    code=code,
                )
            if code == "NoSuchBucket":
                return self._error(
                    f"The bucket '{bucket}' does not exist.", SourceFailure.NOT_FOUND, item_id=item_id, code=code
                )
            if code in _CREDENTIAL_CODES:
                return self._error(
                    f"The AWS credentials were rejected ({code}).",
                    SourceFailure.ACCESS_DENIED,
                    item_id=item_id,
                    code=code,
                )
            if code in _DENIED_CODES:
                return self._error(
                    f"Access to the bucket '{bucket}' was denied; the credential needs s3:ListBucket and s3:GetObject.",
                    SourceFailure.ACCESS_DENIED,
                    item_id=item_id,
                    code=code,
                )
            if code in _REGION_CODES:
                return self._error(
                    f"The bucket '{bucket}' is in another region; set 'region'.",
                    SourceFailure.NOT_FOUND,
                    item_id=item_id,
                    code=code,
                )
            if status >= 500 or code in ("SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout"):
                return self._error(
                    f"The S3 service failed ({code or status}); try again later.",
                    SourceFailure.UNREACHABLE,
                    retryable=True,
                    item_id=item_id,
                    code=code,
                )
            return self._error(
                f"S3 refused the request ({code or status}).", SourceFailure.PROTOCOL, item_id=item_id, code=code
            )
        if isinstance(exc, NoCredentialsError | PartialCredentialsError):
            return self._error(
                "No AWS credentials are configured on the server; reference a stored credential with 'credential'.",
                SourceFailure.ACCESS_DENIED,
            )
        if isinstance(exc, BotoConnectionError | HTTPClientError | TimeoutError | aiohttp.ClientError | OSError):
            where = "the S3 endpoint" if self.config.endpoint_url is None else "the configured 'endpoint_url'"
            return self._error(
                f"Could not connect to {where}; check that it is reachable.",
                SourceFailure.UNREACHABLE,
                retryable=True,
                item_id=item_id,
            )
        return self._error(f"The S3 request failed ({type(exc).__name__}).", SourceFailure.PROTOCOL, item_id=item_id)

    async def list_items(self) -> list[SourceItem]:
        """Every object under the prefix, page by page; keys ending in ``/`` (folder markers) and OS junk
        are dropped, non-CV types and objects over the limit are marked ``skip``."""
        cfg = self.config
        params: dict[str, Any] = {
            "Bucket": cfg.bucket,
            "Prefix": cfg.prefix,
            "PaginationConfig": {"PageSize": self.settings.list_page_size},
        }
        if not cfg.recursive:
            params["Delimiter"] = "/"
        items: list[SourceItem] = []
        try:
            async for page in self._client.get_paginator("list_objects_v2").paginate(**params):
                for obj in page.get("Contents", ()):
                    key = str(obj["Key"])
                    if key.endswith("/") or is_junk(key):
                        continue
                    items.append(
                        classify(
                            SourceItem(
                                id=key,
                                filename=key,
                                size=int(obj.get("Size", 0)),
                                content_type=None,
                                source_hash=source_hash_from_etag(obj.get("ETag")),
                            ),
                            self.settings,
                        )
                    )
                    check_count(len(items), self.settings, "aws_s3")
        except (BotoCoreError, ClientError, TimeoutError) as exc:
            raise self._translate(exc) from None
        if not items:
            raise self._error(f"No files found in s3://{cfg.bucket}/{cfg.prefix}.", SourceFailure.EMPTY)
        return items

    async def fetch(self, item: SourceItem) -> FetchedItem:
        """Streams one object, stopping as soon as it passes ``max_file_bytes``."""
        limit = self.settings.max_file_bytes
        try:
            resp = await self._client.get_object(Bucket=self.config.bucket, Key=item.id)
            body = resp["Body"]
            try:
                if int(resp.get("ContentLength") or 0) > limit:
                    return too_large(item, self.settings)
                buf = bytearray()
                while chunk := await body.read(_CHUNK):
                    buf += chunk
                    if len(buf) > limit:
                        return too_large(item, self.settings)
            finally:
                body.close()
        except (BotoCoreError, ClientError, TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise self._translate(exc, item_id=item.id) from None
        return FetchedItem.of_bytes(item, bytes(buf))
