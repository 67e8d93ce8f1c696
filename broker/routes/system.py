"""Operational endpoints: /version, /ngsi-ld/ex/v1/version, /health, /metrics."""

from __future__ import annotations

import asyncio
import os
import platform
import subprocess
import time
from functools import lru_cache
from pathlib import Path

from aiohttp import web

from broker.http import json_response
from broker.state import broker_of
from broker.web import add_route
from ngsi_ld.errors import NgsiLdError

PACKAGE_VERSION = "0.1.0"


@lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The commit the broker runs from, when it runs from a git checkout."""
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=2,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


async def version(request: web.Request) -> web.Response:
    broker = broker_of(request)
    return json_response(
        {
            "name": "ngsi-ld-broker",
            "version": PACKAGE_VERSION,
            "gitCommit": git_commit(),
            "python": platform.python_version(),
            "uptime": round(time.time() - broker.started, 3),
            "store": broker.store.kind,
            "coreContext": broker.resolver.core_url,
            "multiTenancy": broker.settings.multi_tenancy,
        }
    )


async def health(request: web.Request) -> web.Response:
    broker = broker_of(request)
    try:
        details = await broker.store.health()
    except NgsiLdError as exc:
        return json_response(
            {"status": "fail", "store": broker.store.kind, "detail": exc.detail}, status=503
        )
    process: dict[str, object] = {"pid": os.getpid()}
    if broker.node is not None:  # one of several processes on a shared store
        process.update(cluster=broker.node.origin, changesReceived=broker.node.received)
    return json_response({"status": "pass", "store": broker.store.kind, "details": details,
                          "process": process})


async def metrics(request: web.Request) -> web.Response:
    return web.Response(
        text=broker_of(request).metrics.render(), content_type="text/plain", charset="utf-8"
    )


def setup(app: web.Application) -> None:
    # git_commit runs a subprocess: do it once at start-up, not on the event loop per request
    async def warm(app: web.Application) -> None:
        await asyncio.to_thread(git_commit)

    app.on_startup.append(warm)
    add_route(app, "GET", "/version", version)
    add_route(app, "GET", "/ngsi-ld/ex/v1/version", version)
    add_route(app, "GET", "/health", health)
    add_route(app, "GET", "/metrics", metrics)
