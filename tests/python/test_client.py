"""The Python client against a real lcio-server (the embedded default policy)."""

import os
import tempfile
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
            chat.report("an answer", score=700, latency_s=1.0, cost_usd=0.001)

    def test_an_unreachable_server_is_a_typed_unavailable(self):
        with lcio_client.Client("127.0.0.1:1", timeout_s=2, attempts=2) as nowhere:
            with self.assertRaises(lcio_client.Unavailable):
                nowhere.get_policy()

    def test_bad_budgets_are_refused_before_any_call(self):
        with self.assertRaises(ValueError):
            self.client.conversation("py-nan", float("nan"), 0.05)
        with self.assertRaises(ValueError):
            self.client.conversation("py-neg", 30, -1)


class ReportTest(unittest.TestCase):
    def test_reported_costs_are_taken_off_the_budgets_and_recorded(self):
        with tempfile.TemporaryDirectory() as work:
            log = os.path.join(work, "reports.log")
            server = Server(f"--report_log={log}")
            try:
                with lcio_client.Client(server.target, timeout_s=10) as client:
                    views = list(client.get_policy().view_names)
                    chat = client.conversation("py-report", 30, 0.05)
                    chat.decide("What is this?", {v: 0.4 for v in views})
                    recorded = chat.report("a lamp", score=800, latency_s=2.5, cost_usd=0.01)
                    self.assertGreaterEqual(recorded.record, 1)
                    # The measured costs, not the expected ones, come off.
                    self.assertAlmostEqual(chat.latency_left_s, 27.5)
                    self.assertAlmostEqual(chat.money_left_usd, 0.04)
                    with self.assertRaises(lcio_client.LcioError):
                        chat.report("twice", score=1, latency_s=0, cost_usd=0)  # none pending
                    second = chat.decide("And this?", {v: 0.4 for v in views})
                    self.assertLessEqual(second.budget_after.latency_s, 27.5)
            finally:
                server.stop()
            with open(log, "rb") as f:
                self.assertEqual(len(f.read().splitlines()), 1)


if __name__ == "__main__":
    unittest.main()
