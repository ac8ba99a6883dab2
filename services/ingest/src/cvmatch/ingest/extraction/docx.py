"""DOCX text extraction straight from the WordprocessingML parts, in document order.

python-docx exposes paragraphs and tables as separate lists, losing their interleaving, and skips text
boxes; CV templates put whole sections in tables and text boxes. Walking ``word/document.xml`` ourselves
keeps order, reads both, and is several times faster. Headers (name, contact) come first, footers last.
"""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterator

from .limits import ExtractionLimits
from .outcomes import Outcome
from .rawtext import RawText, TextLimitExceeded

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_MC_FALLBACK = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"
_P, _TBL, _TR, _TC, _SDT, _SDT_CONTENT = (f"{_W}{t}" for t in ("p", "tbl", "tr", "tc", "sdt", "sdtContent"))
_T, _TAB, _BR, _CR, _NB_HYPHEN = (f"{_W}{t}" for t in ("t", "tab", "br", "cr", "noBreakHyphen"))
_TXBX, _DEL, _INSTR, _PPR, _NUMPR = (f"{_W}{t}" for t in ("txbxContent", "del", "instrText", "pPr", "numPr"))
_BLOCK_WRAPPERS = frozenset({f"{_W}customXml", f"{_W}smartTag", _SDT_CONTENT, f"{_W}ins", f"{_W}hyperlink"})
# Inside a run: parts that never hold visible text (deleted revisions, field codes, the VML duplicate).
_SKIP = frozenset({_DEL, _INSTR, _MC_FALLBACK, f"{_W}delText", _PPR, f"{_W}rPr"})

_HEADER_PART = re.compile(r"^word/header\d*\.xml$")
_FOOTER_PART = re.compile(r"^word/footer\d*\.xml$")
_ALLOWED_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)


class _Budget:
    """Counts emitted characters so a hostile document stops early instead of exhausting memory."""

    def __init__(self, limit: int) -> None:
        self.left = limit

    def take(self, text: str) -> str:
        self.left -= len(text)
        if self.left < 0:
            raise TextLimitExceeded
        return text


def extract_docx(data: bytes, limits: ExtractionLimits) -> RawText:
    """Extract paragraphs, tables, text boxes, headers and footers of a DOCX in document order."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = [info.filename for info in zf.infolist()]
        budget = _Budget(limits.max_text_chars)
        lines: list[str] = []
        for name in sorted(n for n in names if _HEADER_PART.match(n)):
            _read_part(zf, name, limits, lines, budget)
        _read_part(zf, "word/document.xml", limits, lines, budget)
        for name in sorted(n for n in names if _FOOTER_PART.match(n)):
            _read_part(zf, name, limits, lines, budget)
    return RawText(Outcome.OK, text="\n".join(lines), pages=0)


class UnsafeXml(ValueError):
    """A DOCX part declares a DTD (entity-expansion attacks); real Word documents never do."""


def _read_part(zf: zipfile.ZipFile, name: str, limits: ExtractionLimits, lines: list[str], budget: _Budget) -> None:
    info = zf.getinfo(name)
    if info.compress_type not in _ALLOWED_METHODS:
        raise UnsafeXml(f"unsupported compression in {name}")
    if info.file_size > limits.max_docx_xml_bytes:
        raise TextLimitExceeded
    with zf.open(info) as member:
        xml = member.read(limits.max_docx_xml_bytes + 1)
    if len(xml) > limits.max_docx_xml_bytes:
        raise TextLimitExceeded
    if b"<!DOCTYPE" in xml or b"<!ENTITY" in xml:
        raise UnsafeXml("DTD in a DOCX part")
    root = ET.fromstring(xml)
    del xml
    for child in root:
        if child.tag == f"{_W}body":
            _blocks(child, lines, budget)
            return
    _blocks(root, lines, budget)  # header/footer parts hold blocks directly


def _blocks(container: ET.Element, lines: list[str], budget: _Budget) -> None:
    """Append the lines of a block container (body, cell, text box, header) in order."""
    for child in container:
        tag = child.tag
        if tag == _P:
            _paragraph(child, lines, budget)
        elif tag == _TBL:
            _table(child, lines, budget)
        elif tag == _SDT or tag in _BLOCK_WRAPPERS:
            _blocks(child, lines, budget)


def _paragraph(p: ET.Element, lines: list[str], budget: _Budget) -> None:
    parts: list[str] = []
    boxes: list[str] = []
    _inline(p, parts, boxes, budget)
    text = "".join(parts)
    ppr = p.find(_PPR)
    # Word list items carry their bullet as numbering, not as text: make it visible to the matcher.
    if ppr is not None and ppr.find(_NUMPR) is not None and text.strip():
        text = "- " + text.lstrip()
    lines.extend(text.split("\n"))
    lines.extend(boxes)


def _inline(node: ET.Element, parts: list[str], boxes: list[str], budget: _Budget) -> None:
    for child in node:
        tag = child.tag
        if tag == _T:
            parts.append(budget.take(child.text or ""))
        elif tag == _TAB:
            parts.append(" ")
        elif tag in (_BR, _CR):
            parts.append("\n")
        elif tag == _NB_HYPHEN:
            parts.append("-")
        elif tag == _TXBX:
            # A text box is its own block: its lines follow the anchoring paragraph.
            _blocks(child, boxes, budget)
        elif tag in _SKIP:
            continue
        else:
            _inline(child, parts, boxes, budget)


def _table(tbl: ET.Element, lines: list[str], budget: _Budget) -> None:
    """A data table row becomes one ``a | b | c`` line; a layout table (multi-line cells) is read cell by
    cell, so a two-column CV built from a table keeps each column's sections together."""
    for tr in _rows(tbl):
        cells: list[list[str]] = []
        for tc in tr.findall(_TC):
            cell_lines: list[str] = []
            _blocks(tc, cell_lines, budget)
            cells.append([ln for ln in cell_lines if ln.strip()])
        if all(len(c) <= 1 for c in cells):
            row = " | ".join(c[0].strip() for c in cells if c)
            if row:
                lines.append(row)
        else:
            for c in cells:
                lines.extend(c)
                lines.append("")


def _rows(container: ET.Element) -> Iterator[ET.Element]:
    """Direct rows of a table, looking through content-control wrappers but not into nested tables."""
    for child in container:
        if child.tag == _TR:
            yield child
        elif child.tag == _SDT or child.tag in _BLOCK_WRAPPERS:
            yield from _rows(child)
