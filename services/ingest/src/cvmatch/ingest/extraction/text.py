"""Plain-text decoding: BOMs, strict UTF-8, then charset detection, then a single-byte fallback."""

from __future__ import annotations

import codecs

import charset_normalizer

_BOMS: tuple[tuple[bytes, str], ...] = (
    # UTF-32 before UTF-16: the UTF-32-LE BOM starts with the UTF-16-LE one.
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

# Encodings we accept from the detector without second-guessing; anything else (e.g. a guess of
# "cp1250" for a short Latin-1 file) falls back to cp1252, the overwhelmingly common legacy encoding of
# CVs written on Windows. Cyrillic, Greek and CJK encodings are kept when the detector is confident.
_TRUSTED_DETECTIONS = frozenset(
    {
        "utf_8",
        "cp1251",
        "koi8_r",
        "cp1253",
        "iso8859_7",
        "cp1254",
        "cp1255",
        "cp1256",
        "iso8859_6",
        "iso8859_8",
        "shift_jis",
        "cp932",
        "euc_jp",
        "gb18030",
        "gb2312",
        "gbk",
        "big5",
        "euc_kr",
        "cp949",
        "iso2022_jp",
        "utf_16",
        "utf_32",
    }
)


def bom_encoding(data: bytes) -> tuple[str, int] | None:
    """Return ``(encoding, bom_length)`` when ``data`` starts with a Unicode BOM."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            return name, len(bom)
    return None


def decode_text(data: bytes) -> tuple[str, str]:
    """Decode a text file; return ``(text, encoding_used)``.

    Order: a BOM decides; strict UTF-8; the charset-normalizer guess if it is a trusted family with low
    chaos; cp1252 (Windows Latin-1, a superset of printable ISO-8859-1); ISO-8859-1, which never fails.
    Raises ``UnicodeDecodeError`` only for a BOM-declared encoding that does not decode.
    """
    bom = bom_encoding(data)
    if bom is not None:
        name, length = bom
        return data[length:].decode(name), name
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    best = charset_normalizer.from_bytes(data[: 256 * 1024]).best()
    if best is not None and best.encoding in _TRUSTED_DETECTIONS and best.chaos < 0.2:
        try:
            return data.decode(best.encoding), best.encoding
        except (UnicodeDecodeError, LookupError):
            pass
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1"


def looks_like_text(data: bytes) -> bool:
    """True when ``data`` is plausibly a text file: a BOM, or no NUL byte (binary formats have many)."""
    if bom_encoding(data) is not None:
        return True
    return b"\x00" not in data
