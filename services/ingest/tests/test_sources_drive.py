"""Google Drive source: our real httpx client against a local Drive v3 server over real HTTP."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging

import pytest

from cvmatch.ingest.extraction import ExtractionLimits, extract_document_unsandboxed
from cvmatch.ingest.sources import (
    DriveConfig,
    Outcome,
    SourceError,
    SourceFailure,
    SourceSettings,
    count_items,
    iter_fetch,
    list_items,
    open_source,
    parse_source_config,
    parse_stored_credential,
)
from cvmatch.testing.drive import DOCX_MIME, DriveServer
from cvmatch.testing.filegen import cv_lines, cv_pdf, docx_from_lines
from cvmatch.testing.servers import free_port


def _settings(drive: DriveServer, **kw: object) -> SourceSettings:
    base = SourceSettings(
        max_file_bytes=200_000,
        list_page_size=2,
        max_attempts=1,
        connect_timeout_seconds=2,
        read_timeout_seconds=10,
        drive_api_url=drive.api_url,
        drive_token_url=drive.token_url,
    )
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


def _config(folder_id: str, **extra: object) -> DriveConfig:
    cfg = parse_source_config("GOOGLE_DRIVE", json.dumps({"folder_id": folder_id, **extra}))
    assert isinstance(cfg, DriveConfig)
    return cfg


def _cv_folder(drive: DriveServer) -> tuple[str, dict[str, bytes]]:
    root = drive.add_folder("Applicants")
    sub = drive.add_folder("Interns", root)
    content = {
        "jane.pdf": cv_pdf(1, "Jane Doe"),
        "john.docx": docx_from_lines(cv_lines("John Roe")),
        "ann": "\n".join(cv_lines("Ann Lee")).encode(),  # no extension: Drive's MIME type says text
        "Interns/ivy.txt": "\n".join(cv_lines("Ivy Chan")).encode(),
        "Mark Doc.docx": docx_from_lines(cv_lines("Mark Twain")),
    }
    drive.add_file("jane.pdf", content["jane.pdf"], "application/pdf", root)
    drive.add_file("john.docx", content["john.docx"], DOCX_MIME, root)
    drive.add_file("ann", content["ann"], "text/plain", root)
    drive.add_file("ivy.txt", content["Interns/ivy.txt"], "text/plain", sub)
    drive.add_google_doc("Mark Doc", root, docx=content["Mark Doc.docx"], text="unused")
    drive.add_file("budget", b"", "application/vnd.google-apps.spreadsheet", root)
    drive.add_file("photo.png", b"\x89PNG\r\n\x1a\n", "image/png", root)
    drive.add_file("big.pdf", b"%PDF-1.4\n" + b"0" * 250_000, "application/pdf", root)
    return root, content


async def test_lists_pages_exports_and_downloads_like_uploads(drive: DriveServer):
    root, content = _cv_folder(drive)
    cfg = _config(root, access_token=drive.issue_token(), recursive=True)
    settings = _settings(drive)
    before = len(drive.requests)
    async with open_source(cfg, None, settings=settings) as source:
        items = await source.list_items()
        fetched = [f async for f in iter_fetch(source, items)]
    listed = {i.filename: i for i in items}
    assert set(listed) == {
        "jane.pdf",
        "john.docx",
        "ann.txt",
        "Interns/ivy.txt",
        "Mark Doc.docx",
        "budget",
        "photo.png",
        "big.pdf",
    }
    assert listed["budget"].skip is Outcome.UNSUPPORTED_TYPE
    assert listed["photo.png"].skip is Outcome.UNSUPPORTED_TYPE
    assert listed["big.pdf"].skip is Outcome.FILE_TOO_LARGE
    assert listed["jane.pdf"].source_hash == "md5:" + hashlib.md5(content["jane.pdf"]).hexdigest()
    assert listed["Mark Doc.docx"].source_hash is None  # Google Docs have no checksum
    assert count_items(items).to_fetch == 5
    # Paging really happened (page size 2 over 7 entries in the root folder).
    assert any("pageToken=" in path for _, path in drive.requests[before:])
    limits = ExtractionLimits()
    for f in fetched:
        if f.item.skip:
            assert f.outcome is f.item.skip
            continue
        expected = content[f.item.filename.removesuffix(".txt") if f.item.filename == "ann.txt" else f.item.filename]
        assert f.ok and f.data == expected
        doc = extract_document_unsandboxed(f.item.filename, f.data, limits)
        assert doc.ok and doc == extract_document_unsandboxed(f.item.filename, expected, limits)


async def test_non_recursive_listing_stays_in_the_folder(drive: DriveServer):
    root, _ = _cv_folder(drive)
    items = await list_items(_config(root, access_token=drive.issue_token()), None, settings=_settings(drive))
    assert "Interns/ivy.txt" not in {i.filename for i in items}


async def test_service_account_key_gets_a_token_by_jwt_bearer(drive: DriveServer):
    root, _ = _cv_folder(drive)
    key_file = drive.add_service_account("ingest@test.iam.gserviceaccount.com")
    creds = parse_stored_credential("google_service_account", json.dumps(key_file))
    items = await list_items(_config(root, credential="hr-drive"), creds, settings=_settings(drive))
    assert len(items) == 7
    assert ("POST", "/token") in drive.requests  # the settings' token URL, never the key file's token_uri

    # A key the server does not know (same email, other key pair) is refused by the token endpoint.
    other = DriveServer().add_service_account("ingest@test.iam.gserviceaccount.com")
    with pytest.raises(SourceError) as info:
        await list_items(
            _config(root, credential="hr-drive"),
            parse_stored_credential("google_service_account", json.dumps(other)),
            settings=_settings(drive),
        )
    assert info.value.failure is SourceFailure.ACCESS_DENIED and "invalid_grant" in info.value.message
    assert "PRIVATE KEY" not in info.value.message


async def test_invalid_token_is_access_denied_without_the_token(drive: DriveServer, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    root, _ = _cv_folder(drive)
    good = drive.issue_token()
    await list_items(_config(root, access_token=good), None, settings=_settings(drive))
    with pytest.raises(SourceError) as info:
        await list_items(_config(root, access_token="ya29.revoked-token-xyz"), None, settings=_settings(drive))
    assert info.value.failure is SourceFailure.ACCESS_DENIED
    assert "revoked-token-xyz" not in str(info.value)
    assert good not in caplog.text and "revoked-token-xyz" not in caplog.text


async def test_missing_folder_file_id_and_empty_folder(drive: DriveServer):
    token = drive.issue_token()
    with pytest.raises(SourceError) as info:
        await list_items(_config("doesNotExist123", access_token=token), None, settings=_settings(drive))
    assert info.value.failure is SourceFailure.NOT_FOUND and "not shared" in info.value.message
    file_id = drive.add_file("a.txt", b"x", "text/plain", None)
    with pytest.raises(SourceError) as info:
        await list_items(_config(file_id, access_token=token), None, settings=_settings(drive))
    assert info.value.failure is SourceFailure.NOT_FOUND and "not a folder" in info.value.message
    empty = drive.add_folder("Empty")
    drive.add_folder("Only a sub-folder", empty)
    with pytest.raises(SourceError) as info:
        await list_items(_config(empty, access_token=token, recursive=True), None, settings=_settings(drive))
    assert info.value.failure is SourceFailure.EMPTY


async def test_source_failing_mid_way_raises_after_yielding_what_it_had():
    drive = DriveServer().start()
    try:
        root = drive.add_folder("CVs")
        for name in ("a.txt", "b.txt", "c.txt"):
            drive.add_file(name, f"CV of {name}".encode(), "text/plain", root)
        drive.fail_media_after = 1
        got = []
        async with open_source(
            _config(root, access_token=drive.issue_token()), None, settings=_settings(drive)
        ) as source:
            items = await source.list_items()
            with pytest.raises(SourceError) as info:
                async for f in iter_fetch(source, items):
                    got.append((f.item.filename, f.data))
        assert got == [("a.txt", b"CV of a.txt")]
        assert info.value.failure is SourceFailure.UNREACHABLE and info.value.item_id == items[1].id
    finally:
        drive.stop()


async def test_deleted_file_is_a_per_file_outcome(drive: DriveServer):
    root = drive.add_folder("CVs")
    a = drive.add_file("a.txt", b"first", "text/plain", root)
    drive.add_file("b.txt", b"second", "text/plain", root)
    async with open_source(_config(root, access_token=drive.issue_token()), None, settings=_settings(drive)) as src:
        items = await src.list_items()
        drive.files[a].trashed = True
        results = [f async for f in iter_fetch(src, items)]
    assert [(r.item.filename, r.ok) for r in results] == [("a.txt", False), ("b.txt", True)]


async def test_unreachable_api_is_a_clear_error():
    settings = SourceSettings(
        max_attempts=1, connect_timeout_seconds=1, drive_api_url=f"http://127.0.0.1:{free_port()}/drive/v3"
    )
    with pytest.raises(SourceError) as info:
        await list_items(_config("abc", access_token="ya29.t"), None, settings=settings)
    assert info.value.failure is SourceFailure.UNREACHABLE and info.value.retryable
