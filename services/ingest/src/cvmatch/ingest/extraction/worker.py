"""The sandbox worker: ``python -m cvmatch.ingest.extraction.worker '<limits json>'``.

It sets its address-space limit once, then serves requests on stdin/stdout one at a time, re-arming the
CPU limit before each so that RLIMIT_CPU (which counts the process's lifetime) bounds every task alone.
Exceeding the CPU limit kills it with SIGXCPU; the parent sees that and replaces it.
"""

from __future__ import annotations

import json
import math
import os
import resource
import sys
from typing import BinaryIO

from .extract import extract_kind
from .outcomes import DocumentKind, Outcome
from .protocol import READY, REQUEST_HEAD, decode_limits, encode_response
from .rawtext import RawText

_OUT_OF_MEMORY = RawText(Outcome.LIMITS_EXCEEDED, message="The file needs more memory than allowed.")


def _read_exact(stream: BinaryIO, n: int) -> bytes | None:
    chunks: list[bytes] = []
    while n > 0:
        chunk = stream.read(n)
        if not chunk:
            return None
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _arm_cpu_limit(seconds: int) -> None:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = math.ceil(usage.ru_utime + usage.ru_stime)
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = used + seconds
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def _warm_up_pdf() -> bytes:
    """A one-page text PDF: extracting it once imports pypdf's lazily loaded text-layout modules before
    the worker reports ready, so the first real file does not pay for them."""
    content = b"BT /F1 12 Tf 72 720 Td (warm up) Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 4 0 R >> >>"
        b" /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content),
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def main() -> None:
    """Serve extraction requests until stdin closes."""
    limits = decode_limits(sys.argv[1])
    requests = sys.stdin.buffer
    replies = sys.stdout.buffer
    # Anything a library prints must not corrupt the protocol stream.
    sys.stdout = sys.stderr
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    extract_kind(DocumentKind.PDF, _warm_up_pdf(), limits)
    # Set after the imports above so the limit bounds parsing, not interpreter start-up.
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    replies.write(READY)
    replies.flush()
    while True:
        head = _read_exact(requests, REQUEST_HEAD.size)
        if head is None:
            return
        header_len, payload_len = REQUEST_HEAD.unpack(head)
        header = _read_exact(requests, header_len)
        data = _read_exact(requests, payload_len)
        if header is None or data is None:
            return
        kind = DocumentKind(json.loads(header)["kind"])
        _arm_cpu_limit(limits.cpu_seconds)
        recycle = False
        failure: RawText | None = None
        try:
            result = extract_kind(kind, data, limits)
        except MemoryError:
            failure = _OUT_OF_MEMORY
        except Exception as exc:  # a parser bug, not a limit: report it, then start afresh
            failure = RawText(Outcome.PARSE_ERROR, message=f"{Outcome.PARSE_ERROR.message} ({type(exc).__name__})")
        if failure is not None:
            # Outside the except block: the traceback (and the half-built parse tree its frames hold)
            # is gone, so there is memory to build the reply; the worker is replaced afterwards.
            result, recycle = failure, True
        del data
        replies.write(encode_response(result, recycle=recycle))
        replies.flush()
        if recycle:
            os._exit(0)


if __name__ == "__main__":
    main()
