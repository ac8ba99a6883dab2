"""Typed errors of the candidate sources; every message is safe to show and never carries a secret.

Two families, mirroring the extraction layer (per-file problems are values, whole-request problems are
exceptions):

* a bad ``source_config_json`` is rejected by :func:`~.config.parse_source_config` with a
  :class:`~cvmatch.platform.errors.DomainError` built by ``invalid_input`` (400 naming the field);
* a source that cannot be read (unreachable, bad credentials, missing or empty folder, query error,
  too many items) raises :class:`SourceError` from listing or fetching. Its ``message`` has been scrubbed
  of every secret the source knows (connection string, password, tokens) before it is built.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable

from cvmatch.platform.errors import DomainError, invalid_input, payload_too_large

#: The request field every source problem is reported against.
CONFIG_FIELD = "source_config_json"


class SourceFailure(enum.StrEnum):
    """Why a source could not be read; stable strings, fit for metrics and ``details``."""

    UNREACHABLE = "unreachable"
    ACCESS_DENIED = "access_denied"
    NOT_FOUND = "not_found"
    EMPTY = "empty"
    QUERY_ERROR = "query_error"
    TOO_MANY_ITEMS = "too_many_items"
    NOT_ALLOWED = "not_allowed"
    PROTOCOL = "protocol_error"


class SourceError(Exception):
    """A whole source failed. ``message`` is user-facing and secret-free.

    ``retryable`` is true for transient failures (timeouts, 5xx) where trying the batch again later may
    succeed. ``item_id`` is set when the failure happened while fetching one item (the source failed
    mid-way: what was fetched before it is still good). ``code`` is the source's own error code when it
    gave one (an S3 error code, a Drive error reason), for metrics and for per-item decisions.
    """

    def __init__(
        self,
        message: str,
        *,
        failure: SourceFailure,
        source: str,
        retryable: bool = False,
        item_id: str | None = None,
        code: str = "",
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.failure = failure
        self.source = source
        self.retryable = retryable
        self.item_id = item_id

    def __repr__(self) -> str:
        return f"SourceError(failure={self.failure.value!r}, source={self.source!r}, message={self.message!r})"

    def to_domain_error(self) -> DomainError:
        """The public error for a source that fails while the request is still open (400, or 413 for
        too many items), naming ``source_config_json``; ``details.source_error`` carries ``failure``."""
        if self.failure is SourceFailure.TOO_MANY_ITEMS:
            return payload_too_large(self.message, CONFIG_FIELD, source_error=self.failure.value)
        return invalid_input(self.message, CONFIG_FIELD, source_error=self.failure.value)


class ItemGone(SourceError):
    """One listed item disappeared (deleted or moved) before it was fetched; the others are fine."""


_URL_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]*@")
_KEY_VALUE_SECRET = re.compile(r"(?i)\b(password|passwd|pwd|secret|token|sslpassword)\s*=\s*[^\s&;]+")
_MIN_SECRET_CHARS = 3


def scrub(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with every given secret, every URL user-info part and every ``password=...`` replaced.

    Applied to every driver or server message before it can reach an error, a log line or a response.
    Very short "secrets" (an empty password, ``a``) are not replaced one by one: they would mangle the
    message without protecting anything; the URL and key-value rules still cover them.
    """
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        if len(secret) >= _MIN_SECRET_CHARS:
            text = text.replace(secret, "***")
    text = _URL_USERINFO.sub(lambda m: f"{m.group('scheme')}***@", text)
    return _KEY_VALUE_SECRET.sub(lambda m: f"{m.group(1)}=***", text)
