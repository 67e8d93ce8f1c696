"""``--workers N``: a supervisor that runs N broker processes on one port and one store.

Each worker is ``python -m broker`` with the same options plus
``--reuse-port true --cluster true``: the kernel spreads connections over the
workers (SO_REUSEPORT) and the workers follow each other's changes through the
store (broker.cluster).  The supervisor serves nothing itself; it forwards
SIGINT/SIGTERM, and starts a worker again if it dies after having served (a
worker that fails within its first seconds, say the port is taken, stops all).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from types import FrameType

log = logging.getLogger("broker.workers")

#: a worker that exits sooner than this after its start is a configuration error
STARTUP_GRACE = 5.0


class _Worker:
    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        self.started = time.monotonic()
        self.process = subprocess.Popen(command, env=env)


def supervise(workers: int, argv: Sequence[str]) -> int:
    """Run ``workers`` broker processes until a signal; their exit status."""
    command = [sys.executable, "-m", "broker", *argv,
               "--workers", "1", "--reuse-port", "true", "--cluster", "true"]
    env = {**os.environ, "NGSI_LD_WORKERS": "1"}
    running = [_Worker(command, env) for _ in range(workers)]
    log.info("started %d broker workers: %s", workers,
             " ".join(str(w.process.pid) for w in running))
    stopping: list[int] = []

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.append(signum)
        for worker in running:
            if worker.process.poll() is None:
                worker.process.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    status = 0
    while not stopping:
        time.sleep(0.2)
        for i, worker in enumerate(running):
            code = worker.process.poll()
            if code is None or stopping:
                continue
            if time.monotonic() - worker.started < STARTUP_GRACE:
                log.error("worker %d exited with status %d at start-up; stopping",
                          worker.process.pid, code)
                status = code or 1
                stop(signal.SIGTERM, None)
                break
            log.warning("worker %d exited with status %d; starting another",
                        worker.process.pid, code)
            running[i] = _Worker(command, env)
    deadline = time.monotonic() + 15
    for worker in running:
        try:
            worker.process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            worker.process.kill()
            worker.process.wait()
    return status


__all__ = ["supervise"]
