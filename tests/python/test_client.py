"""The Python client against a real lcio-server (the embedded default policy)."""

import json
import os
import socket
import tempfile
import time
import unittest

import grpc

import lcio_client
from lcio_client import pb
from lcio_test_server import Server


class ClientTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server()
        cls.client = lcio_client.Client(cls.server.target, timeout_s=10)
        cls.views = list(cls.client.get_policy().view_names)

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        cls.server.stop()

    def association(self, value=0.3):
        return {v: value for v in self.views}

    def test_policy_names_views_tasks_and_actions(self):
        info = self.client.get_policy()
        self.assertEqual(len(info.view_names), 3)
        self.assertGreater(len(info.tasks), 0)
        self.assertEqual(len(info.actions), 2 ** len(info.view_names) + 1)

    def test_a_conversation_numbers_turns_and_carries_its_budgets(self):
        chat = self.client.conversation("py-budgets", latency_budget_s=30, money_budget_usd=0.05)
        first = chat.decide("What is on the table?", self.association())
        self.assertEqual(chat.turn_index, 1)
        # Unreported: the next turn starts from the server's budget_after.
        second = chat.decide("And under it?", self.association(0.6))
        self.assertAlmostEqual(chat.history[0].action, first.action)
        self.assertEqual(len(chat.history), 2)
        self.assertLessEqual(second.budget_after.latency_s, first.budget_after.latency_s)
        self.assertAlmostEqual(chat.latency_left_s, first.budget_after.latency_s)
        third = chat.decide("Anything else?", self.association(0.1))
        self.assertAlmostEqual(chat.money_left_usd, second.budget_after.money_usd)
        self.assertTrue(third.decision_id)

    def test_a_turn_out_of_order_is_a_typed_failed_precondition(self):
        chat = self.client.conversation("py-order", 30, 0.05)
        chat.decide("first", self.association())
        chat.turn_index = 5  # what a device losing track of its turns would send
        with self.assertRaises(lcio_client.FailedPrecondition) as caught:
            chat.decide("sixth", self.association())
        self.assertEqual(caught.exception.code, grpc.StatusCode.FAILED_PRECONDITION)

    def test_a_bad_field_is_a_typed_invalid_argument_naming_it(self):
        chat = self.client.conversation("py-bad", 30, 0.05)
        with self.assertRaises(lcio_client.InvalidArgument) as caught:
            chat.decide("bad association", self.association(1.5))
        self.assertIn("association", caught.exception.details)
        # Nothing was decided: the conversation still expects turn 0.
        self.assertEqual(chat.turn_index, 0)
        chat.decide("good association", self.association(0.5))

    def test_a_stateless_conversation_sends_its_history(self):
        chat = self.client.conversation("py-stateless", 30, 0.05, stateless=True)
        for turn in range(4):
            decision = chat.decide(f"turn {turn}", self.association(0.2 * turn))
            self.assertTrue(decision.decision_id)
        self.assertEqual(len(chat.history), 4)

    def test_report_without_a_report_log_is_a_typed_failed_precondition(self):
        chat = self.client.conversation("py-noreport", 30, 0.05)
        chat.decide("a turn", self.association())
        with self.assertRaises(lcio_client.FailedPrecondition):
            chat.report("an answer", score=1.0, latency_s=20.0, cost_usd=0.001)
        # The turn ran and cost what report() was told, recorded or not (the
        # next turn was sent the server's expected remainder, 23.5 s).
        self.assertAlmostEqual(chat.latency_left_s, 10.0)
        chat.decide("the next turn", self.association())
        self.assertAlmostEqual(chat.latency_left_s, 10.0)
        self.assertAlmostEqual(chat.money_left_usd, 0.049)

    def test_a_retry_with_the_views_in_another_order_is_the_same_turn(self):
        class LosesTheFirstAnswer:
            def __init__(self, client):
                self.client, self.lose = client, 1

            def decide(self, request):
                decision = self.client.decide(request)
                if self.lose:
                    self.lose -= 1
                    raise lcio_client.DeadlineExceeded(grpc.StatusCode.DEADLINE_EXCEEDED, "lost")
                return decision

        chat = lcio_client.Conversation(LosesTheFirstAnswer(self.client), "py-reorder", 30, 0.05)
        association = {v: 0.1 + 0.2 * i for i, v in enumerate(self.views)}
        with self.assertRaises(lcio_client.DeadlineExceeded):
            chat.decide("first", association)
        # An equal dict in another order: the stored answer, not a second turn.
        reordered = dict(reversed(list(association.items())))
        first = chat.decide("first", reordered)
        self.assertIn("/0/", first.decision_id)
        self.assertEqual((chat.turn_index, chat.recovered), (1, []))
        # The client sends the views in name order (the server's idempotency
        # also takes any order: request_test covers that side).
        sent = chat._request("x", reordered, "", False)
        self.assertEqual([v.name for v in sent.views], sorted(self.views))

    def test_tls_options_without_root_certificates_are_refused(self):
        for options in ({"certificate_chain": b"x", "private_key": b"y"},
                        {"server_name": "lcio.example"}):
            with self.assertRaises(ValueError) as caught:
                lcio_client.Client(self.server.target, **options)
            self.assertIn("need root_certificates", str(caught.exception))
        with self.assertRaises(ValueError):
            lcio_client.Client(self.server.target, total_timeout_s=0)

    def test_the_total_timeout_bounds_a_call_to_a_peer_that_never_answers(self):
        with socket.socket() as silent:
            silent.bind(("127.0.0.1", 0))
            silent.listen(16)
            target = f"127.0.0.1:{silent.getsockname()[1]}"
            with lcio_client.Client(target, timeout_s=2, attempts=3,
                                    total_timeout_s=0.8) as client:
                start = time.monotonic()
                with self.assertRaises(lcio_client.DeadlineExceeded):
                    client.get_policy()
                self.assertLess(time.monotonic() - start, 1.6)  # not 3 x 2 s

    def test_a_budget_run_out_is_carried_on_as_zero(self):
        # budget_after is negative when nothing fits (e.g. -7.9e-09 USD); a
        # Decide budget below 0 is INVALID_ARGUMENT.
        chat = self.client.conversation("py-overspent", latency_budget_s=0.5, money_budget_usd=0)
        first = chat.decide("What is on the table?", self.association(), task="Query")
        self.assertTrue(first.budget_after.latency_s < 0 or first.budget_after.money_usd < 0,
                        first.budget_after)
        second = chat.decide("Is the stove on?", self.association(), task="Query")
        self.assertEqual(chat.money_left_usd, max(0.0, first.budget_after.money_usd))
        self.assertGreaterEqual(chat.latency_left_s, 0.0)
        self.assertTrue(second.decision_id)

    def test_a_lost_answer_does_not_wedge_the_conversation(self):
        class LosesAnswers:
            """The client, but the next `lose` Decide answers are lost after the
            server decided (what a deadline passing in transit does)."""

            def __init__(self, client):
                self.client, self.lose, self.send_first = client, 0, True

            def decide(self, request):
                if self.lose and not self.send_first:
                    self.lose -= 1
                    raise lcio_client.Unavailable(grpc.StatusCode.UNAVAILABLE, "not sent")
                decision = self.client.decide(request)
                if self.lose:
                    self.lose -= 1
                    raise lcio_client.DeadlineExceeded(grpc.StatusCode.DEADLINE_EXCEEDED, "lost")
                return decision

            def get_policy(self):
                return self.client.get_policy()

        for stateless in (False, True):
            lossy = LosesAnswers(self.client)
            chat = lcio_client.Conversation(lossy, f"py-lost-{stateless}", 30, 0.05,
                                            stateless=stateless)
            chat.decide("first", self.association())
            lossy.lose = 1
            with self.assertRaises(lcio_client.DeadlineExceeded):
                chat.decide("second", self.association())
            self.assertEqual(chat.turn_index, 1)
            # Another prompt. Stored history: the server holds turn 1 with
            # "second"; the conversation takes that stored answer and decides
            # this as turn 2. Stateless (history carried): the server decides
            # this as turn 1 in place of the lost one.
            third = chat.decide("third", self.association(0.6))
            recovered = 0 if stateless else 1
            self.assertEqual(len(chat.recovered), recovered)
            self.assertEqual(chat.turn_index, 2 + recovered)
            self.assertEqual(len(chat.history), 2 + recovered)
            if not stateless:
                self.assertIn("/1/", chat.recovered[0].decision_id)
            self.assertIn(f"/{1 + recovered}/", third.decision_id)
            # A call that never reached the server: the next prompt is that turn.
            lossy.lose, lossy.send_first = 1, False
            with self.assertRaises(lcio_client.Unavailable):
                chat.decide("fourth", self.association())
            fifth = chat.decide("fifth", self.association())
            self.assertIn(f"/{2 + recovered}/", fifth.decision_id)
            self.assertEqual((chat.turn_index, len(chat.recovered)), (3 + recovered, recovered))
            if stateless:
                continue
            # Lost after the server decided, then a call of the same turn that
            # never reached it: the first is the one the server holds, and the
            # second must not make the client forget it.
            lossy.lose, lossy.send_first = 1, True
            with self.assertRaises(lcio_client.DeadlineExceeded):
                chat.decide("sixth", self.association())
            lossy.lose, lossy.send_first = 1, False
            with self.assertRaises(lcio_client.Unavailable):
                chat.decide("seventh", self.association())
            eighth = chat.decide("eighth", self.association())
            self.assertEqual(len(chat.recovered), 2)
            self.assertIn("/4/", chat.recovered[-1].decision_id)
            self.assertIn("/5/", eighth.decision_id)

    def test_an_unreachable_server_is_a_typed_unavailable(self):
        with lcio_client.Client("127.0.0.1:1", timeout_s=2, attempts=2) as nowhere:
            with self.assertRaises(lcio_client.Unavailable):
                nowhere.get_policy()

    def test_timeouts_must_be_finite(self):
        # grpcio fails every call at once under an infinite deadline.
        for bad in (float("inf"), float("nan"), 0, -1, "5", True, 10**400):
            with self.assertRaises(ValueError, msg=bad):
                lcio_client.Client(self.server.target, timeout_s=bad)
            with self.assertRaises(ValueError, msg=bad):
                lcio_client.Client(self.server.target, total_timeout_s=bad)

    def test_a_size_limit_is_not_retried_as_load(self):
        class Refusal:
            def __init__(self, code, details):
                self._code, self._details = code, details

            def code(self):
                return self._code

            def details(self):
                return self._details

        retryable = lcio_client.client._retryable
        exhausted = grpc.StatusCode.RESOURCE_EXHAUSTED
        self.assertTrue(retryable(Refusal(exhausted, "max_inflight 64 reached")))
        self.assertFalse(retryable(Refusal(exhausted, "Received message larger than max")))
        self.assertFalse(retryable(Refusal(
            exhausted, "received initial metadata size exceeds limit (20000 vs. 8192)")))
        self.assertFalse(retryable(Refusal(  # newer gRPC's wording
            exhausted, "received metadata size exceeds hard limit (20000 vs. 16384)")))
        self.assertFalse(retryable(Refusal(grpc.StatusCode.INVALID_ARGUMENT, "bad")))

    def test_bad_budgets_are_refused_before_any_call(self):
        with self.assertRaises(ValueError):
            self.client.conversation("py-nan", float("nan"), 0.05)
        with self.assertRaises(ValueError):
            self.client.conversation("py-neg", 30, -1)


class RestartTest(unittest.TestCase):
    def test_a_new_client_reaches_a_server_restarted_on_the_same_port(self):
        server = Server()
        port = server.port
        old = lcio_client.Client(server.target, timeout_s=2, attempts=3)
        try:
            old.get_policy()
            server.stop()
            # Failed reconnects put the old channel's connection into gRPC's
            # reconnect backoff (1 s, then 1.6 s, ...).
            down = time.monotonic()
            while time.monotonic() - down < 1.2:
                with self.assertRaises(lcio_client.Unavailable):
                    old.get_policy()
                time.sleep(0.3)
            server = Server(port=port)
            # A new Client has connections of its own (no inherited backoff).
            with lcio_client.Client(server.target, timeout_s=2, attempts=3) as new:
                self.assertGreater(len(new.get_policy().view_names), 0)
            # The old one reaches it too: a retry after UNAVAILABLE waits for
            # its channel to reconnect (the backoff is capped at 1 s).
            self.assertGreater(len(old.get_policy().view_names), 0)
        finally:
            old.close()
            server.stop()


class ReportTest(unittest.TestCase):
    """A server with a Report log, and a client of it."""

    def setUp(self):
        self.work = tempfile.TemporaryDirectory()
        self.log = os.path.join(self.work.name, "reports.log")
        self.server = Server(f"--report_log={self.log}")
        self.client = lcio_client.Client(self.server.target, timeout_s=10)
        self.views = list(self.client.get_policy().view_names)

    def tearDown(self):
        self.client.close()
        self.server.stop()
        self.work.cleanup()

    def logged_lines(self):
        """The Report log's lines, once the server has stopped."""
        self.client.close()
        self.server.stop()
        with open(self.log, "rb") as f:
            return f.read().splitlines()

    def test_reported_costs_are_taken_off_the_budgets_and_recorded(self):
        chat = self.client.conversation("py-report", 30, 0.05)
        chat.decide("What is this?", {v: 0.4 for v in self.views})
        recorded = chat.report("a lamp", score=1.5, latency_s=2.5, cost_usd=0.01)
        self.assertGreaterEqual(recorded.record, 1)
        # The measured costs, not the expected ones, come off.
        self.assertAlmostEqual(chat.latency_left_s, 27.5)
        self.assertAlmostEqual(chat.money_left_usd, 0.04)
        with self.assertRaises(lcio_client.FailedPrecondition):
            chat.report("twice", score=1, latency_s=0, cost_usd=0)  # none pending
        second = chat.decide("And this?", {v: 0.4 for v in self.views})
        self.assertLessEqual(second.budget_after.latency_s, 27.5)
        self.assertEqual(len(self.logged_lines()), 1)

    def test_a_bad_cost_is_refused_before_the_budgets_change(self):
        chat = self.client.conversation("py-report-bad", 30, 0.05)
        chat.decide("What is this?", {v: 0.4 for v in self.views})
        for latency_s, cost_usd in ((-100, 0.01), (2.5, -5), (float("nan"), 0.01),
                                    (2.5, float("inf")), ("2.5", 0.01), (None, 0.01)):
            with self.assertRaises(ValueError, msg=(latency_s, cost_usd)):
                chat.report("a lamp", score=1.5, latency_s=latency_s, cost_usd=cost_usd)
            self.assertEqual((chat.latency_left_s, chat.money_left_usd), (30, 0.05))
        # The turn is still pending: a good report goes through.
        chat.report("a lamp", score=1.5, latency_s=2.5, cost_usd=0.01)
        self.assertAlmostEqual(chat.latency_left_s, 27.5)
        self.assertEqual(len(self.logged_lines()), 1)

    def test_association_is_reported_in_the_policy_view_order(self):
        views = self.views
        chat = self.client.conversation("py-report-order", 30, 0.05)
        association = {v: 0.1 + 0.2 * i for i, v in reversed(list(enumerate(views)))}
        self.assertNotEqual(list(association), views)
        chat.decide("What is this?", association)
        chat.report("a lamp", score=1.5, latency_s=2.5, cost_usd=0.01)
        record = json.loads(self.logged_lines()[0].split(b" ", 1)[1])
        self.assertEqual(record["view_names"], views)
        for reported, expected in zip(record["association"], [association[v] for v in views]):
            self.assertAlmostEqual(reported, expected)


if __name__ == "__main__":
    unittest.main()
