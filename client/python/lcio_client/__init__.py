"""Python client of the lcio decision service (gRPC lcio.v1.Offloader).

    from lcio_client import Client
    with Client("127.0.0.1:50051") as client:
        views = client.get_policy().view_names
        chat = client.conversation("c1", latency_budget_s=30, money_budget_usd=0.05)
        decision = chat.decide("Which jacket fits a rainy day?", {v: 0.2 for v in views})
        chat.report("the grey one", score=1.5, latency_s=1.9, cost_usd=0.004)

The generated messages are importable as lcio.v1.offloader_pb2 (`pb` here).
"""

from lcio.v1 import offloader_pb2 as pb

from .client import Client, Conversation
from .errors import (DeadlineExceeded, FailedPrecondition, InvalidArgument, LcioError,
                     PermissionDenied, ResourceExhausted, Unavailable)

__all__ = [
    "Client", "Conversation", "pb", "LcioError", "InvalidArgument", "FailedPrecondition",
    "PermissionDenied", "ResourceExhausted", "Unavailable", "DeadlineExceeded",
]
