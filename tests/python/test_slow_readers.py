"""A client that never reads its responses (an HTTP/2 receive window of 0)
held about 17 KB of server memory per finished Decide, without limit: a
Decide now counts until its response is delivered, and beyond 4 x
--max_inflight such Decides the next is refused at once."""

import select
import socket
import struct
import tempfile
import time
import unittest

import grpc

from lcio.v1 import offloader_pb2 as pb
from lcio.v1 import offloader_pb2_grpc as pb_grpc
from lcio_test_server import Server

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, SETTINGS, PING = 0, 1, 4, 6
END_STREAM, END_HEADERS, ACK = 0x1, 0x4, 0x1
SETTINGS_INITIAL_WINDOW_SIZE = 4


def frame(kind, flags, stream, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(
        ">I", stream) + payload


def literal(name, value):
    """An HPACK literal header field without indexing, new name (RFC 7541 6.2.2)."""
    name, value = name.encode(), value.encode()
    assert len(name) < 127 and len(value) < 127
    return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value


class NeverReadingConnection:
    """One HTTP/2 connection whose receive window is 0: the server can send
    headers and trailers, never a response message."""

    def __init__(self, port):
        self.socket = socket.create_connection(("127.0.0.1", port))
        self.socket.sendall(PREFACE + frame(SETTINGS, 0, 0,
                                            struct.pack(">HI", SETTINGS_INITIAL_WINDOW_SIZE, 0)))
        self.next_stream = 1
        self.pending = b""

    def call(self, path, message):
        stream = self.next_stream
        self.next_stream += 2
        headers = b"".join(literal(k, v) for k, v in [
            (":method", "POST"), (":scheme", "http"), (":path", path),
            (":authority", "127.0.0.1"), ("content-type", "application/grpc"), ("te", "trailers")])
        body = b"\x00" + struct.pack(">I", len(message)) + message
        self.socket.sendall(frame(HEADERS, END_HEADERS, stream, headers) +
                            frame(DATA, END_STREAM, stream, body))

    def pump(self):
        """Reads what arrived; acknowledges settings and answers pings."""
        while select.select([self.socket], [], [], 0)[0]:
            data = self.socket.recv(65536)
            if not data:
                break
            self.pending += data
        while len(self.pending) >= 9:
            length = int.from_bytes(self.pending[:3], "big")
            kind, flags = self.pending[3], self.pending[4]
            if len(self.pending) < 9 + length:
                break
            payload, self.pending = self.pending[9:9 + length], self.pending[9 + length:]
            if kind == SETTINGS and not flags & ACK:
                self.socket.sendall(frame(SETTINGS, ACK, 0, b""))
            if kind == PING and not flags & ACK:
                self.socket.sendall(frame(PING, ACK, 0, payload))

    def close(self):
        self.socket.close()


class SlowReaderTest(unittest.TestCase):
    def setUp(self):
        self.server = Server("--max_inflight=4")
        self.channel = grpc.insecure_channel(self.server.target)
        self.stub = pb_grpc.OffloaderStub(self.channel)
        self.views = list(self.stub.GetPolicy(pb.GetPolicyRequest(), timeout=10).view_names)

    def tearDown(self):
        self.channel.close()
        self.server.stop()

    def request(self, conversation):
        request = pb.DecideRequest(conversation_id=conversation, turn_index=0,
                                   prompt="What is on the table?")
        for name in self.views:
            request.views.add(name=name, association=0.3)
        request.budget.latency_s = 30
        request.budget.money_usd = 0.05
        return request

    def check_unread_responses_are_bounded(self, path, message, probe):
        """Sends 60 calls whose responses are never read; a probe from
        another connection must then be refused until that connection
        closes."""
        reader = NeverReadingConnection(self.server.port)
        try:
            for _ in range(60):
                reader.call(path, message())
                reader.pump()
                time.sleep(0.01)
            deadline = time.monotonic() + 5
            refused = None
            while time.monotonic() < deadline:  # until the held ones fill the bound
                reader.pump()
                try:
                    probe()
                except grpc.RpcError as error:
                    refused = error
                    break
                time.sleep(0.1)
            self.assertIsNotNone(refused, f"{path} still answered beside 60 undelivered ones")
            self.assertEqual(refused.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
            self.assertIn("not yet delivered", refused.details())
        finally:
            reader.close()
        # Closing the connection releases them.
        deadline = time.monotonic() + 10
        while True:
            try:
                probe()
                break
            except grpc.RpcError as error:
                if time.monotonic() > deadline:
                    self.fail(f"{path} still refused after the connection closed: {error}")
                time.sleep(0.1)

    def test_decides_whose_responses_are_never_read_are_bounded(self):
        self.check_unread_responses_are_bounded(
            "/lcio.v1.Offloader/Decide",
            lambda: self.request(f"never-read-{time.monotonic()}").SerializeToString(),
            lambda: self.stub.Decide(self.request(f"probe-{time.monotonic()}"), timeout=10))

    def test_get_policy_responses_never_read_are_bounded(self):
        # GetPolicy counted nothing: 20 connections x 1000 unread calls grew
        # the server by ~360 MB.
        self.check_unread_responses_are_bounded(
            "/lcio.v1.Offloader/GetPolicy", lambda: b"",
            lambda: self.stub.GetPolicy(pb.GetPolicyRequest(), timeout=10))


def varint(value):
    out = b""
    while True:
        byte, value = value & 0x7F, value >> 7
        out += bytes([byte | (0x80 if value else 0)])
        if not value:
            return out


class OversizeReportTest(unittest.TestCase):
    def test_a_report_larger_than_a_record_is_refused_before_it_is_parsed(self):
        # A 3.9 MB unknown field passed validation (it is not logged) and the
        # queued call held the whole request while the disk answered.
        logs = tempfile.TemporaryDirectory()
        self.addCleanup(logs.cleanup)
        server = Server(f"--report_log={logs.name}/reports.jsonl")
        channel = grpc.insecure_channel(server.target)
        try:
            stub = pb_grpc.OffloaderStub(channel)
            request = pb.ReportRequest(conversation_id="c", turn_index=0, prompt="p")
            padding = b"x" * (3900 * 1024)  # unknown field 999, length-delimited
            raw = request.SerializeToString() + varint(999 << 3 | 2) + varint(len(padding)) \
                + padding
            call = channel.unary_unary("/lcio.v1.Offloader/Report",
                                       request_serializer=lambda b: b,
                                       response_deserializer=lambda b: b)
            with self.assertRaises(grpc.RpcError) as refused:
                call(raw, timeout=10)
            self.assertEqual(refused.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
            self.assertIn("--report_max_record_bytes + 4 KiB", refused.exception.details())
        finally:
            channel.close()
            server.stop()


if __name__ == "__main__":
    unittest.main()
