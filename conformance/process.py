"""Start this broker as a subprocess on a free port (for conformance runs and tests)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence

#: the networks a test broker may call (the outbound policy refuses them by default)
LOOPBACK = "127.0.0.0/8,::1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class BrokerProcess:
    """``python -m broker`` on 127.0.0.1 with the given store; ``url`` once started."""

    def __init__(
        self,
        store: str,
        *,
        extra: Sequence[str] = (),
        port: int | None = None,
        log: str | None = None,
    ) -> None:
        self.store = store
        self.extra = list(extra)
        self.log = log  # a file for the broker's output (default: this process's)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> BrokerProcess:
        cmd = [
            sys.executable,
            "-m",
            "broker",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--store",
            self.store,
            "--log-level",
            "WARNING",
            # the suites' receivers and context servers are on this machine
            "--outbound-allow",
            LOOPBACK,
            *self.extra,
        ]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if self.log is None:
            self.process = subprocess.Popen(cmd, env=env)
        else:
            with open(self.log, "ab") as out:
                self.process = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the broker exited with code {self.process.returncode}")
            try:
                with urllib.request.urlopen(self.url + "/version", timeout=1):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the broker at {self.url} did not answer within {timeout}s")

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, nothing is flushed by the broker."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def __enter__(self) -> BrokerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
