"""Closed-loop load with wrk: the command line, running it, and parsing its report."""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

LUA_SCRIPT = Path(__file__).resolve().parents[1] / "lua" / "request.lua"

_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_TIME = re.compile(r"^([\d.]+)(us|ms|s|m|h)$")
_PERCENTILE = re.compile(r"^\s*(\d+(?:\.\d+)?)%\s+(\S+)\s*$")
_TOTAL = re.compile(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h)")
_SOCKET = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")
_RATE = re.compile(r"^Requests/sec:\s+([\d.]+)", re.MULTILINE)


class WrkError(RuntimeError):
    """wrk is missing, failed, or printed a report this parser does not understand."""


@dataclass
class WrkResult:
    """What one wrk run measured."""

    requests: int
    duration_s: float
    rate: float  # requests per second
    latency_ms: dict[str, float] = field(default_factory=dict)  # "p50", "p99"...
    socket_errors: int = 0
    status_errors: int = 0  # responses wrk counts as errors (status >= 400)

    @property
    def errors(self) -> int:
        return self.socket_errors + self.status_errors


def parse_duration_ms(text: str) -> float:
    """A wrk time such as ``812.00us``, ``1.25ms`` or ``2.00s`` in milliseconds."""
    match = _TIME.match(text.strip())
    if not match:
        raise WrkError(f"not a wrk duration: {text!r}")
    return float(match.group(1)) * _UNITS_MS[match.group(2)]


def parse_wrk_output(text: str) -> WrkResult:
    """Parse the report ``wrk --latency`` prints.

    Raises WrkError when the report lacks the totals (wrk failed to run).
    """
    total = next((m for m in map(_TOTAL.match, text.splitlines()) if m), None)
    rate = _RATE.search(text)
    if total is None or rate is None:
        raise WrkError("wrk printed no totals:\n" + text.strip()[-2000:])
    latency: dict[str, float] = {}
    in_distribution = False
    for line in text.splitlines():
        if "Latency Distribution" in line:
            in_distribution = True
            continue
        if in_distribution:
            match = _PERCENTILE.match(line)
            if not match:
                in_distribution = False
                continue
            key = f"p{float(match.group(1)):g}"  # "50" -> p50, "99.90" -> p99.9
            latency[key] = parse_duration_ms(match.group(2))
    sockets = _SOCKET.search(text)
    non_2xx = _NON_2XX.search(text)
    return WrkResult(
        requests=int(total.group(1)),
        duration_s=parse_duration_ms(total.group(2) + total.group(3)) / 1000,
        rate=float(rate.group(1)),
        latency_ms=latency,
        socket_errors=sum(int(g) for g in sockets.groups()) if sockets else 0,
        status_errors=int(non_2xx.group(1)) if non_2xx else 0,
    )


def wrk_path() -> str:
    """The wrk executable; a clear error when it is not installed."""
    path = shutil.which("wrk")
    if path is None:
        raise WrkError(
            "wrk is not installed: the benchmarks need it for closed-loop load "
            "(Debian/Ubuntu: apt-get install -y wrk)"
        )
    return path


def wrk_command(
    url: str,
    *,
    method: str,
    paths_file: Path,
    body_file: Path | None,
    count: int,
    run_id: str,
    connections: int,
    duration_s: float,
    headers: dict[str, str],
    cpus: str | None = None,
    threads: int = 1,
    timeout_s: float = 10.0,
    wrk: str = "wrk",
) -> list[str]:
    """The wrk command line running lua/request.lua (pinned with taskset when ``cpus``)."""
    command = [] if cpus is None else ["taskset", "-c", cpus]
    command += [
        wrk,
        "-t", str(threads),
        "-c", str(max(connections, threads)),
        "-d", f"{max(1, round(duration_s))}s",
        "--timeout", f"{max(1, round(timeout_s))}s",
        "--latency",
    ]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    command += ["-s", str(LUA_SCRIPT), url, "--", method, str(paths_file),
                "-" if body_file is None else str(body_file), str(count), run_id]
    return command


async def run_wrk(command: Sequence[str]) -> WrkResult:
    """Run a wrk command and parse its report."""
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await process.communicate()
    text = out.decode(errors="replace")
    if process.returncode != 0:
        raise WrkError(f"wrk exited with {process.returncode}: {err.decode(errors='replace')}")
    return parse_wrk_output(text)
