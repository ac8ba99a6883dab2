"""Text normalisation shared by every extractor (and by CSV rows).

The matcher finds section headings ("Experience", "Skills") by line, so line structure is kept: only
whitespace inside a line is collapsed, blank-line runs shrink to one, and a word hyphenated across a line
end is re-joined. Everything here is linear-time (no backtracking-prone patterns) because it also runs in
the service process on CSV text.
"""

from __future__ import annotations

import re
import unicodedata

# Typographic ligatures that PDF fonts emit as single code points; NFC keeps them, NFKC would also
# rewrite characters we want to keep (superscripts, fullwidth forms), so map just these.
_LIGATURES = {
    "\ufb00": "ff",
    "\ufb01": "fi",
    "\ufb02": "fl",
    "\ufb03": "ffi",
    "\ufb04": "ffl",
    "\ufb05": "st",
    "\ufb06": "st",
    "\u0132": "IJ",
    "\u0133": "ij",
    "\u0152": "OE",
    "\u0153": "oe",
}

# Characters that only affect rendering; a soft hyphen inside a word would split it for the matcher.
_INVISIBLE = {
    "\u00ad": "",  # soft hyphen
    "\u200b": "",  # zero-width space
    "\u200c": "",
    "\u200d": "",
    "\u2060": "",  # word joiner
    "\ufeff": "",  # BOM / zero-width no-break space
}

# Exotic spaces become a plain space so that whitespace collapsing sees them.
_SPACES = {c: " " for c in "\u00a0\u1680\u202f\u205f\u3000\t\v" + "".join(chr(x) for x in range(0x2000, 0x200B))}

# Line separators of other systems become "\n".
_NEWLINES = {"\r\n": "\n", "\r": "\n", "\f": "\n", "\u2028": "\n", "\u2029": "\n", "\x85": "\n"}

_TRANSLATE = str.maketrans({**_LIGATURES, **_INVISIBLE, **_SPACES})

# Bullet glyphs at the start of a line, including the Symbol/Wingdings private-use bullets that Word's
# PDF export leaves in the text layer (U+F0B7, U+F0A7, U+F076, U+F0D8, U+F0FC).
_BULLETS = "•◦▪▫●○■□◆◇►▶▸▹‣⁃∙·➢➤➔→✓✔✗✘❖★☆\uf0b7\uf0a7\uf076\uf0d8\uf0fc\uf0a8\uf06e\uf0e0*–—−"
_BULLET_LINE = re.compile(r"^[ ]*[" + re.escape(_BULLETS) + r"][ ]*(?=\S)")
# A lone ASCII "-" bullet is kept but its spacing normalised ("-Python" is left alone: could be a flag).
_DASH_BULLET = re.compile(r"^[ ]*-[ ]+(?=\S)")

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x84\x86-\x9f]")
_MULTI_SPACE = re.compile(r" {2,}")
# "experi-\nence" -> "experience": a letter, a hyphen at line end, and a lowercase letter next.
_HYPHEN_BREAK = re.compile(r"(?<=[^\W\d_])[-\u2010]\n[ ]*(?=[a-zß-ÿ])")
_BLANK_RUNS = re.compile(r"\n{3,}")


def normalize_text(text: str) -> str:
    """Return ``text`` normalised for matching: NFC, no ligatures, uniform bullets, kept lines.

    - line endings to ``\\n``; control and zero-width characters removed;
    - ligatures (ﬁ ﬂ ﬀ ﬃ ﬄ ...) expanded; exotic spaces and tabs to a single space;
    - bullets at the start of a line (•, ▪, ◦, –, , ...) to ``"- "``;
    - words hyphenated at a line end re-joined; trailing spaces stripped; at most one blank line in a row.
    """
    for old, new in _NEWLINES.items():
        text = text.replace(old, new)
    text = unicodedata.normalize("NFC", text.translate(_TRANSLATE))
    text = _CONTROL.sub("", text)
    lines = []
    for raw in text.split("\n"):
        line = _MULTI_SPACE.sub(" ", raw).strip(" ")
        line = _BULLET_LINE.sub("- ", line)
        line = _DASH_BULLET.sub("- ", line)
        lines.append(line)
    text = "\n".join(lines)
    text = _HYPHEN_BREAK.sub("", text)
    text = _BLANK_RUNS.sub("\n\n", text)
    return text.strip("\n")


def has_enough_text(text: str, *, min_chars: int, min_words: int) -> bool:
    """True when ``text`` holds at least ``min_chars`` non-space characters and ``min_words`` words.

    A scanned PDF often yields a page number or stray glyphs; that is not a CV.
    """
    non_space = len(text) - sum(text.count(c) for c in " \n")
    if non_space < min_chars:
        return False
    words = 0
    for _ in re.finditer(r"\w{2,}", text):
        words += 1
        if words >= min_words:
            return True
    return False
