"""gRPC surface of the ingest service: proto <-> domain only."""

from __future__ import annotations

from cvmatch.api.ingest.v1 import ingest_service_pb2_grpc


class IngestService(ingest_service_pb2_grpc.IngestServiceServicer):
    """RPCs not yet implemented answer UNIMPLEMENTED (the generated default)."""
