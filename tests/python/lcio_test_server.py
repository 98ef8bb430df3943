"""Starts a real lcio-server on 127.0.0.1 with an ephemeral port for the
Python tests; bounded in time (the server must listen within 60 s)."""

import os
import re
import subprocess
import tempfile
import time

SERVER_BIN = os.environ["LCIO_SERVER_BIN"]


class Server:
    """port: 0 for an ephemeral one, or a port to listen on again (a restart).
    stderr: where the server's log lines go (default: the log file)."""

    def __init__(self, *flags, port=0, stderr=subprocess.STDOUT):
        self.dir = tempfile.TemporaryDirectory()
        self.log_path = os.path.join(self.dir.name, "server.log")
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [SERVER_BIN, f"--listen=127.0.0.1:{port}", "--metrics_listen=", *flags],
            stdout=self._log, stderr=stderr)
        deadline = time.monotonic() + 60
        self.port = None
        while self.port is None:
            with open(self.log_path, "rb") as log:
                found = re.search(rb"^lcio-server listening on 127\.0\.0\.1:(\d+)$", log.read(),
                                  re.M)
            if found:
                self.port = int(found.group(1))
            elif self.process.poll() is not None or time.monotonic() > deadline:
                with open(self.log_path, errors="replace") as log:
                    output = log.read()
                self.stop()
                raise RuntimeError("lcio-server did not start: " + output)
            else:
                time.sleep(0.1)
        self.target = f"127.0.0.1:{self.port}"
        with open(self.log_path, "rb") as log:
            found = re.search(rb"^lcio-server metrics on [^\n]*:(\d+)$", log.read(), re.M)
        self.metrics_port = int(found.group(1)) if found else None

    def path(self, name):
        return os.path.join(self.dir.name, name)

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        self.dir.cleanup()
