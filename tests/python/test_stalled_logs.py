"""A log collector that stops reading (a full stderr pipe) cost every caller:
gRPC threads refusing a request wrote the refusal to stderr themselves and
blocked there, and a few bad requests froze every Decide. Log lines now go
through a bounded queue and a writer thread; what does not fit is dropped and
counted."""

import fcntl
import os
import time
import unittest
import urllib.request

import grpc

from lcio.v1 import offloader_pb2 as pb
from lcio.v1 import offloader_pb2_grpc as pb_grpc
from lcio_test_server import Server


def fill_pipe(fd):
    """Writes to the pipe until it is full."""
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_NONBLOCK)
    try:
        while True:
            os.write(fd, b"x" * 4096)
    except BlockingIOError:
        pass
    fcntl.fcntl(fd, fcntl.F_SETFL, flags)


class StalledStderrTest(unittest.TestCase):
    def test_a_full_stderr_pipe_stalls_no_decide_nor_the_exit(self):
        read_end, write_end = os.pipe()
        # Up to 4 MiB of lines queue inside the server; a small pipe and many
        # refusals would take long to pass that, so the test fills the pipe
        # before the server writes to it and checks that callers never wait.
        fill_pipe(write_end)
        server = Server("--metrics_listen=127.0.0.1:0", stderr=write_end)
        os.close(write_end)
        channel = grpc.insecure_channel(server.target)
        try:
            stub = pb_grpc.OffloaderStub(channel)
            views = list(stub.GetPolicy(pb.GetPolicyRequest(), timeout=10).view_names)

            def request(conversation):
                r = pb.DecideRequest(conversation_id=conversation, turn_index=0,
                                     prompt="What is on the table?")
                for name in views:
                    r.views.add(name=name, association=0.3)
                r.budget.latency_s = 30
                r.budget.money_usd = 0.05
                return r

            for i in range(40):  # each refusal writes a log line
                with self.assertRaises(grpc.RpcError) as refused:
                    stub.Decide(request(f"bad id {i}"), timeout=5)
                self.assertEqual(refused.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
            for i in range(5):
                response = stub.Decide(request(f"good-{i}"), timeout=5)
                self.assertTrue(response.decision_id)
            metrics = urllib.request.urlopen(
                f"http://127.0.0.1:{server.metrics_port}/metrics", timeout=10).read().decode()
            self.assertIn("lcio_log_lines_dropped_total", metrics)
            # SIGTERM: the exit does not wait for a stderr that never drains.
            started = time.monotonic()
            server.process.terminate()
            server.process.wait(timeout=30)
            self.assertEqual(server.process.returncode, 0)
            self.assertLess(time.monotonic() - started, 20)
        finally:
            channel.close()
            server.stop()
            os.close(read_end)

    def test_lines_past_the_queue_are_dropped_and_then_reported(self):
        read_end, write_end = os.pipe()
        fill_pipe(write_end)
        # --log_level=debug: every Decide writes a line; a small queue fills.
        server = Server("--metrics_listen=127.0.0.1:0", "--log_level=debug",
                        stderr=write_end)
        os.close(write_end)
        channel = grpc.insecure_channel(server.target)
        try:
            stub = pb_grpc.OffloaderStub(channel)
            views = list(stub.GetPolicy(pb.GetPolicyRequest(), timeout=10).view_names)
            for i in range(20000):
                r = pb.DecideRequest(conversation_id=f"c{i}", turn_index=0, prompt="Hello?")
                for name in views:
                    r.views.add(name=name, association=0.3)
                r.budget.latency_s = 30
                r.budget.money_usd = 0.05
                stub.Decide(r, timeout=5)
                if i % 1000 == 999:
                    dropped = self.dropped(server)
                    if dropped > 0:
                        break
            deadline = time.monotonic() + 5
            while self.dropped(server) == 0 and time.monotonic() < deadline:
                time.sleep(0.2)  # the counter follows every 0.5 s
            self.assertGreater(self.dropped(server), 0)
            # Drain the pipe: the writer reports what it dropped.
            seen = b""
            os.set_blocking(read_end, False)
            deadline = time.monotonic() + 20
            while b"log_lines_dropped" not in seen and time.monotonic() < deadline:
                try:
                    chunk = os.read(read_end, 1 << 20)
                    seen = (seen + chunk)[-(1 << 20):]
                except BlockingIOError:
                    time.sleep(0.05)
            self.assertIn(b'"event":"log_lines_dropped"', seen)
        finally:
            channel.close()
            server.stop()
            os.close(read_end)

    @staticmethod
    def dropped(server):
        metrics = urllib.request.urlopen(
            f"http://127.0.0.1:{server.metrics_port}/metrics", timeout=10).read().decode()
        for line in metrics.splitlines():
            if line.startswith("lcio_log_lines_dropped_total"):
                return float(line.split()[-1])
        return 0.0


if __name__ == "__main__":
    unittest.main()
