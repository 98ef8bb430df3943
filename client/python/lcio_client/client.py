"""Client of lcio.v1.Offloader with per-attempt deadlines and retries, and a
Conversation helper that carries budgets, turn indices and history."""

import math
import random
import time

import grpc

from lcio.v1 import offloader_pb2 as pb
from lcio.v1 import offloader_pb2_grpc as pb_grpc

from .errors import (FailedPrecondition, InvalidArgument, LcioError, PermissionDenied,
                     from_rpc_error)

# The codes worth another attempt; Decide is idempotent per (conversation,
# turn), so repeating it is safe (proto/lcio/v1/offloader.proto).
_RETRIED = (
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.DEADLINE_EXCEEDED,
)

# gRPC's reconnect backoff grows to this at most (its default, 120 s, would
# leave a restarted server unreached for minutes); as lcio::Client.
MAX_RECONNECT_BACKOFF_S = 1.0


def _number_in(value, low, high, low_open=False):
    """Whether value reads as a number x with low <= x < high (low < x when
    low_open); NaN never does, nor text or a bool."""
    if isinstance(value, (str, bytes, bool)):
        return False
    try:
        x = float(value)
    except (TypeError, ValueError, OverflowError):
        return False
    return (low < x if low_open else low <= x) and x < high


def _retryable(error):
    if error.code() not in _RETRIED:
        return False
    # gRPC's own "Received/Sent message larger than max" and "received
    # (initial/trailing) metadata size exceeds (hard/soft) limit" (a long
    # status message; the wording varies by gRPC version): as large next time.
    details = error.details() or ""
    return not (error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                and ("larger than max" in details or "metadata size exceeds" in details))


class Client:
    """One channel to an lcio-server.

    target: "host:port". root_certificates (PEM bytes) turns on TLS;
    certificate_chain and private_key (PEM bytes) on mutual TLS.
    timeout_s is per attempt; attempts bounds the retries of Decide and
    GetPolicy (Report is an append and is tried once); total_timeout_s
    (None: no bound but the attempts') bounds a whole call, retries and their
    waits included. After UNAVAILABLE a retry first waits for the channel to
    connect, at most one reconnect backoff (MAX_RECONNECT_BACKOFF_S and
    gRPC's 20% jitter): a server restarted on its port is reached once it is
    back, and one that is down fails the call in about 2.5 s.
    load_balancing_policy: gRPC's policy over the addresses the target
    resolves to ("dns:///lcio.svc:50051", "ipv4:10.0.0.1:50051,10.0.0.2:50051");
    round_robin (the default, as lcio::Client) spreads calls over every
    server; None or "" leaves gRPC's own default, pick_first (all to one).
    The channel keeps its connections to itself (grpc.use_local_subchannel_pool,
    as lcio::Client): from gRPC's process-wide pool a new Client would inherit
    the reconnect backoff of another channel's dead connection to the same
    address and fail at once after a server restart on the same port."""

    def __init__(self, target, timeout_s=5.0, attempts=3, root_certificates=None,
                 certificate_chain=None, private_key=None, server_name=None,
                 load_balancing_policy="round_robin", total_timeout_s=None):
        if attempts < 1:
            raise ValueError(f"attempts = {attempts}: must be >= 1")
        # Finite: grpcio fails every call at once under an infinite deadline.
        if not _number_in(timeout_s, 0, math.inf, low_open=True):
            raise ValueError(f"timeout_s = {timeout_s}: must be a finite number > 0")
        if total_timeout_s is not None and not _number_in(total_timeout_s, 0, math.inf,
                                                          low_open=True):
            raise ValueError(f"total_timeout_s = {total_timeout_s}: must be a finite number > 0 "
                             "(or None)")
        if root_certificates is None and (certificate_chain is not None or private_key is not None
                                          or server_name):
            # Without it the channel would be plaintext (as lcio::Client refuses).
            raise ValueError("certificate_chain, private_key and server_name need "
                             "root_certificates: without it the channel is plaintext")
        self.target = target
        self.timeout_s = timeout_s
        self.attempts = attempts
        self.total_timeout_s = total_timeout_s
        options = [("grpc.use_local_subchannel_pool", 1),
                   ("grpc.max_reconnect_backoff_ms", int(MAX_RECONNECT_BACKOFF_S * 1000))]
        if load_balancing_policy:
            options.append(("grpc.lb_policy_name", load_balancing_policy))
        if root_certificates is not None:
            credentials = grpc.ssl_channel_credentials(root_certificates, private_key,
                                                       certificate_chain)
            if server_name:
                options.append(("grpc.ssl_target_name_override", server_name))
            self._channel = grpc.secure_channel(target, credentials, options=options)
        else:
            self._channel = grpc.insecure_channel(target, options=options)
        self._stub = pb_grpc.OffloaderStub(self._channel)

    def close(self):
        self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _call(self, method, request, retried=True):
        backoff_s = 0.02
        attempts = self.attempts if retried else 1
        end = None if self.total_timeout_s is None else time.monotonic() + self.total_timeout_s
        left = lambda: float("inf") if end is None else end - time.monotonic()  # noqa: E731
        for attempt in range(attempts):
            try:
                return method(request, timeout=min(self.timeout_s, left()))
            except grpc.RpcError as error:
                if attempt + 1 >= attempts or not _retryable(error):
                    raise from_rpc_error(error) from None
                last = error
            time.sleep(max(0.0, min(backoff_s * random.uniform(0.5, 1.5), left())))  # jitter
            backoff_s = min(backoff_s * 2, 1.0)
            if last.code() == grpc.StatusCode.UNAVAILABLE:
                # Not connected: wait for the channel (bounded), rather than
                # fail the next attempt at once.
                wait_s = min(self.timeout_s, 1.25 * MAX_RECONNECT_BACKOFF_S, left())
                if wait_s > 0:
                    ready = grpc.channel_ready_future(self._channel)
                    try:
                        ready.result(timeout=wait_s)
                    except grpc.FutureTimeoutError:
                        ready.cancel()  # else it stays subscribed to the channel
            if left() <= 0:
                raise from_rpc_error(last) from None
        raise AssertionError("unreachable")

    def get_policy(self):
        """PolicyInfo: views, tasks, actions, profiles of the serving policy."""
        return self._call(self._stub.GetPolicy, pb.GetPolicyRequest())

    def decide(self, request):
        """DecideResponse for a DecideRequest (retried, idempotent)."""
        return self._call(self._stub.Decide, request)

    def report(self, request):
        """ReportResponse for a ReportRequest (not retried)."""
        return self._call(self._stub.Report, request, retried=False)

    def conversation(self, conversation_id, latency_budget_s, money_budget_usd, **kwargs):
        """A Conversation on this client; see Conversation."""
        return Conversation(self, conversation_id, latency_budget_s, money_budget_usd, **kwargs)


# Earlier turns the server reads of a carried history (server/include/lcio/server/request.h,
# kHistoryTurnsRead): the policy's window and, for the validated fallback's
# conversation budget, the turns before it.
HISTORY_TURNS_READ = 64


class Conversation:
    """One conversation's turns: numbers them, sends what is left of its
    latency and money budgets, and keeps its history.

    What a turn cost is what report() was told (the measured cost) or, for a
    turn not reported, the server's expected cost (budget_after, at least 0).
    With stateless=True every Decide carries the history (the last
    max(PolicyInfo.history_window, HISTORY_TURNS_READ) turns), for fleets
    without shared state.

    A Decide that failed without a definite answer (DEADLINE_EXCEEDED,
    UNAVAILABLE, ...) may still have been decided by the server. Its request
    is kept as in doubt: when the next decide() is refused FAILED_PRECONDITION
    (the server holds that turn), the kept request is sent again, the server
    answers it from its store (same decision_id), the turn is added to the
    history (`recovered` holds that decision; its LLM never ran, so the
    budgets are not charged for it) and the new prompt is decided as the
    following turn. Repeating the failed decide() with the same arguments
    instead gets the stored answer directly."""

    def __init__(self, client, conversation_id, latency_budget_s, money_budget_usd,
                 device="", network="", stateless=False):
        for name, value in (("latency_budget_s", latency_budget_s),
                            ("money_budget_usd", money_budget_usd)):
            if not (isinstance(value, (int, float)) and value >= 0 and value != float("inf")):
                raise ValueError(f"{name} = {value!r}: must be a finite number >= 0")
        self.client = client
        self.conversation_id = conversation_id
        self.latency_left_s = float(latency_budget_s)
        self.money_left_usd = float(money_budget_usd)
        self.device = device
        self.network = network
        self.stateless = stateless
        self.history = []  # HistoryTurn of every decided turn, oldest first
        self.turn_index = 0  # the next turn
        self.recovered = []  # DecideResponse of turns recovered after a lost answer
        self._history_window = None
        self._view_names = None  # PolicyInfo.view_names, read by report()
        self._view_names_version = None  # the policy_version they are of
        self._pending = None  # (request, decision) of the last turn, not yet reported
        self._measured = False  # report() charged the pending turn's measured costs
        # DecideRequests of the next turn whose answers were lost, oldest first:
        # the server may have decided any one of them (at most one).
        self._in_doubt = []

    def _request(self, prompt, association, task, explain):
        request = pb.DecideRequest(conversation_id=self.conversation_id,
                                   turn_index=self.turn_index, prompt=prompt, task=task,
                                   device=self.device, network=self.network, explain=explain)
        # In name order, whatever the dict's: a retry of the same turn must be
        # the same request (the server's idempotency compares them).
        for name, value in sorted(association.items()):
            request.views.add(name=name, association=value)
        request.budget.latency_s = self.latency_left_s
        request.budget.money_usd = self.money_left_usd
        if self.stateless:
            if self._history_window is None:
                self._history_window = self.client.get_policy().history_window
            # The window, and further back as far as the server reads (the
            # validated fallback counts every earlier turn's cost).
            keep = self.history[-max(self._history_window, HISTORY_TURNS_READ):]
            request.history.SetInParent()
            request.history.turns.extend(keep)
        return request

    def _send(self, request):
        try:
            decision = self.client.decide(request)
        except (InvalidArgument, FailedPrecondition, PermissionDenied):
            raise  # refused: the server did not decide this request
        except LcioError:
            # The server may have decided it. Earlier lost requests of the same
            # turn are kept too: which one it decided is not known.
            if self._in_doubt and self._in_doubt[0].turn_index != request.turn_index:
                self._in_doubt = []
            if request not in self._in_doubt:
                self._in_doubt.append(request)
            raise
        self._in_doubt = []
        self.history.append(pb.HistoryTurn(action=decision.action, task=decision.task))
        self.turn_index += 1
        return decision

    def decide(self, prompt, association, task="", explain=False):
        """Decides the next turn. association: {view name: value in [0, 1]}
        with every view of the policy (PolicyInfo.view_names), in any order."""
        self._settle()
        request = self._request(prompt, association, task, explain)
        try:
            decision = self._send(request)
        except FailedPrecondition as refused:
            in_doubt = [r for r in self._in_doubt if r.turn_index == self.turn_index]
            # A turn whose answer was lost may be the one the server holds: take
            # its stored answer, then decide this prompt as the next turn.
            for kept in in_doubt:
                try:
                    self.recovered.append(self._send(kept))
                    break
                except (InvalidArgument, FailedPrecondition, PermissionDenied):
                    continue  # not the request the server decided
            else:
                self._in_doubt = []
                raise refused from None
            request = self._request(prompt, association, task, explain)
            decision = self._send(request)
        self._pending = (request, decision)
        self._measured = False  # report() charges the measured costs
        return decision

    def report(self, answer, score, latency_s, cost_usd):
        """Reports what the last decided turn really cost and how good its
        answer was (score on M4A1's scale: 0 to 9, mostly 0 to 2); the measured
        costs, not the expected ones, are taken off the budgets."""
        if self._pending is None:
            raise FailedPrecondition(grpc.StatusCode.FAILED_PRECONDITION,
                                     "report: no decided turn to report (call decide first)")
        # Checked before anything changes: a refused Report must not leave a
        # negative or NaN cost in the budgets the next decide() sends.
        for name, value in (("latency_s", latency_s), ("cost_usd", cost_usd)):
            if not _number_in(value, 0, math.inf):
                raise ValueError(f"report: {name} = {value}: must be a finite number >= 0")
        request, decision = self._pending
        # ReportRequest.association is in PolicyInfo.view_names order, whatever
        # the order of the dict given to decide().
        by_name = {v.name: v.association for v in request.views}
        # Read again when another policy decided (a reload may reorder the views).
        if (self._view_names is None or self._view_names_version != decision.policy_version
                or set(self._view_names) != set(by_name)):
            info = self.client.get_policy()
            self._view_names = list(info.view_names)
            self._view_names_version = info.policy_version
        if set(self._view_names) != set(by_name):
            raise ValueError(f"report: the decided views {sorted(by_name)} are not the serving "
                             f"policy's views {self._view_names}")
        report = pb.ReportRequest(
            conversation_id=self.conversation_id, turn_index=request.turn_index,
            decision_id=decision.decision_id, prompt=request.prompt, task=decision.task,
            target=decision.target, uploaded_views=[v.name for v in decision.upload],
            association=[by_name[name] for name in self._view_names], answer=answer,
            score=score, interaction_time_s=latency_s, usage_cost_usd=cost_usd)
        # What the turn cost is charged whether or not the Report is recorded:
        # the turn was run either way. A failed report() may be called again.
        self.latency_left_s = max(0.0, request.budget.latency_s - latency_s)
        self.money_left_usd = max(0.0, request.budget.money_usd - cost_usd)
        self._measured = True
        response = self.client.report(report)
        self._pending = None
        return response

    def _settle(self):
        # An unreported turn costs what the server expected. budget_after is
        # negative when nothing fits; a Decide budget must be >= 0.
        if self._pending is not None:
            if not self._measured:  # else report() charged the measured costs
                decision = self._pending[1]
                self.latency_left_s = max(0.0, decision.budget_after.latency_s)
                self.money_left_usd = max(0.0, decision.budget_after.money_usd)
            self._pending = None
