"""gRPC surface of the matcher service: proto <-> domain only."""

from __future__ import annotations

from cvmatch.api.matcher.v1 import matcher_service_pb2_grpc


class MatcherService(matcher_service_pb2_grpc.MatcherServiceServicer):
    """RPCs not yet implemented answer UNIMPLEMENTED (the generated default)."""
