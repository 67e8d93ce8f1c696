"""The authentication scenario (issue 17): what ``--auth`` costs a read.

Two more brokers are started on the server core, on the same kind of store: one
with ``--auth off``, one with ``--auth oidc`` (a key set file made here, the
issuer and audience of the tokens signed here) and ``--api-keys`` (a key made
here).  Each holds the same entity.  ``GET /entities/{id}`` is sent to them in
turn, in rounds (off, API key, JWT, off, API key, JWT, ...), a fixed number of
requests each time at a fixed concurrency; what is measured is the **CPU time
the broker process used** per request (``/proc``, every thread), so that a busy
machine slows the rounds without changing the figures much, and the medians of
the rounds are compared.  Also measured: a JWT never seen before on every
request (the broker then verifies a signature each time; a token it has
verified is remembered until it expires).

The result's ``rate`` is requests per CPU-second with a JWT, ``baseline_rate``
the same with auth off: the ratio is what a read keeps of its throughput per
core with auth on.  ``extra`` holds every mode's CPU time per request.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import orjson
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from benchmarks.suite import servers

__all__ = ["AuthMeasurement", "measure_auth"]

ENTITY = {"id": "urn:ngsi-ld:Lamp:auth-bench", "type": "Lamp",
          "power": {"type": "Property", "value": 3}}
PATH = "/ngsi-ld/v1/entities/urn:ngsi-ld:Lamp:auth-bench"
ISSUER = "https://issuer.bench.invalid/realms/city"
AUDIENCE = "ngsi-ld-broker"
TENANT = "city"
#: the modes, in the order each round runs them
MODES = ("off", "api-key", "jwt", "jwt-new-each")


@dataclass
class AuthMeasurement:
    """CPU time per request (microseconds) of each mode, one figure per round."""

    cpu_us: dict[str, list[float]] = field(default_factory=dict)
    wall_rate: dict[str, list[float]] = field(default_factory=dict)
    errors: int = 0

    def median_cpu_us(self, mode: str) -> float:
        return statistics.median(self.cpu_us[mode])

    def median_rate(self, mode: str) -> float:
        return statistics.median(self.wall_rate[mode])


class _Issuer:
    """An RSA key of a made-up issuer: its key set file, and tokens signed with it."""

    def __init__(self, workdir: Path) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk: dict[str, Any] = RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        jwk.update(kid="bench", use="sig", alg="RS256")
        self.jwks_file = workdir / "auth-bench-jwks.json"
        self.jwks_file.write_bytes(orjson.dumps({"keys": [jwk]}))

    def token(self, subject: str = "bench") -> str:
        now = int(time.time())
        claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": subject, "iat": now,
                  "exp": now + 3600, "ngsi_ld_roles": [f"{TENANT}:admin"]}
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": "bench"})


def _api_keys(workdir: Path) -> tuple[Path, str]:
    key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    path = workdir / "auth-bench-keys.json"
    entry = {"name": "bench", "sha256": hashlib.sha256(key.encode()).hexdigest(),
             "roles": [f"{TENANT}:admin"]}
    path.write_bytes(orjson.dumps({"keys": [entry]}))
    return path, key


async def _burst(session: aiohttp.ClientSession, url: str, headers: list[dict[str, str]],
                 concurrency: int) -> int:
    """Send one GET per header set, ``concurrency`` at a time; the errors."""
    errors = 0
    queue = iter(headers)

    async def worker() -> None:
        nonlocal errors
        for each in queue:
            async with session.get(url + PATH, headers=each) as resp:
                await resp.read()
                errors += resp.status != 200

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return errors


async def measure_auth(session: aiohttp.ClientSession, workdir: Path, cpus: str | None, *,
                       requests: int = 2000, rounds: int = 5,
                       concurrency: int = 8) -> AuthMeasurement:
    """Start the two brokers (embedded SQLite each), run ``rounds`` rounds of
    ``requests`` GETs per mode."""
    issuer = _Issuer(workdir)
    keys_file, api_key = _api_keys(workdir)
    auth_args = ["--auth", "oidc", "--auth-issuer", ISSUER, "--auth-audience", AUDIENCE,
                 "--auth-jwks-file", str(issuer.jwks_file), "--api-keys", str(keys_file)]
    groups: dict[str, servers.ServerGroup] = {}
    try:
        for name, extra in (("off", ()), ("on", auth_args)):
            port = servers.free_port()
            url = f"http://127.0.0.1:{port}"
            store = f"sqlite:///{workdir / f'auth-{name}.db'}"
            commands = servers.broker_commands(port, store, 1, cpus, extra)
            groups[name] = servers.start_group(f"auth-{name}", commands, url,
                                               workdir / f"auth-{name}.log")
            await servers.wait_ready(groups[name], url)
        token = issuer.token()
        admin = {"NGSILD-Tenant": TENANT, "Authorization": f"Bearer {token}",
                 "Content-Type": "application/json"}
        for group in groups.values():
            async with session.post(group.url + "/ngsi-ld/v1/entities",
                                    data=orjson.dumps(ENTITY), headers=admin) as resp:
                if resp.status != 201:
                    raise RuntimeError(f"creating the entity answered {resp.status}")
        measured = AuthMeasurement()
        for _ in range(rounds):
            for mode in MODES:
                group = groups["off" if mode == "off" else "on"]
                count = requests if mode != "jwt-new-each" else max(100, requests // 4)
                if mode == "off":
                    headers = [{"NGSILD-Tenant": TENANT}] * count
                elif mode == "api-key":
                    headers = [{"NGSILD-Tenant": TENANT, "X-API-Key": api_key}] * count
                elif mode == "jwt":
                    headers = [{"NGSILD-Tenant": TENANT,
                                "Authorization": f"Bearer {token}"}] * count
                else:  # signed before the clock starts: the client's cost is not the broker's
                    headers = [{"NGSILD-Tenant": TENANT,
                                "Authorization": f"Bearer {issuer.token(f's{n}')}"}
                               for n in range(count)]
                await servers.wait_quiet(group.pids)
                pid = group.pids[0]
                cpu_before, started = servers.cpu_seconds(pid), time.perf_counter()
                measured.errors += await _burst(session, group.url, headers, concurrency)
                cpu_after, wall = servers.cpu_seconds(pid), time.perf_counter() - started
                if cpu_before is None or cpu_after is None:
                    raise RuntimeError("the broker's CPU time cannot be read (/proc)")
                measured.cpu_us.setdefault(mode, []).append(
                    (cpu_after - cpu_before) * 1e6 / count)
                measured.wall_rate.setdefault(mode, []).append(count / wall)
        return measured
    finally:
        for group in groups.values():
            group.stop()
