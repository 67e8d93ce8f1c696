"""``ngsi-ld-broker demo``: the broker, a generated city and its live readings, one command.

Starts the broker on the embedded store in its own data folder (the bundled
Smart Data Models contexts pre-loaded, their schemas checked, the explorer
on), loads the generated data set through the API (batch upsert), hosts the
combined Smart Data Models @context at ``/ngsi-ld/v1/jsonldContexts/smart-data-models``
and runs the simulator until interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence

import aiohttp
from aiohttp import web

from broker.app import create_app
from broker.config import Settings
from broker.demo.cities import CITIES
from broker.demo.dataset import generate, lampposts
from broker.demo.simulator import BrokerClient, Simulator, now_utc
from broker.logs import setup_logging
from broker.smartdatamodels import CONTEXTS, DIRECTORY
from broker.state import BROKER
from ngsi_ld.timeutil import now_iso
from storage.base import ContextRecord

log = logging.getLogger("broker.demo")

#: local id of the hosted context that names every term of the demo's data models
CONTEXT_ID = "smart-data-models"
#: instances of one attribute per temporal answer: the explorer's history chart gets an
#: hour of 5 s readings in one request (the broker's default, 10, is the value the ETSI
#: suite pins; more pages the same data, 6.3.10)
DEMO_INSTANCE_LIMIT = 1000
#: the air-quality terms the weather data model defines too (see host_context)
AIR_QUALITY_TERMS = {
    "airQualityIndex": "https://smartdatamodels.org/dataModel.Environment/airQualityIndex"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ngsi-ld-broker demo",
        description="Start the broker with a generated smart-lampposts data set (Hong Kong "
        "by default) and a simulator that updates its readings every few seconds.",
    )
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on")
    parser.add_argument("--port", type=int, default=1026, help="TCP port (default 1026)")
    parser.add_argument("--data-dir", default="ngsi-ld-demo",
                        help="folder of the demo's embedded store (default ./ngsi-ld-demo)")
    parser.add_argument("--city", action="append", choices=sorted(CITIES),
                        help="city to generate; repeat for the two-city story "
                        "(default hong-kong)")
    parser.add_argument("--size", type=int, default=400,
                        help="lampposts per city (default 400)")
    parser.add_argument("--interval", type=float, default=5.0,
                        help="seconds between two rounds of readings (default 5; 0: no "
                        "simulator)")
    parser.add_argument("--seed", type=int, default=42,
                        help="seed of the generated data (same seed, same data)")
    parser.add_argument("--no-validation", action="store_true",
                        help="do not check writes against the Smart Data Models schemas")
    parser.add_argument("--explorer", default="on", choices=("on", "off"),
                        help="serve the explorer at /explorer (default on)")
    parser.add_argument("--temporal", default="on", choices=("on", "off"),
                        help="record the readings' history and serve the temporal API "
                        "(default on)")
    parser.add_argument("--temporal-instance-limit", type=int, default=DEMO_INSTANCE_LIMIT,
                        metavar="N",
                        help="most instances of one attribute in one temporal answer (default "
                        f"{DEMO_INSTANCE_LIMIT}: an hour of readings in one answer; the broker's "
                        "own default is 10)")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--outbound-allow", default="", metavar="CIDR,...",
                        help="networks notifications and remote @contexts may go to although "
                             "private or loopback (e.g. 127.0.0.0/8 for a receiver on this "
                             "machine; default none, docs/security.md)")
    return parser


def demo_settings(args: argparse.Namespace) -> Settings:
    return Settings(
        host=args.host, port=args.port, store=f"sqlite:{args.data_dir}/broker.db",
        context_dir=str(DIRECTORY), model_schemas="" if args.no_validation else str(DIRECTORY),
        explorer=args.explorer == "on", log_level=args.log_level.upper(),
        outbound_allow=args.outbound_allow, temporal=args.temporal == "on",
        temporal_instance_limit=args.temporal_instance_limit,
    )


async def host_context(app: web.Application) -> None:
    """Host the combined Smart Data Models @context under a fixed, documented URL."""
    broker = app[BROKER]
    url = broker.resolver.hosted_url(CONTEXT_ID)
    # where two data models define one term, the later wins: this order keeps the
    # demo's own attributes short (refDevice of Streetlight, temperature of weather), and
    # the one term the weather model takes from air quality is given back to it, so that
    # every attribute the demo writes compacts to its short name
    order = ("DCAT-AP", "Transportation", "Environment", "Weather", "Streetlighting")
    document = {"@context": [*(CONTEXTS[model] for model in order), AIR_QUALITY_TERMS]}
    stored = await broker.store.get_context(url)
    if stored is None or stored.document != document:
        await broker.store.put_context(ContextRecord(
            url=url, kind="Hosted", document=document, created_at=now_iso(),
            extra={"localId": CONTEXT_ID}))


async def serve(args: argparse.Namespace) -> None:
    settings = demo_settings(args)
    app = create_app(settings)
    app.on_startup.append(host_context)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    local = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    base_url = f"http://{local}:{settings.port}"
    try:
        cities = [CITIES[name] for name in (args.city or ["hong-kong"])]
        when = now_utc()
        async with aiohttp.ClientSession() as session:
            client = BrokerClient(session, base_url)
            posts = []
            for city in cities:
                entities = generate(city, args.size, args.seed, when, settings.base_url)
                refused = await client.upsert(entities)
                posts.extend(lampposts(city, args.size, args.seed))
                log.info("demo: %s loaded, %d entities (%d refused)", city.name,
                         len(entities), refused)
            print(f"NGSI-LD demo running: API {settings.base_url}/ngsi-ld/v1, explorer "
                  f"{settings.base_url}/explorer/ (Ctrl-C stops)", flush=True)
            if args.interval > 0:
                await Simulator(client, posts, args.seed, args.interval).run()
            else:
                await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.size < 1:
        print("ngsi-ld-broker demo: --size must be at least 1", file=sys.stderr)
        return 2
    if args.temporal_instance_limit < 1:
        print("ngsi-ld-broker demo: --temporal-instance-limit must be at least 1",
              file=sys.stderr)
        return 2
    setup_logging(args.log_level.upper(), False)

    async def until_signal() -> None:
        task = asyncio.ensure_future(serve(args))
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    try:
        asyncio.run(until_signal())
    except OSError as exc:
        print(f"ngsi-ld-broker demo: cannot serve on {args.host}:{args.port}: {exc}",
              file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"ngsi-ld-broker demo: {exc}", file=sys.stderr)
        return 1
    return 0
