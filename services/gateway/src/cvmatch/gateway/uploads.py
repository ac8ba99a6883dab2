"""Request bodies of the upload endpoints: streaming multipart/form-data and JSON, with limits.

Envoy hands an upload RPC a client stream of `google.api.HttpBody` (about 1 MiB per message; the
`Content-Type` with the multipart boundary only on the first). The body is parsed as it arrives with
`python-multipart`'s streaming parser; text fields are kept (bounded), file parts are hashed and
spooled to a temporary file (memory up to a threshold, disk above), never held whole in memory.

Why spool rather than forward each chunk the moment it arrives: ingest's CreateBatch stream must start
with the batch header, and the header needs fields that clients send *after* their files (the CV
Matching API's own curl example puts `cvs` before `jd_text`) plus the hash of the whole request for
idempotency. The spool is bounded by the request limit and is deleted when the request ends.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from google.api import httpbody_pb2
from python_multipart.multipart import MultipartParseError, MultipartParser, parse_options_header

from cvmatch.platform import errors
from cvmatch.platform.errors import DomainError

# Parts above this size leave memory for a temporary file.
SPOOL_IN_MEMORY_BYTES = 1024 * 1024
# A text field (a job description, a JSON config) is never larger than this.
MAX_FIELD_BYTES = 1024 * 1024
MAX_PARTS = 2_000
# JSON and urlencoded bodies are parsed whole, so they get a tighter bound than multipart uploads.
MAX_BUFFERED_BODY_BYTES = 10 * 1024 * 1024
READ_CHUNK_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Size limits of one request."""

    max_request_bytes: int
    max_file_bytes: int
    # Parts whose files may exceed max_file_bytes (archives and CSVs hold many candidates).
    bulk_parts: frozenset[str] = frozenset()


@dataclass
class UploadedFile:
    """One file part, spooled: its form field, name, type, size and SHA-256."""

    part: str
    filename: str
    content_type: str
    size: int = 0
    sha256: str = ""
    head: bytes = b""
    _spool: IO[bytes] | None = field(default=None, repr=False)

    def chunks(self, size: int = READ_CHUNK_BYTES) -> Iterator[bytes]:
        """The content from the start, in pieces of at most `size` bytes."""
        if self._spool is None:
            return
        self._spool.seek(0)
        while True:
            data = self._spool.read(size)
            if not data:
                return
            yield data

    def close(self) -> None:
        if self._spool is not None:
            self._spool.close()
            self._spool = None


@dataclass
class Form:
    """A parsed request: text fields (repeatable) and spooled files in arrival order."""

    fields: dict[str, list[str]] = field(default_factory=dict)
    files: list[UploadedFile] = field(default_factory=list)
    is_json: bool = False

    def get(self, *names: str) -> str | None:
        """The first non-empty value of the first of `names` present (aliases of one field)."""
        for name in names:
            for value in self.fields.get(name, ()):
                if value.strip():
                    return value
        return None

    def files_of(self, *names: str) -> list[UploadedFile]:
        """Files sent under any of `names`."""
        return [f for f in self.files if f.part in names]

    def close(self) -> None:
        """Deletes the spooled files."""
        for f in self.files:
            f.close()


def _too_large(what: str, limit: int, field_name: str | None) -> DomainError:
    mb = limit / (1024 * 1024)
    return errors.payload_too_large(f"{what} exceeds the limit of {mb:g} MB", field_name, limit_bytes=str(limit))


class _MultipartReader:
    """Callbacks for python-multipart that build a Form under limits."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.form = Form()
        self.ended = False
        self._header_field = b""
        self._header_value = b""
        self._headers: dict[bytes, bytes] = {}
        self._file: UploadedFile | None = None
        self._hash: Any = None
        self._text: bytearray | None = None
        self._name = ""
        self.error: DomainError | None = None

    def on_part_begin(self) -> None:
        self._headers = {}
        self._header_field = b""
        self._header_value = b""
        if len(self.form.files) + len(self.form.fields) >= MAX_PARTS:
            self.error = errors.invalid_input(f"Too many form parts (at most {MAX_PARTS})")

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._header_field.strip().lower()] = self._header_value.strip()
        self._header_field = b""
        self._header_value = b""

    def on_headers_finished(self) -> None:
        disposition, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = params.get(b"name")
        if disposition != b"form-data" or name is None:
            self.error = self.error or errors.invalid_input(
                "Malformed multipart body: every part needs 'Content-Disposition: form-data; name=...'")
            name = b""
        self._name = name.decode("utf-8", "replace")
        filename = params.get(b"filename")
        if filename is not None:
            ctype = self._headers.get(b"content-type", b"application/octet-stream").decode("latin-1")
            self._file = UploadedFile(
                self._name, filename.decode("utf-8", "replace").replace("\\", "/").rsplit("/", 1)[-1],
                ctype.split(";")[0].strip().lower(),
                _spool=tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY_BYTES))
            self._hash = hashlib.sha256()
            self.form.files.append(self._file)
            self._text = None
        else:
            self._file = None
            self._text = bytearray()

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.error is not None:
            return
        piece = data[start:end]
        if self._file is not None:
            self._file.size += len(piece)
            limit = self.limits.max_file_bytes
            if self._file.part not in self.limits.bulk_parts and self._file.size > limit:
                self.error = _too_large(f"File '{self._file.filename}' in field '{self._file.part}'", limit,
                                        self._file.part)
                return
            if len(self._file.head) < 16:
                self._file.head = (self._file.head + piece)[:16]
            self._hash.update(piece)
            assert self._file._spool is not None
            self._file._spool.write(piece)
        elif self._text is not None:
            self._text += piece
            if len(self._text) > MAX_FIELD_BYTES:
                self.error = _too_large(f"Field '{self._name}'", MAX_FIELD_BYTES, self._name)

    def on_part_end(self) -> None:
        if self.error is not None:
            return
        if self._file is not None:
            self._file.sha256 = self._hash.hexdigest()
            self._file = None
        elif self._text is not None:
            try:
                value = bytes(self._text).decode("utf-8")
            except UnicodeDecodeError:
                self.error = errors.invalid_input(f"Field '{self._name}' is not valid UTF-8 text", self._name)
                return
            self.form.fields.setdefault(self._name, []).append(value)
            self._text = None

    def on_end(self) -> None:
        self.ended = True


async def read_form(messages: AsyncIterator[httpbody_pb2.HttpBody], limits: Limits) -> Form:
    """Parses the request body as it streams in; raises 400 / 413 domain errors naming the problem.

    The caller owns the returned Form and must `close()` it (it deletes the spooled files).
    """
    first = True
    content_type = ""
    total = 0
    reader: _MultipartReader | None = None
    parser: MultipartParser | None = None
    json_body: bytearray | None = None
    urlencoded = False
    try:
        async for msg in messages:
            if first:
                first = False
                content_type = msg.content_type or ""
                mime, params = parse_options_header(content_type)
                if mime == b"multipart/form-data":
                    boundary = params.get(b"boundary")
                    if not boundary:
                        raise errors.invalid_input("The multipart Content-Type has no boundary parameter",
                                                   "Content-Type")
                    reader = _MultipartReader(limits)
                    parser = MultipartParser(boundary, callbacks={
                        "on_part_begin": reader.on_part_begin,
                        "on_part_data": reader.on_part_data,
                        "on_part_end": reader.on_part_end,
                        "on_header_field": reader.on_header_field,
                        "on_header_value": reader.on_header_value,
                        "on_header_end": reader.on_header_end,
                        "on_headers_finished": reader.on_headers_finished,
                        "on_end": reader.on_end,
                    })
                elif mime == b"application/json":
                    json_body = bytearray()
                elif mime == b"application/x-www-form-urlencoded":
                    # What HTTP clients send when a form has no file (requests' `data=` alone).
                    urlencoded = True
                    json_body = bytearray()
                else:
                    raise errors.invalid_input(
                        f"Unsupported Content-Type '{mime.decode('latin-1') or 'none'}': send multipart/form-data "
                        "or application/json", "Content-Type")
            total += len(msg.data)
            if total > limits.max_request_bytes:
                raise _too_large("The request body", limits.max_request_bytes, None)
            if parser is not None and reader is not None:
                try:
                    parser.write(msg.data)
                except MultipartParseError as exc:
                    raise errors.invalid_input(f"Malformed multipart body: {exc}") from None
                if reader.error is not None:
                    raise reader.error
            elif json_body is not None:
                json_body += msg.data
                if len(json_body) > MAX_BUFFERED_BODY_BYTES:
                    raise _too_large("A JSON or form-encoded body", MAX_BUFFERED_BODY_BYTES, None)
        if first:
            raise errors.invalid_input("The request body is empty: send multipart/form-data", "Content-Type")
        if reader is not None:
            if not reader.ended:
                raise errors.invalid_input("Malformed multipart body: it ended before the closing boundary")
            return reader.form
        assert json_body is not None
        if urlencoded:
            return _urlencoded_form(bytes(json_body))
        return _json_form(bytes(json_body))
    except BaseException:
        if reader is not None:
            reader.form.close()
        raise


def _urlencoded_form(body: bytes) -> Form:
    try:
        pairs = urllib.parse.parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False,
                                       max_num_fields=MAX_PARTS)
    except (UnicodeDecodeError, ValueError) as exc:
        raise errors.invalid_input(f"The form body is malformed: {exc}") from None
    form = Form()
    for key, value in pairs:
        form.fields.setdefault(key, []).append(value)
    return form


def _json_form(body: bytes) -> Form:
    try:
        doc = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise errors.invalid_input(f"The JSON body is malformed: {exc}") from None
    if not isinstance(doc, dict):
        raise errors.invalid_input("The JSON body must be an object")
    form = Form(is_json=True)
    for key, value in doc.items():
        if value is None:
            continue
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, str):
            text = value
        elif isinstance(value, int | float):
            text = str(value)
        else:
            # Nested JSON (a source config given inline) travels as its JSON text.
            text = json.dumps(value)
        form.fields[str(key)] = [text]
    return form


def request_sha256(flavor: str, form: Form, fields: dict[str, str]) -> str:
    """Hash of the canonical request: the flavor, the normalized fields and each file's name and content hash.

    Two submissions with the same idempotency key are the same request exactly when this matches.
    """
    canonical = {
        "api": flavor,
        "fields": {k: v for k, v in sorted(fields.items()) if v},
        "files": [[f.part, f.filename, f.sha256] for f in form.files],
    }
    return hashlib.sha256(json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
