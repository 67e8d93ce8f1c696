"""The ``ngsi-ld-broker`` command (also ``python -m broker``)."""

from __future__ import annotations

import gc
import logging
import sys
from collections.abc import Sequence

from aiohttp import web

from broker import demo
from broker.app import BROKER, create_app
from broker.auth import apikeys
from broker.config import Settings, load_settings
from broker.loader import command as load_command
from broker.logs import setup_logging
from broker.serving import serve
from broker.threadsched import apply as apply_thread_scheduling
from broker.workers import supervise

log = logging.getLogger("broker")

#: Container allocations between two young-generation collections (Python's
#: default is 700).  Every request allocates thousands of short-lived dicts and
#: lists that reference counting frees anyway; at the default the cyclic
#: collector took about 15% of the CPU of a batch upsert run (benchmarks/).
GC_GEN0_THRESHOLD = 50_000

#: commands besides serving: ``ngsi-ld-broker load FILE...``, ``ngsi-ld-broker demo``,
#: ``ngsi-ld-broker api-key NAME TENANT:ROLE...``
SUBCOMMANDS = {"load": load_command.main, "demo": demo.main, "api-key": apikeys.main}


async def _freeze_startup_objects(app: web.Application) -> None:
    # Modules, compiled @contexts and the like live as long as the process: out of
    # the collector's sight, a full collection only walks what requests left behind.
    gc.collect()
    gc.freeze()


def run(settings: Settings) -> None:
    """Serve the broker until interrupted."""
    setup_logging(settings.log_level, settings.log_json)
    try:
        app = create_app(settings)
    except ValueError as exc:  # a store URL the broker cannot serve
        raise SystemExit(f"ngsi-ld-broker: {exc}") from None
    # before any thread is started (the store's at start-up, the executors'): they
    # inherit it; making the app starts none
    apply_thread_scheduling(settings.thread_scheduling)
    gc.set_threshold(GC_GEN0_THRESHOLD, *gc.get_threshold()[1:])
    app.on_startup.append(_freeze_startup_objects)  # after the store and contexts loaded
    log.info(
        "NGSI-LD broker listening on http://%s:%d/ngsi-ld/v1 (store %s, core context v%s)",
        settings.host,
        settings.port,
        settings.store.split("@")[-1],  # never log credentials
        settings.core_context_version,
    )
    metrics = app[BROKER].metrics
    serve(
        app,
        settings.host,
        settings.port,
        max_connections=settings.max_connections,
        idle_timeout=settings.idle_timeout,
        reuse_port=settings.reuse_port,
        event_loop=settings.event_loop,
        on_refused=lambda: metrics.incr("connections_refused"),
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    command = SUBCOMMANDS.get(args[0]) if args else None
    if command is not None:  # ngsi-ld-broker load ... / ngsi-ld-broker demo ...
        return command(args[1:])
    settings = load_settings(argv)
    if settings.workers > 1:
        setup_logging(settings.log_level, settings.log_json)
        return supervise(settings.workers, sys.argv[1:] if argv is None else list(argv))
    try:
        run(settings)
    except OSError as exc:  # port in use, bad address: a clear line, not a trace
        print(
            f"ngsi-ld-broker: cannot serve on {settings.host}:{settings.port}: {exc}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
