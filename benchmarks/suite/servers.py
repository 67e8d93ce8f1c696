"""Starting, watching and stopping the processes under test (broker, baseline)."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pinned(command: Sequence[str], cpus: str | None) -> list[str]:
    """``command`` run under ``taskset -c cpus`` (unchanged when cpus is None)."""
    return list(command) if cpus is None else ["taskset", "-c", cpus, *command]


def usable_cpus(server: str, client: str) -> tuple[str | None, str | None, str]:
    """The CPU lists to pin to, or (None, None, why) when pinning is impossible here."""
    if shutil.which("taskset") is None:
        return None, None, "taskset not found: processes are not pinned"
    available = os.sched_getaffinity(0)
    wanted = {int(c) for part in (server, client) for c in _expand(part)}
    if not wanted <= available:
        return None, None, f"CPUs {sorted(wanted - available)} not available: not pinned"
    return server, client, f"server on CPU {server}, load generator on CPU {client}"


def _expand(cpus: str) -> list[int]:
    out: list[int] = []
    for part in cpus.split(","):
        if "-" in part:
            low, high = part.split("-", 1)
            out.extend(range(int(low), int(high) + 1))
        elif part.strip():
            out.append(int(part))
    return out


def rss_mb(pid: int) -> float | None:
    """Resident memory of a process in MB from /proc (None when unreadable)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return None


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system, all threads) a process has used, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # Fields 14 and 15 of stat (utime, stime); the split dropped the first two.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def total_cpu_seconds(pids: Sequence[int]) -> float:
    """CPU time the processes ``pids`` have used in all (those gone count nothing)."""
    return sum(filter(None, map(cpu_seconds, pids)))


async def wait_quiet(pids: Sequence[int], *, busy: float = 0.05, step_s: float = 0.2,
                     timeout_s: float = 10.0) -> None:
    """Wait until the processes use less than ``busy`` of a CPU (or ``timeout_s`` passed).

    The broker and the baseline share a core: work left over from one load run
    (requests still queued when wrk stopped) must not be charged to the next.
    """
    deadline = time.monotonic() + timeout_s
    before = total_cpu_seconds(pids)
    while time.monotonic() < deadline:
        await asyncio.sleep(step_s)
        after = total_cpu_seconds(pids)
        if after - before < busy * step_s:
            return
        before = after


@dataclass
class ServerGroup:
    """One or more processes serving the same port (``--workers``)."""

    name: str
    url: str
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    log_path: Path | None = None
    #: the command of each process, to start the group again
    commands: list[list[str]] = field(default_factory=list)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]

    def rss_mb(self) -> float | None:
        """Total resident memory of the group (None when unknown)."""
        values = [rss_mb(pid) for pid in self.pids]
        known = [v for v in values if v is not None]
        return sum(known) if known else None

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 10
        for process in self.processes:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def check_alive(self) -> None:
        for process in self.processes:
            if process.poll() is not None:
                log = self.log_path.read_text()[-2000:] if self.log_path else ""
                raise RuntimeError(f"{self.name} exited with {process.returncode}:\n{log}")


def start_group(
    name: str, commands: Sequence[Sequence[str]], url: str, log_path: Path
) -> ServerGroup:
    """Start the processes (cwd: the repository, output to ``log_path``)."""
    group = ServerGroup(name, url, log_path=log_path, commands=[list(c) for c in commands])
    log = log_path.open("ab")
    for command in commands:
        group.processes.append(
            subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        )
    log.close()
    return group


def broker_commands(
    port: int, store: str, workers: int, cpus: str | None, extra: Sequence[str] = ()
) -> list[list[str]]:
    """The ``python -m broker`` command of each worker.

    Several workers share the port through SO_REUSEPORT (the broker's ``--reuse-port``).
    """
    command = [sys.executable, "-m", "broker", "--host", "127.0.0.1", "--port", str(port),
               "--store", store, "--log-level", "WARNING",
               "--outbound-allow", "127.0.0.0/8", *extra]  # receivers on this machine
    if workers > 1:
        command += ["--reuse-port", "true"]
    return [pinned(command, cpus) for _ in range(workers)]


def baseline_command(port: int, cpus: str | None, event_loop: str = "uvloop") -> list[str]:
    """The command starting benchmarks/baseline_app.py on an event loop of ``event_loop``."""
    return pinned([sys.executable, "-m", "benchmarks.baseline_app", "--port", str(port),
                   "--event-loop", event_loop], cpus)


def event_loop_of(broker_args: Sequence[str] | None) -> str:
    """The event loop the broker started with ``broker_args`` runs on: its
    ``--event-loop`` option, else ``NGSI_LD_EVENT_LOOP``, else the default (uvloop)."""
    args = list(broker_args or ())
    kind = os.environ.get("NGSI_LD_EVENT_LOOP", "uvloop")
    for i, arg in enumerate(args):
        if arg == "--event-loop" and i + 1 < len(args):
            kind = args[i + 1]
        elif arg.startswith("--event-loop="):
            kind = arg.split("=", 1)[1]
    return kind.strip().lower()


async def wait_ready(group: ServerGroup | None, url: str, timeout_s: float = 30.0) -> None:
    """Wait until ``url`` answers any HTTP status; raise when the server died or timed out."""
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as session:
        while True:
            if group is not None:
                group.check_alive()
            try:
                async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as resp:
                    await resp.read()
                    return
            except (TimeoutError, aiohttp.ClientError, OSError):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{url} did not answer within {timeout_s:.0f} s") from None
                await asyncio.sleep(0.1)
