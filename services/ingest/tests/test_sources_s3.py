"""S3 source against a real S3-compatible server (``rclone serve s3``, SigV4-checked) on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
import logging
import uuid

import pytest

from cvmatch.ingest.extraction import ExtractionLimits, extract_document_unsandboxed
from cvmatch.ingest.sources import (
    AwsCredentials,
    Outcome,
    S3Config,
    Secret,
    SourceError,
    SourceFailure,
    SourceSettings,
    count_items,
    fetch,
    iter_fetch,
    list_items,
    open_source,
    parse_source_config,
)
from cvmatch.testing.filegen import cv_lines, cv_pdf, docx_from_lines
from cvmatch.testing.s3 import S3Server
from cvmatch.testing.servers import free_port

SETTINGS = SourceSettings(
    max_file_bytes=200_000, list_page_size=2, max_attempts=1, connect_timeout_seconds=2, read_timeout_seconds=10
)


def _creds(s3: S3Server) -> AwsCredentials:
    return AwsCredentials(access_key_id=s3.access_key, secret_access_key=Secret(s3.secret_key))


def _config(s3: S3Server, bucket: str, **extra: object) -> S3Config:
    cfg = parse_source_config(
        "AWS_S3", json.dumps({"bucket": bucket, "endpoint_url": s3.endpoint_url, "credential": "hr-bucket", **extra})
    )
    assert isinstance(cfg, S3Config)
    return cfg


def _bucket() -> str:
    return f"cvs-{uuid.uuid4().hex[:12]}"


async def test_lists_pages_classifies_and_streams_objects_like_uploads(s3: S3Server):
    bucket = _bucket()
    files = {
        "jane.pdf": cv_pdf(1, "Jane Doe"),
        "team/john.docx": docx_from_lines(cv_lines("John Roe")),
        "team/deep/ann.txt": "\n".join(cv_lines("Ann Lee")).encode(),
        "photo.png": b"\x89PNG\r\n\x1a\n" + b"\x00" * 100,
        "huge.pdf": b"%PDF-1.4\n" + b"0" * 250_000,
        ".DS_Store": b"junk",
    }
    for key, data in files.items():
        s3.put(bucket, key, data)
    cfg = _config(s3, bucket)

    async with open_source(cfg, _creds(s3), settings=SETTINGS) as source:
        items = await source.list_items()  # page size 2: four ListObjectsV2 pages
        by_id = {i.id: i for i in items}
        assert set(by_id) == set(files) - {".DS_Store"}
        assert by_id["photo.png"].skip is Outcome.UNSUPPORTED_TYPE
        assert by_id["huge.pdf"].skip is Outcome.FILE_TOO_LARGE
        assert (count_items(items).to_fetch, count_items(items).skipped) == (3, 2)
        for key in ("jane.pdf", "team/john.docx", "team/deep/ann.txt"):
            assert by_id[key].size == len(files[key])
            assert by_id[key].source_hash == "md5:" + hashlib.md5(files[key]).hexdigest()

        fetched = [f async for f in iter_fetch(source, items)]

    limits = ExtractionLimits()
    assert [f.item.id for f in fetched] == [i.id for i in items]
    for f in fetched:
        if f.item.id in ("photo.png", "huge.pdf"):
            assert not f.ok and f.outcome is f.item.skip
            continue
        assert f.ok and f.data == files[f.item.id]
        assert f.sha256 == hashlib.sha256(files[f.item.id]).hexdigest()
        # The same bytes through the same extraction as an upload of that file.
        via_source = extract_document_unsandboxed(f.item.filename, f.data, limits)
        via_upload = extract_document_unsandboxed(f.item.id.rsplit("/", 1)[-1], files[f.item.id], limits)
        assert via_source.ok and via_source == via_upload


async def test_prefix_and_non_recursive_listing(s3: S3Server):
    bucket = _bucket()
    for key in ("2024/a.txt", "2024/old/b.txt", "2023/c.txt"):
        s3.put(bucket, key, b"Python engineer with ten years of experience")
    items = await list_items(_config(s3, bucket, prefix="2024/"), _creds(s3), settings=SETTINGS)
    assert sorted(i.id for i in items) == ["2024/a.txt", "2024/old/b.txt"]
    items = await list_items(_config(s3, bucket, prefix="2024/", recursive=False), _creds(s3), settings=SETTINGS)
    assert [i.id for i in items] == ["2024/a.txt"]


async def test_object_that_grew_past_the_limit_is_cut_while_streaming(s3: S3Server):
    bucket = _bucket()
    s3.put(bucket, "cv.txt", b"short CV text for now")
    cfg = _config(s3, bucket)
    async with open_source(cfg, _creds(s3), settings=SETTINGS) as source:
        [item] = await source.list_items()
        s3.put(bucket, "cv.txt", b"x" * (SETTINGS.max_file_bytes + 1))
        result = await source.fetch(item)
    assert result.outcome is Outcome.FILE_TOO_LARGE and result.data is None


async def test_deleted_object_is_a_per_file_outcome_and_the_rest_go_on(s3: S3Server):
    bucket = _bucket()
    s3.put(bucket, "a.txt", b"first CV text")
    s3.put(bucket, "b.txt", b"second CV text")
    cfg = _config(s3, bucket)
    async with open_source(cfg, _creds(s3), settings=SETTINGS) as source:
        items = await source.list_items()
        s3.delete(bucket, "a.txt")
        results = [f async for f in iter_fetch(source, items)]
    assert [(r.item.id, r.ok) for r in results] == [("a.txt", False), ("b.txt", True)]
    assert "deleted" in results[0].message


async def test_wrong_secret_is_access_denied_without_the_secret(s3: S3Server):
    bucket = _bucket()
    s3.put(bucket, "a.txt", b"cv")
    bad = AwsCredentials(access_key_id=s3.access_key, secret_access_key=Secret("wrong-secret-value-123"))
    with pytest.raises(SourceError) as info:
        await list_items(_config(s3, bucket), bad, settings=SETTINGS)
    assert info.value.failure is SourceFailure.ACCESS_DENIED and info.value.code == "SignatureDoesNotMatch"
    assert "wrong-secret-value-123" not in str(info.value) and s3.secret_key not in repr(info.value)


async def test_missing_bucket_and_empty_prefix(s3: S3Server):
    with pytest.raises(SourceError) as info:
        await list_items(_config(s3, _bucket()), _creds(s3), settings=SETTINGS)
    assert info.value.failure is SourceFailure.NOT_FOUND and "does not exist" in info.value.message
    bucket = _bucket()
    s3.put(bucket, "other/a.txt", b"cv")
    with pytest.raises(SourceError) as info:
        await list_items(_config(s3, bucket, prefix="nothing-here/"), _creds(s3), settings=SETTINGS)
    assert info.value.failure is SourceFailure.EMPTY


async def test_unreachable_endpoint_fails_fast_and_clearly():
    cfg = parse_source_config(
        "AWS_S3", json.dumps({"bucket": "cvs", "endpoint_url": f"http://127.0.0.1:{free_port()}", "credential": "x"})
    )
    creds = AwsCredentials(access_key_id="AKIAX", secret_access_key=Secret("s3cr3t-s3cr3t"))
    with pytest.raises(SourceError) as info:
        await list_items(cfg, creds, settings=SETTINGS)
    assert info.value.failure is SourceFailure.UNREACHABLE and info.value.retryable
    assert "endpoint_url" in info.value.message


async def test_source_failing_mid_way_raises_after_yielding_what_it_had():
    server = S3Server().start()
    try:
        bucket = _bucket()
        for key in ("a.txt", "b.txt", "c.txt"):
            server.put(bucket, key, f"CV {key}".encode())
        cfg = _config(server, bucket)
        got = []
        async with open_source(cfg, _creds(server), settings=SETTINGS) as source:
            items = await source.list_items()
            with pytest.raises(SourceError) as info:
                async for f in iter_fetch(source, items):
                    got.append(f.item.id)
                    server.stop()  # the store goes away after the first object
        assert got == ["a.txt"]
        assert info.value.failure is SourceFailure.UNREACHABLE and info.value.item_id == "b.txt"
    finally:
        server.cleanup()


async def test_server_identity_is_used_only_where_allowed(s3: S3Server, monkeypatch: pytest.MonkeyPatch):
    bucket = _bucket()
    s3.put(bucket, "a.txt", b"cv text")
    cfg = parse_source_config("AWS_S3", json.dumps({"bucket": bucket, "endpoint_url": s3.endpoint_url}))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3.secret_key)
    # Default: the server's identity is never sent to a client-chosen endpoint.
    with pytest.raises(SourceError) as info:
        await list_items(cfg, None, settings=SETTINGS)
    assert info.value.failure is SourceFailure.NOT_ALLOWED
    # A deployment that allows it (e.g. its own MinIO) reads with the environment's credentials.
    allowed = SourceSettings(max_attempts=1, s3_ambient_credentials_custom_endpoint=True)
    [item] = await list_items(cfg, None, settings=allowed)
    assert (await fetch(cfg, item, None, settings=allowed)).data == b"cv text"
    # Multi-tenant: no ambient identity at all.
    with pytest.raises(SourceError) as info:
        await list_items(cfg, None, settings=SourceSettings(s3_ambient_credentials=False))
    assert info.value.failure is SourceFailure.NOT_ALLOWED


async def test_no_secret_reaches_logs_even_at_debug(s3: S3Server, caplog: pytest.LogCaptureFixture):
    bucket = _bucket()
    s3.put(bucket, "a.txt", b"cv text")
    token = "FwoGZXIvYXdzEXAMPLESESSIONTOKEN" + uuid.uuid4().hex
    creds = AwsCredentials(
        access_key_id=s3.access_key, secret_access_key=Secret(s3.secret_key), session_token=Secret(token)
    )
    caplog.set_level(logging.DEBUG)
    try:
        async with open_source(_config(s3, bucket), creds, settings=SETTINGS) as source:
            [item] = await source.list_items()
            await source.fetch(item)
    except SourceError:
        pass  # whether the server accepts the token does not matter here; the logs do
    with pytest.raises(SourceError):
        await list_items(_config(s3, bucket), AwsCredentials(s3.access_key, Secret("bad-secret-x")), settings=SETTINGS)
    for secret in (token, s3.secret_key, "bad-secret-x"):
        assert secret not in caplog.text
