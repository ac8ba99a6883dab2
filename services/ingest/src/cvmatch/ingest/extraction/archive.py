"""ZIP uploads: central-directory pre-checks, then bounded in-memory reads of the accepted members.

CPython 3.11.7 happily inflates an overlapping-entry zip bomb (12 KB -> 500 MB) and BZIP2/LZMA members
reach ratios near 10^6:1, so nothing is decompressed until the central directory and every local header
have been checked: entry count (from the end record, before ``zipfile`` parses anything), declared
sizes, per-member ratio, overlapping or out-of-range members, compression method, encryption and paths.
Archives are never written to disk.

Structural hostility (overlaps, too many entries, a corrupt directory) rejects the whole upload with a
typed error; a problem confined to one member (a bzip2 member, a path with ``..``, a 1000:1 member) skips
just that member with an outcome, and the rest of the batch goes on.
"""

from __future__ import annotations

import io
import posixpath
import struct
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from .limits import ExtractionLimits
from .outcomes import InvalidFileContent, Outcome, PayloadTooLarge
from .sniff import EXTENSION_KINDS, ZIP_MAGIC, extension_of

DEFAULT_FIELD = "candidate_source_file"

_EOCD_SIG = b"PK\x05\x06"
_EOCD_SIZE = 22
_ZIP64_LOCATOR_SIG = b"PK\x06\x07"
_ZIP64_EOCD_SIG = b"PK\x06\x06"
_LOCAL_SIG = b"PK\x03\x04"
_LOCAL_HEADER_SIZE = 30
_MAX_COMMENT = 0xFFFF

_METHOD_NAMES = {
    zipfile.ZIP_STORED: "stored",
    zipfile.ZIP_DEFLATED: "deflate",
    zipfile.ZIP_BZIP2: "bzip2",
    zipfile.ZIP_LZMA: "lzma",
    9: "deflate64",
    93: "zstandard",
}

# Files that are never candidates and would only be noise in a batch's report (OS and sync droppings).
_JUNK_BASENAMES = frozenset({".ds_store", "thumbs.db", "desktop.ini", ".directory", "icon\r"})


@dataclass(frozen=True, slots=True)
class ArchiveEntry:
    """An accepted member, read into memory; ``name`` is its normalised path inside the archive."""

    name: str
    data: bytes
    index: int


@dataclass(frozen=True, slots=True)
class SkippedEntry:
    """A member that will not be extracted, with the per-file outcome to record for it."""

    name: str
    outcome: Outcome
    message: str
    index: int


@dataclass(frozen=True, slots=True)
class _Planned:
    info: zipfile.ZipInfo
    name: str
    index: int


@dataclass(frozen=True, slots=True)
class ZipScan:
    """The result of the central-directory pre-check: what will be read and what is skipped."""

    accepted: tuple[str, ...]
    skipped: tuple[SkippedEntry, ...]
    total_uncompressed: int


def _u16(data: bytes, offset: int) -> int:
    return int(struct.unpack_from("<H", data, offset)[0])


def _declared_entry_count(data: bytes, field: str) -> int:
    """Entry count from the end-of-central-directory record (ZIP64 aware), read before ``zipfile``."""
    tail_start = max(0, len(data) - (_EOCD_SIZE + _MAX_COMMENT))
    pos = data.rfind(_EOCD_SIG, tail_start)
    if pos < 0 or pos + _EOCD_SIZE > len(data):
        raise InvalidFileContent("The archive is not a valid ZIP file (no end record).", field=field)
    count = _u16(data, pos + 10)
    if count != 0xFFFF:
        return count
    loc = pos - 20
    if loc < 0 or data[loc : loc + 4] != _ZIP64_LOCATOR_SIG:
        raise InvalidFileContent("The archive's ZIP64 end record is missing.", field=field)
    rec = int(struct.unpack_from("<Q", data, loc + 8)[0])
    if rec < 0 or rec + 56 > len(data) or data[rec : rec + 4] != _ZIP64_EOCD_SIG:
        raise InvalidFileContent("The archive's ZIP64 end record is invalid.", field=field)
    return int(struct.unpack_from("<Q", data, rec + 32)[0])


def is_junk(name: str) -> bool:
    """macOS resource forks, Finder/Explorer metadata and directories (in archives and in sources'
    listings alike): ignored without an outcome."""
    if not name or name.endswith("/"):
        return True
    parts = name.split("/")
    if any(p == "__MACOSX" for p in parts):
        return True
    base = parts[-1]
    return base.startswith("._") or base.lower() in _JUNK_BASENAMES


def _unsafe_path(raw: str) -> bool:
    """Absolute, drive-qualified or ``..``-escaping paths (zip-slip), judged on the raw stored name."""
    name = raw.replace("\\", "/")
    if name.startswith("/") or (len(name) >= 2 and name[1] == ":"):
        return True
    depth = 0
    for part in name.split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        elif part not in ("", "."):
            depth += 1
    return "\x00" in name


def _local_data_range(data: bytes, info: zipfile.ZipInfo, field: str) -> tuple[int, int]:
    """The byte range [header, end of data) a member occupies, from its local header."""
    start = info.header_offset
    if start < 0 or start + _LOCAL_HEADER_SIZE > len(data) or data[start : start + 4] != _LOCAL_SIG:
        raise InvalidFileContent("The archive has a member without a valid local header.", field=field)
    name_len = _u16(data, start + 26)
    extra_len = _u16(data, start + 28)
    end = start + _LOCAL_HEADER_SIZE + name_len + extra_len + info.compress_size
    if end > len(data):
        raise InvalidFileContent("The archive has a member that runs past its end.", field=field)
    return start, end


def _plan(
    data: bytes, limits: ExtractionLimits, field: str
) -> tuple[zipfile.ZipFile, list[_Planned], list[SkippedEntry], int]:
    if len(data) > limits.max_archive_bytes:
        raise PayloadTooLarge(
            f"The archive is larger than {limits.max_archive_bytes} bytes.",
            field=field,
            outcome=Outcome.FILE_TOO_LARGE,
        )
    if not data.startswith(ZIP_MAGIC):
        raise InvalidFileContent("The file is not a ZIP archive.", field=field)
    declared = _declared_entry_count(data, field)
    if declared > limits.max_archive_entries:
        raise PayloadTooLarge(
            f"The archive lists {declared} entries; the limit is {limits.max_archive_entries}.",
            field=field,
            outcome=Outcome.LIMITS_EXCEEDED,
        )
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError, struct.error) as exc:
        raise InvalidFileContent("The archive's central directory is corrupt.", field=field) from exc
    if len(infos) > limits.max_archive_entries:
        zf.close()
        raise PayloadTooLarge(
            f"The archive lists {len(infos)} entries; the limit is {limits.max_archive_entries}.",
            field=field,
            outcome=Outcome.LIMITS_EXCEEDED,
        )
    try:
        # Every member's bytes must lie in its own range: overlapping members are how a 12 KB file
        # expands to gigabytes, and they never occur in archives written by real tools.
        ranges = sorted((_local_data_range(data, info, field), i) for i, info in enumerate(infos))
        previous_end = 0
        for (start, end), _ in ranges:
            if start < previous_end:
                raise InvalidFileContent(
                    "The archive has overlapping members (a zip bomb).",
                    field=field,
                    outcome=Outcome.LIMITS_EXCEEDED,
                )
            previous_end = end
    except InvalidFileContent:
        zf.close()
        raise

    planned: list[_Planned] = []
    skipped: list[SkippedEntry] = []
    total = 0
    for index, info in enumerate(infos):
        raw = info.filename
        name = raw.replace("\\", "/")
        if is_junk(name):
            continue

        def skip(outcome: Outcome, message: str, name: str = name, index: int = index) -> None:
            skipped.append(SkippedEntry(name=name, outcome=outcome, message=message, index=index))

        if _unsafe_path(raw):
            skip(Outcome.INVALID_FILE_CONTENT, "The entry's path escapes the archive.")
            continue
        name = posixpath.normpath(name).lstrip("/")
        if info.flag_bits & 0x1:
            skip(Outcome.UNSUPPORTED_TYPE, "The entry is password-protected.")
            continue
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            method = _METHOD_NAMES.get(info.compress_type, str(info.compress_type))
            skip(Outcome.UNSUPPORTED_TYPE, f"Compression method {method} is not supported.")
            continue
        if extension_of(name) not in EXTENSION_KINDS:
            skip(Outcome.UNSUPPORTED_TYPE, Outcome.UNSUPPORTED_TYPE.message)
            continue
        if info.file_size > limits.ratio_exempt_bytes and info.file_size > limits.max_compression_ratio * max(
            info.compress_size, 1
        ):
            skip(Outcome.LIMITS_EXCEEDED, "The entry's compression ratio is too high.")
            continue
        if info.file_size > limits.max_file_bytes:
            skip(Outcome.FILE_TOO_LARGE, Outcome.FILE_TOO_LARGE.message)
            continue
        if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
            skip(Outcome.INVALID_FILE_CONTENT, "The entry's declared sizes disagree.")
            continue
        total += info.file_size
        planned.append(_Planned(info=info, name=name, index=index))
    if total > limits.max_archive_total_uncompressed:
        zf.close()
        raise PayloadTooLarge(
            f"The archive expands to more than {limits.max_archive_total_uncompressed} bytes.",
            field=field,
            outcome=Outcome.LIMITS_EXCEEDED,
        )
    return zf, planned, skipped, total


def scan_zip(data: bytes, limits: ExtractionLimits, *, field: str = DEFAULT_FIELD) -> ZipScan:
    """Check a ZIP's structure without decompressing anything; raise for a hostile or oversized archive.

    Cheap (central directory and local headers only), so the service can count candidates and reserve
    credits before accepting the upload.
    """
    zf, planned, skipped, total = _plan(data, limits, field)
    zf.close()
    return ZipScan(accepted=tuple(p.name for p in planned), skipped=tuple(skipped), total_uncompressed=total)


def iter_zip(
    data: bytes, limits: ExtractionLimits, *, field: str = DEFAULT_FIELD
) -> Iterator[ArchiveEntry | SkippedEntry]:
    """Yield each member in archive order: the read bytes of accepted ones, an outcome for the others.

    Junk (directories, ``__MACOSX/``, ``.DS_Store``, ``._*``) is left out silently. Raises
    :class:`InvalidFileContent` or :class:`PayloadTooLarge` before yielding anything when the archive as a
    whole is hostile. One member is held in memory at a time, so a caller that spools each entry keeps
    its memory bounded by ``max_file_bytes``.
    """
    zf, planned, skipped, _ = _plan(data, limits, field)
    by_index: dict[int, SkippedEntry] = {s.index: s for s in skipped}
    order = sorted([*(p.index for p in planned), *by_index])
    planned_by_index = {p.index: p for p in planned}
    with zf:
        for index in order:
            if index in by_index:
                yield by_index[index]
                continue
            item = planned_by_index[index]
            yield _read_member(zf, item, limits)


def _read_member(zf: zipfile.ZipFile, item: _Planned, limits: ExtractionLimits) -> ArchiveEntry | SkippedEntry:
    cap = min(item.info.file_size, limits.max_file_bytes)
    try:
        with zf.open(item.info) as member:
            # zipfile stops at the declared size; reading one byte more proves it (defence in depth).
            content = member.read(cap + 1)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError) as exc:
        # A CRC mismatch or truncated stream: a lying header or a damaged member.
        return SkippedEntry(
            name=item.name,
            outcome=Outcome.INVALID_FILE_CONTENT,
            message=f"The entry is damaged ({type(exc).__name__}).",
            index=item.index,
        )
    if len(content) > cap:
        return SkippedEntry(
            name=item.name,
            outcome=Outcome.LIMITS_EXCEEDED,
            message="The entry is larger than declared.",
            index=item.index,
        )
    return ArchiveEntry(name=item.name, data=content, index=item.index)


def expand_zip(
    data: bytes, limits: ExtractionLimits, *, field: str = DEFAULT_FIELD
) -> list[ArchiveEntry | SkippedEntry]:
    """All members of a ZIP upload, read in memory after the pre-checks (see :func:`iter_zip`)."""
    return list(iter_zip(data, limits, field=field))
