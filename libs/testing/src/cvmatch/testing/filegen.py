"""Builders for the extraction tests and benchmark: every input is made in code, nothing is read from disk.

Hostile files are built by hand from the specs (PDF 1.7 §7, APPNOTE 4.3) so their shape is explicit.
"""

from __future__ import annotations

import csv
import io
import random
import struct
import zipfile
import zlib
from collections.abc import Iterable, Sequence

SKILLS = ["Python", "Kubernetes", "PostgreSQL", "gRPC", "Terraform", "React", "Go", "Kafka"]


def cv_lines(name: str = "Jane Doe", *, n_jobs: int = 3) -> list[str]:
    """A plausible CV as lines, with section headings the matcher relies on."""
    lines = [name, "Senior Software Engineer", "jane@example.com", "", "Summary"]
    lines.append("Backend engineer with ten years of experience building distributed systems.")
    lines += ["", "Experience"]
    for job in range(n_jobs):
        lines.append(f"Engineer at Company {job} (201{job} - 202{job})")
        for skill in SKILLS[job : job + 4]:
            lines.append(f"• Built and operated {skill} services for millions of users.")
    lines += ["", "Skills", ", ".join(SKILLS), "", "Education", "MSc Computer Science, Example University"]
    return lines


# ---------------------------------------------------------------------------------------------- text

# The job description and CVs the matcher benchmarks score (generated, varied, no personal data).
BACKEND_JD = """Senior Backend Engineer

Responsibilities
- Design, build and operate REST APIs and microservices in Python and Go
- Run services on Kubernetes in AWS; automate infrastructure with Terraform

Requirements
- 5+ years of professional software development experience
- Python, PostgreSQL, Docker, Kubernetes, AWS
- Bachelor's degree in Computer Science or related field

Nice to have
- GraphQL, Kafka, React
"""
_LONG_CV_SKILLS = ["Python", "Go", "Java", "PostgreSQL", "MySQL", "Docker", "Kubernetes", "AWS", "Azure",
                   "Terraform", "React", "TypeScript", "Node.js", "Kafka", "Redis", "GraphQL", "Linux", "Git",
                   "Jenkins", "Excel", "Tableau", "SQL", "Spark", "Airflow", "Django", "Flask", "Scala", "C++",
                   "Agile", "Scrum"]
_LONG_CV_FILLER = ("delivered features with the team, reviewed code, wrote documentation, improved reliability and "
                   "latency, mentored engineers, planned sprints with product managers and handled on-call "
                   "duties").split()
_LONG_CV_TITLES = ["Software Engineer", "Backend Developer", "Data Engineer", "Senior Software Engineer",
                   "DevOps Engineer"]


def long_cv_text(rng: random.Random, words: int = 700) -> str:
    """A CV of about ``words`` words (the matcher benchmarks' 700-word CVs): dated jobs with skills in their
    bullets, education and a skills list, drawn from ``rng``."""
    lines = ["Candidate Name", rng.choice(_LONG_CV_TITLES), "", "Summary",
             "Engineer with experience in " + ", ".join(rng.sample(_LONG_CV_SKILLS, 4)) + ".", "", "Experience"]
    year = 2024
    while sum(len(x.split()) for x in lines) < words - 60:
        start = year - rng.randint(1, 4)
        lines += [f"{rng.choice(_LONG_CV_TITLES)}, Company {rng.randint(1, 99)}", f"Jan {start} - Dec {year}"]
        for _ in range(6):
            bullet = [*rng.sample(_LONG_CV_FILLER, 12), "using", *rng.sample(_LONG_CV_SKILLS, 2)]
            lines.append("- " + " ".join(bullet))
        lines.append("")
        year = start - 1
    lines += ["Education", "BSc in Computer Science, 2010 - 2014", "", "Skills",
              ", ".join(rng.sample(_LONG_CV_SKILLS, 12))]
    return "\n".join(lines)



# ---------------------------------------------------------------------------------------------- PDF


def pdf_pages(pages: Sequence[Sequence[str]], *, encrypt: tuple[str, str] | None = None) -> bytes:
    """A text PDF (reportlab), one list of lines per page; ``encrypt=(user, owner)`` passwords."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.pdfencrypt import StandardEncryption
    from reportlab.pdfgen import canvas

    buf = io.BytesIO()
    enc = StandardEncryption(encrypt[0], ownerPassword=encrypt[1]) if encrypt else None
    c = canvas.Canvas(buf, pagesize=A4, encrypt=enc, invariant=1)
    for lines in pages:
        c.setFont("Helvetica", 10)
        y = 800
        for line in lines:
            c.drawString(60, y, line)
            y -= 14
        c.showPage()
    c.save()
    return buf.getvalue()


def cv_pdf(pages: int = 2, name: str = "Jane Doe") -> bytes:
    """A ``pages``-page text CV."""
    return pdf_pages([cv_lines(name if p == 0 else f"{name} (continued)", n_jobs=4) for p in range(pages)])


def pdf_two_column(left: Sequence[str], right: Sequence[str], *, header: str, footer: str) -> bytes:
    """A two-column page drawn line by line ACROSS the columns (left i, right i, left i+1, ...), the
    order that makes content-stream extraction interleave the columns."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4, invariant=1)
    c.setFont("Helvetica-Bold", 16)
    c.drawString(60, 800, header)
    c.setFont("Helvetica", 10)
    y = 760
    for i in range(max(len(left), len(right))):
        if i < len(left):
            c.drawString(50, y, left[i])
        if i < len(right):
            c.drawString(320, y, right[i])
        y -= 14
    c.drawString(60, y - 30, footer)
    c.showPage()
    c.save()
    return buf.getvalue()


def pdf_image_only() -> bytes:
    """A 'scanned' PDF: one page with a raster image and no text layer."""
    from PIL import Image, ImageDraw
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    img = Image.new("L", (400, 500), 255)
    draw = ImageDraw.Draw(img)
    for y in range(20, 480, 12):
        draw.line((20, y, 380, y), fill=0, width=3)  # "lines of text" as pixels
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4, invariant=1)
    c.drawImage(ImageReader(img), 50, 200, width=400, height=500)
    c.showPage()
    c.save()
    return buf.getvalue()


def raw_pdf(objects: Sequence[bytes], *, streams: dict[int, bytes] | None = None) -> bytes:
    """A PDF from object bodies (object 1 must be the catalog); ``streams`` maps an object number to
    FlateDecode-compressed stream content appended to that object's dictionary."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number
        if streams and number in streams:
            comp = zlib.compress(streams[number], 9)
            out += body.rstrip()[:-2] + b" /Length %d /Filter /FlateDecode >>\nstream\n" % len(comp)
            out += comp + b"\nendstream"
        else:
            out += body
        out += b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


_CATALOG = b"<< /Type /Catalog /Pages 2 0 R >>"
_PAGES = b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>"
_FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"


def pdf_text_ops_bomb(n_ops: int) -> bytes:
    """A page whose content stream is ``n_ops`` tiny ``(A)Tj`` operators, FlateDecode-compressed (a
    2,000,000-op stream is ~10 MB decoded and ~20 KB on disk)."""
    page = (
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 5 0 R >> >>"
        b" /Contents 4 0 R >>"
    )
    content = b"BT /F1 12 Tf 72 720 Td " + b"(A)Tj " * n_ops + b"ET"
    return raw_pdf([_CATALOG, _PAGES, page, b"<< >>", _FONT], streams={4: content})


def pdf_without_resources() -> bytes:
    """A page that shows text with a font it never declares (no /Resources): pypdf returns ''."""
    page = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>"
    content = b"BT /F1 12 Tf 72 720 Td (Senior engineer with Python and Kubernetes experience) Tj ET"
    return raw_pdf([_CATALOG, _PAGES, page, b"<< >>"], streams={4: content})


def pdf_deeply_nested(depth: int, *, kind: str = "array") -> bytes:
    """A page dictionary holding an array (or dictionary) nested ``depth`` levels deep."""
    if kind == "array":
        nested = b"[" * depth + b"1" + b"]" * depth
    else:
        nested = b"<< /A " * depth + b"1" + b" >>" * depth
    page = (
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 5 0 R >> >>"
        b" /Contents 4 0 R /Nested " + nested + b" >>"
    )
    content = b"BT /F1 12 Tf 72 720 Td (Some text on a page with plenty of words in it) Tj ET"
    return raw_pdf([_CATALOG, _PAGES, page, b"<< >>", _FONT], streams={4: content})


# --------------------------------------------------------------------------------------------- DOCX


def docx_with_table() -> bytes:
    """A DOCX whose text is split between paragraphs and a table, in a known order."""
    from docx import Document

    doc = Document()
    doc.add_heading("John Smith", level=1)
    doc.add_paragraph("Platform engineer focused on reliability and developer tooling.")
    doc.add_heading("Skills", level=2)
    table = doc.add_table(rows=3, cols=2)
    for row, (skill, years) in enumerate([("Python", "8 years"), ("Kubernetes", "5 years"), ("Go", "3 years")]):
        table.cell(row, 0).text = skill
        table.cell(row, 1).text = years
    doc.add_heading("Experience", level=2)
    doc.add_paragraph("Staff Engineer at Example Corp, building internal platforms for hundreds of teams.")
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()


def docx_from_lines(lines: Iterable[str]) -> bytes:
    """A plain DOCX with one paragraph per line."""
    from docx import Document

    doc = Document()
    for line in lines:
        doc.add_paragraph(line)
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------- ZIP


def zip_of(entries: Sequence[tuple[str, bytes]], *, method: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A well-formed ZIP of ``(name, data)`` members (names are stored verbatim, ``..`` included)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = method
            zf.writestr(info, data)
    return buf.getvalue()


def zip_with_methods(entries: Sequence[tuple[str, bytes, int]]) -> bytes:
    """A ZIP where each member has its own compression method."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data, method in entries:
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = method
            zf.writestr(info, data)
    return buf.getvalue()


def _local_header(name: bytes, crc: int, csize: int, usize: int) -> bytes:
    return struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, 8, 0, 0x21, crc, csize, usize, len(name), 0) + name


def zip_overlapping_bomb(n_files: int = 40, kernel_size: int = 2 * 1024 * 1024) -> bytes:
    """Fifield's overlapping-entry zip bomb ("A better zip bomb", 2019): every member's deflate stream
    quotes the next member's local header in a stored block and then runs into the next member's data,
    so all members share one compressed kernel. ``n_files * kernel_size`` bytes from a few KB."""
    kernel_plain = b"a" * kernel_size
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    kernel = co.compress(kernel_plain) + co.flush()
    names = [f"resume{i:04d}.txt".encode() for i in range(n_files)]
    headers: list[bytes] = [b""] * n_files
    crcs, csizes, usizes = [0] * n_files, [0] * n_files, [0] * n_files
    crcs[-1], csizes[-1], usizes[-1] = zlib.crc32(kernel_plain), len(kernel), kernel_size
    headers[-1] = _local_header(names[-1], crcs[-1], csizes[-1], usizes[-1])
    for i in range(n_files - 2, -1, -1):
        quoted = headers[i + 1]
        csizes[i] = 5 + len(quoted) + csizes[i + 1]
        usizes[i] = len(quoted) + usizes[i + 1]
        crc = 0
        for h in headers[i + 1 :]:
            crc = zlib.crc32(h, crc)
        crcs[i] = zlib.crc32(kernel_plain, crc)
        headers[i] = _local_header(names[i], crcs[i], csizes[i], usizes[i])
    body = bytearray()
    offsets = []
    for i in range(n_files):
        offsets.append(len(body))
        body += headers[i]
        if i < n_files - 1:
            q = headers[i + 1]
            body += b"\x00" + struct.pack("<HH", len(q), len(q) ^ 0xFFFF)
    body += kernel
    cd = bytearray()
    for i in range(n_files):
        cd += (
            struct.pack(
                "<4sHHHHHHIIIHHHHHII",
                b"PK\x01\x02",
                20,
                20,
                0,
                8,
                0,
                0x21,
                crcs[i],
                csizes[i],
                usizes[i],
                len(names[i]),
                0,
                0,
                0,
                0,
                0,
                offsets[i],
            )
            + names[i]
        )
    eocd = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, n_files, n_files, len(cd), len(body), 0)
    return bytes(body + cd + eocd)


# ---------------------------------------------------------------------------------------------- CSV


def csv_bytes(rows: Sequence[Sequence[str]], *, bom: bool = True, header: Sequence[str] | None = None) -> bytes:
    """A CSV (Excel dialect, CRLF, minimal quoting) with the standard header unless one is given."""
    buf = io.StringIO(newline="")
    writer = csv.writer(buf)
    writer.writerow(header or ["candidate_id", "name", "resume_text", "filename"])
    writer.writerows(rows)
    return (b"\xef\xbb\xbf" if bom else b"") + buf.getvalue().encode("utf-8")
