"""`GET /openapi.json`: the OpenAPI 3.1 document of the public API, generated from the protos.

Paths and methods come from the `google.api.http` rules of `cvmatch.api.gateway.v1` (the same rules Envoy
transcodes), schemas from the messages as Envoy prints them (proto field names, enums as strings). The
upload methods take `stream google.api.HttpBody`, which says nothing about the form: their fields are
described here, next to the code that parses them (forms.py).
"""

from __future__ import annotations

import json
import re
from typing import Any

from google.api import annotations_pb2, http_pb2, httpbody_pb2
from google.protobuf import descriptor

from cvmatch.api.gateway.v1 import gateway_service_pb2, gateway_service_pb2_grpc
from cvmatch.api.gateway.v1 import gateway_service_pb2 as gw
from cvmatch.gateway.submitting import Context

PACKAGE = "cvmatch.api.gateway.v1"
_FD = descriptor.FieldDescriptor

_STR = {"type": "string"}
_FILE = {"type": "string", "format": "binary"}
_JSON_TEXT = {"type": "string", "description": "A JSON object, as text"}
_INPUT_TYPE = {"type": "string", "description": "Case-insensitive",
               "enum": ["ZIP_FILE", "CSV_FILE", "GOOGLE_DRIVE", "AWS_S3", "DATABASE",
                        "zip_file", "csv_file", "google_drive", "aws_s3", "database"]}
_BATCH_FORM = {
    "input_type": _INPUT_TYPE,
    "job_description_text": {**_STR, "description": "The job description (alias: job_text)"},
    "job_text": {**_STR, "description": "Alias of job_description_text (the JavaScript example's name)"},
    "candidate_source_file": {**_FILE, "description": "ZIP or CSV; required for ZIP_FILE and CSV_FILE"},
    "candidate_file": {**_FILE, "description": "Alias of candidate_source_file"},
    "jd_file": {**_FILE, "description": "The job description as a file, instead of the text"},
    "source_config_json": {**_JSON_TEXT, "description": "Required for GOOGLE_DRIVE, AWS_S3, DATABASE"},
    "metadata_json": _JSON_TEXT,
    "job_id": _STR,
    "webhook_url": {**_STR, "format": "uri"},
    "idempotency_key": _STR,
}
_SYNC_FORM = {
    "input_type": {"type": "string", "enum": ["csv_file", "zip_file", "csv_text", "CSV_FILE", "ZIP_FILE",
                                              "CSV_TEXT"]},
    "job_text": _STR,
    "job_description_text": {**_STR, "description": "Alias of job_text"},
    "max_candidates": {"type": "integer", "minimum": 1, "maximum": 100},
    "timeout": {"type": "integer", "minimum": 1, "maximum": 590, "description": "Seconds to wait"},
    "csv_text": {**_STR, "description": "The candidates as CSV text (candidate_id,name,resume_text,filename)"},
    "idempotency_key": _STR,
}
_MATCH_FORM = {
    "cvs": {"type": "array", "items": _FILE, "description": "PDF, DOCX or TXT; 5 MB each; plan limit per job"},
    "jd_text": {**_STR, "maxLength": 50000},
    "jd_file": _FILE,
    "idempotency_key": _STR,
}
_DEEP_FORM = {
    "cv_file": {**_FILE, "description": "A PDF (application/pdf, .pdf, starting with %PDF-), at most 5 MB"},
    "job_description_text": _STR,
    "jd_text": {**_STR, "description": "Alias of job_description_text"},
    "jd_file": _FILE,
    "requirements_config": _JSON_TEXT,
    "webhook_url": {**_STR, "format": "uri", "description": "https:// only; private addresses are refused"},
    "idempotency_key": _STR,
}
UPLOAD_FORMS: dict[str, tuple[dict[str, Any], list[str], bool]] = {
    # method: (form fields, required fields, also accepts application/json)
    "SubmitBatchJob": (_BATCH_FORM, ["input_type"], True),
    "SubmitBatch": (_BATCH_FORM, ["input_type"], True),
    "SyncBatch": ({**_SYNC_FORM, "candidate_file": _FILE, "candidate_source_file": _FILE}, [], True),
    "CreateMatchJob": (_MATCH_FORM, ["cvs"], False),
    "SubmitDeepMatch": (_DEEP_FORM, ["cv_file"], False),
}
SUCCESS_STATUS = {"SubmitBatchJob": "202", "SubmitBatch": "202", "SubmitDeepMatch": "202", "CreateApiKey": "201"}
REPLAYABLE = frozenset({"SubmitBatchJob", "SubmitBatch", "SubmitDeepMatch"})
ERRORS = {
    "400": "Invalid input (INVALID_INPUT, INVALID_FILE_CONTENT, INSECURE_WEBHOOK_URL, PRIVATE_WEBHOOK_URL)",
    "401": "Invalid or missing API key (INVALID_API_KEY)",
    "402": "Insufficient credits (INSUFFICIENT_CREDITS)",
    "403": "The key lacks a permission (MISSING_PERMISSION)",
    "404": "Not found (NOT_FOUND)",
    "409": "A concurrent request with the same idempotency key",
    "413": "Payload too large (PAYLOAD_TOO_LARGE)",
    "422": "The idempotency key was used with a different request",
    "429": "Rate limit exceeded (RATE_LIMIT_EXCEEDED); see Retry-After",
    "500": "Internal error (INTERNAL)",
    "502": "The matching pipeline could not be started (STEP_FUNCTIONS_FAILED); retry with the same key",
    "503": "A backend is temporarily unavailable (UNAVAILABLE)",
}
_SCALARS: dict[int, dict[str, Any]] = {
    _FD.TYPE_DOUBLE: {"type": "number"}, _FD.TYPE_FLOAT: {"type": "number"},
    _FD.TYPE_INT32: {"type": "integer", "format": "int32"}, _FD.TYPE_SINT32: {"type": "integer", "format": "int32"},
    _FD.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    _FD.TYPE_UINT32: {"type": "integer", "format": "int32", "minimum": 0},
    _FD.TYPE_FIXED32: {"type": "integer", "format": "int32", "minimum": 0},
    # Proto3 JSON renders 64-bit integers as strings.
    _FD.TYPE_INT64: {"type": "string", "format": "int64"}, _FD.TYPE_UINT64: {"type": "string", "format": "int64"},
    _FD.TYPE_SINT64: {"type": "string", "format": "int64"}, _FD.TYPE_FIXED64: {"type": "string", "format": "int64"},
    _FD.TYPE_SFIXED64: {"type": "string", "format": "int64"},
    _FD.TYPE_BOOL: {"type": "boolean"}, _FD.TYPE_STRING: {"type": "string"},
    _FD.TYPE_BYTES: {"type": "string", "format": "byte"},
}
_WELL_KNOWN: dict[str, dict[str, Any]] = {
    "google.protobuf.Value": {},
    "google.protobuf.Struct": {"type": "object"},
    "google.protobuf.ListValue": {"type": "array"},
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Empty": {"type": "object"},
}


def _schema_name(full_name: str) -> str:
    return full_name.removeprefix(PACKAGE + ".").replace(".", "_")


class _Builder:
    def __init__(self) -> None:
        self.schemas: dict[str, Any] = {}

    def ref(self, msg: descriptor.Descriptor) -> dict[str, Any]:
        if msg.full_name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[msg.full_name])
        name = _schema_name(msg.full_name)
        if name not in self.schemas:
            self.schemas[name] = {}  # placeholder: recursion
            self.schemas[name] = self.message(msg, response=True)
        return {"$ref": f"#/components/schemas/{name}"}

    def field(self, f: descriptor.FieldDescriptor) -> dict[str, Any]:
        msg, enum = f.message_type, f.enum_type
        if msg is not None and msg.GetOptions().map_entry:
            return {"type": "object", "additionalProperties": self.field(msg.fields_by_name["value"])}
        if msg is not None:
            item = self.ref(msg)
        elif enum is not None:
            item = {"type": "string", "enum": [v.name for v in enum.values]}
        else:
            item = dict(_SCALARS[f.type])
        if f.is_repeated and not (msg is not None and msg.GetOptions().map_entry):
            return {"type": "array", "items": item}
        return item

    def message(self, msg: descriptor.Descriptor, skip: frozenset[str] = frozenset(),
                response: bool = False) -> dict[str, Any]:
        props = {f.name: self.field(f) for f in msg.fields if f.name not in skip}
        schema: dict[str, Any] = {"type": "object", "properties": props}
        if response:
            # The edge prints every primitive, enum and repeated field (always_print_primitive_fields);
            # message fields and proto3 `optional` ones only when set.
            required = [f.name for f in msg.fields if f.name not in skip and f.message_type is None
                        and not f.has_presence]
            required += [f.name for f in msg.fields if f.is_repeated and f.name not in required]
            if required:
                schema["required"] = required
        return schema


def _path_params(path: str) -> list[str]:
    return re.findall(r"{([^}=]+)(?:=[^}]*)?}", path)


def _rule(method: descriptor.MethodDescriptor) -> tuple[str, str, str] | None:
    opts = method.GetOptions()
    if not opts.HasExtension(annotations_pb2.http):
        return None
    rule: http_pb2.HttpRule = opts.Extensions[annotations_pb2.http]
    kind = rule.WhichOneof("pattern")
    if kind is None or kind == "custom":
        return None
    return kind, getattr(rule, kind), rule.body


def build_document() -> dict[str, Any]:
    """The whole OpenAPI document."""
    b = _Builder()
    paths: dict[str, dict[str, Any]] = {}
    file = gateway_service_pb2.DESCRIPTOR
    for service in file.services_by_name.values():
        for method in service.methods:
            rule = _rule(method)
            if rule is None:
                continue
            verb, path, body = rule
            params = _path_params(path)
            op: dict[str, Any] = {
                "operationId": f"{service.name}.{method.name}", "tags": [service.name],
                "summary": _summary(method), "parameters": [],
            }
            for p in params:
                op["parameters"].append({"name": p, "in": "path", "required": True, "schema": {"type": "string"}})
            req = method.input_type
            if method.name in UPLOAD_FORMS:
                fields, required, json_ok = UPLOAD_FORMS[method.name]
                form = {"type": "object", "properties": fields, **({"required": required} if required else {})}
                content: dict[str, Any] = {"multipart/form-data": {"schema": form}}
                if json_ok:
                    content["application/json"] = {"schema": {
                        "type": "object", "properties": {k: v for k, v in fields.items() if not _is_file(v)}}}
                op["requestBody"] = {"required": True, "content": content}
            elif body == "*":
                op["requestBody"] = {"required": True, "content": {"application/json": {
                    "schema": b.message(req, frozenset(params))}}}
            elif verb in ("get", "delete"):
                for f in req.fields:
                    if f.name not in params:
                        op["parameters"].append({"name": f.name, "in": "query", "required": False,
                                                 "schema": b.field(f)})
            if method.output_type.full_name == "google.api.HttpBody":
                out: dict[str, Any] = {"application/json": {"schema": {"type": "object"}}}
            else:
                out = {"application/json": {"schema": b.ref(method.output_type)}}
            ok = SUCCESS_STATUS.get(method.name, "200")
            responses: dict[str, Any] = {ok: {"description": "Success", "content": out,
                                              "headers": _rate_headers()}}
            if method.name in REPLAYABLE:
                responses["200"] = {"description": "Idempotent replay of an earlier submission", "content": out}
            for code, text in ERRORS.items():
                responses[code] = {"description": text, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/ErrorResponse"}}}}
            op["responses"] = responses
            if service.name != "MetaService":
                op["security"] = [{"ApiKeyHeader": []}, {"BearerAuth": []}]
            if not op["parameters"]:
                del op["parameters"]
            paths.setdefault(path, {})[verb] = op
    b.schemas["ErrorResponse"] = {
        "type": "object", "required": ["error", "detail"],
        "properties": {
            "error": {"type": "object", "required": ["code", "message"], "properties": {
                "code": {"type": "string"}, "message": {"type": "string"},
                "details": {"type": "object", "properties": {
                    "fields": {"type": "object", "additionalProperties": {"type": "string"}}}}}},
            "detail": {"type": "string", "description": "The message again (CV Matching API clients read this)"},
            # null only when Envoy refuses a request before it has an id (a malformed header).
            "request_id": {"type": ["string", "null"]},
            "success": {"type": "boolean", "description": "Always false (SkillSync clients read this)"},
            "meta": {"type": "object", "properties": {"timestamp": {"type": "string", "format": "date-time"},
                                                      "request_id": {"type": ["string", "null"]}}},
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "cvmatch public API", "version": "1.0.0",
                 "description": "CV-to-job matching: SkillMatchIQ batches, the CV Matching API, CVDeepMatch and "
                                "SkillSync's account surface. Generated from the cvmatch.api.gateway.v1 protos."},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(b.schemas.items())),
            "securitySchemes": {
                "ApiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "BearerAuth": {"type": "http", "scheme": "bearer"},
            },
        },
    }


def _is_file(schema: dict[str, Any]) -> bool:
    return schema.get("format") == "binary" or schema.get("items", {}).get("format") == "binary"


def _summary(method: descriptor.MethodDescriptor) -> str:
    # Leading comments are not in the runtime descriptor; the method name is a stable summary.
    return re.sub(r"(?<!^)(?=[A-Z])", " ", method.name)


def _rate_headers() -> dict[str, Any]:
    return {h: {"schema": {"type": "integer"}} for h in ("X-RateLimit-Limit", "X-RateLimit-Remaining",
                                                         "X-RateLimit-Reset")}


class MetaService(gateway_service_pb2_grpc.MetaServiceServicer):
    """Serves the document (built once: the protos do not change while the process runs)."""

    def __init__(self) -> None:
        self._body = json.dumps(build_document(), separators=(",", ":")).encode()

    async def GetOpenApi(self, request: gw.GetOpenApiRequest, context: Context) -> httpbody_pb2.HttpBody:
        return httpbody_pb2.HttpBody(content_type="application/json", data=self._body)
