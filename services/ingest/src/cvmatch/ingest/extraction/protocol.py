"""The framing between :class:`~.sandbox.ExtractionPool` and its workers.

Requests: ``>IQ`` (header length, payload length), a JSON header, the raw file bytes. Responses: ``>I``
length and a JSON object. Responses are JSON, never pickle: the worker has just parsed attacker bytes,
and unpickling its output would hand a compromised worker code execution in the service.
"""

from __future__ import annotations

import json
import struct
from dataclasses import asdict, fields
from typing import Any

from .limits import ExtractionLimits
from .outcomes import Outcome
from .rawtext import RawText

REQUEST_HEAD = struct.Struct(">IQ")
RESPONSE_HEAD = struct.Struct(">I")
READY = b"R"


def encode_limits(limits: ExtractionLimits) -> str:
    """Limits as JSON for the worker's command line."""
    return json.dumps(asdict(limits))


def decode_limits(text: str) -> ExtractionLimits:
    """The inverse of :func:`encode_limits`, ignoring unknown keys."""
    raw = json.loads(text)
    names = {f.name for f in fields(ExtractionLimits)}
    return ExtractionLimits(**{k: v for k, v in raw.items() if k in names})


def encode_request(kind: str, data: bytes) -> bytes:
    """One request frame."""
    header = json.dumps({"kind": kind}).encode()
    return REQUEST_HEAD.pack(len(header), len(data)) + header + data


def encode_response(result: RawText, *, recycle: bool = False) -> bytes:
    """One response frame; ``recycle`` asks the parent to replace this worker."""
    body = json.dumps(
        {
            "outcome": result.outcome.value,
            "text": result.text,
            "pages": result.pages,
            "message": result.message,
            "recycle": recycle,
        },
        ensure_ascii=False,
    ).encode("utf-8")
    return RESPONSE_HEAD.pack(len(body)) + body


def decode_response(body: bytes) -> tuple[RawText, bool]:
    """Parse and validate a response; raises ``ValueError`` on anything malformed."""
    obj: Any = json.loads(body.decode("utf-8"))
    if not isinstance(obj, dict):
        raise ValueError("response is not an object")
    outcome = Outcome(obj["outcome"])
    text, pages, message = obj["text"], obj["pages"], obj["message"]
    if not isinstance(text, str) or not isinstance(pages, int) or not isinstance(message, str):
        raise ValueError("response fields have wrong types")
    return RawText(outcome, text=text, pages=pages, message=message), bool(obj.get("recycle"))
