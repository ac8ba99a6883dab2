"""gRPC surface of the notifier service: proto <-> domain only."""

from __future__ import annotations

from cvmatch.api.notifier.v1 import notifier_service_pb2_grpc


class NotifierService(notifier_service_pb2_grpc.NotifierServiceServicer):
    """RPCs not yet implemented answer UNIMPLEMENTED (the generated default)."""
