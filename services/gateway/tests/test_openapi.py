"""The OpenAPI document, built from the protos without a server: valid, and complete for uploads."""

from __future__ import annotations

from google.api import annotations_pb2
from openapi_spec_validator import validate

from cvmatch.api.gateway.v1 import gateway_service_pb2
from cvmatch.gateway.openapi import UPLOAD_FORMS, build_document


def test_document_is_valid_openapi_3_1() -> None:
    doc = build_document()
    validate(doc)
    assert doc["openapi"].startswith("3.1")


def test_every_streaming_upload_has_a_described_form() -> None:
    # A new `stream google.api.HttpBody` method without a form description would document nothing.
    doc = build_document()
    for service in gateway_service_pb2.DESCRIPTOR.services_by_name.values():
        for method in service.methods:
            if method.client_streaming:
                assert method.name in UPLOAD_FORMS, method.full_name
                rule = method.GetOptions().Extensions[annotations_pb2.http]
                op = doc["paths"][rule.post]["post"]
                assert "multipart/form-data" in op["requestBody"]["content"]


def test_response_schemas_require_what_the_edge_always_prints() -> None:
    schemas = build_document()["components"]["schemas"]
    assert {"batch_job_id", "status", "total_candidates", "processed_candidates"} <= set(
        schemas["BatchJob"]["required"])
    assert "processed_items" in schemas["GetBatchJobResultsResponse"]["required"]
    # proto3 `optional` and message fields are printed only when set.
    assert "summary_stats" not in schemas["GetBatchJobResultsResponse"]["required"]
