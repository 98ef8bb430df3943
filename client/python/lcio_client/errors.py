"""Typed errors of the lcio decision service: one class per gRPC status the
service documents (proto/lcio/v1/offloader.proto), so callers catch what they
can act on instead of parsing codes."""

import grpc


class LcioError(Exception):
    """A failed call. `code` is the grpc.StatusCode, `details` the server's
    message (it names the field, the value and the rule)."""

    def __init__(self, code, details):
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details


class InvalidArgument(LcioError):
    """A request field breaks a rule; fix the request."""


class FailedPrecondition(LcioError):
    """Not the conversation's next turn (the message names it: go on from
    there, or start a new conversation id), the conversation was forgotten
    (idle or evicted: restart it at turn 0 or send its history), or the
    server keeps no Report log."""


class PermissionDenied(LcioError):
    """Mutual TLS: another client identity started this conversation."""


class ResourceExhausted(LcioError):
    """The server is at its in-flight limit; retried, then raised."""


class Unavailable(LcioError):
    """No policy loaded yet, the server is stopping or unreachable."""


class DeadlineExceeded(LcioError):
    """The call's deadline passed before an answer."""


_BY_CODE = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
}


def from_rpc_error(error):
    """The typed error for a grpc.RpcError."""
    code = error.code()
    return _BY_CODE.get(code, LcioError)(code, error.details() or "")
