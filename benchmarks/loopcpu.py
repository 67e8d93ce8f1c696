"""Event-loop CPU of a write, in-process: the broker's own part of a request.

    python -m benchmarks.loopcpu                    # the five scenarios
    python -m benchmarks.loopcpu --requests 4000 --rounds 7 --scenario update-attr

Builds the broker application on a fresh embedded store (history on, as
``python -m benchmarks`` runs it), prepares what the write scenarios prepare
(the pool of entities, the idle subscription on their type, the hosted Streetlight
@context), then hands
requests built with aiohttp's ``make_mocked_request`` (the body in a real
``StreamReader``) to the application from 16 coroutines, and reads
``time.thread_time()`` of the event-loop thread around each round: CPU
microseconds per request (per entity of a batch upsert) from routing to the answer
object, without aiohttp's HTTP parse and write and without the writer thread's work
(its own thread, shown apart: ``time.process_time()`` less the event loop's).
The median of the rounds is printed.  Nothing else on the machine shows in
this figure but cache and frequency effects, so before/after pairs of a change
(``--source`` a ``git archive`` copy, through ``PYTHONPATH``) agree to a few
microseconds where ``benchmarks.writecpu``'s ``/proc`` ticks scatter by tens.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import orjson
from aiohttp import web
from aiohttp.http import HttpVersion11, RawRequestMessage
from aiohttp.streams import StreamReader
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from benchmarks.suite.scenarios import STREETLIGHT_CONTEXT, streetlight_body
from broker.app import create_app
from broker.config import Settings

ENTITIES = "/ngsi-ld/v1/entities"
LINK_REL = "http://www.w3.org/ns/json-ld#context"
UPSERT = "/ngsi-ld/v1/entityOperations/upsert"
POOL = 1000
BATCH = 100
CONNECTIONS = 16


class _Stub:
    """What a request built here reads of its protocol, transport and writer: nothing
    it calls on the paths measured (an answer is not written)."""

    _reading_paused = False
    ssl_context = None
    peername = ("127.0.0.1", 1)
    sockname = ("127.0.0.1", 2)
    transport = None
    writer = None

    def pause_reading(self) -> None: ...

    def resume_reading(self, resume_parser: bool = True) -> None: ...


_STUB = _Stub()


def _request(method: str, path: str, body: bytes, link: str | None = None,
             media: str = "application/json") -> web.Request:
    """A request as aiohttp's server hands it to the application, its body arrived."""
    loop = asyncio.get_running_loop()
    payload = StreamReader(_STUB, 2**16, loop=loop)  # type: ignore[arg-type]
    payload.feed_data(body)
    payload.feed_eof()
    headers = CIMultiDictProxy(CIMultiDict({
        "Content-Type": media, "Content-Length": str(len(body)), "Host": "localhost",
        **({"Link": link} if link else {})}))
    raw = tuple((k.encode(), v.encode()) for k, v in headers.items())
    message = RawRequestMessage(method, path, HttpVersion11, headers, raw, False, None, False,
                                False, URL(path))
    return web.Request(message, payload, _STUB, _STUB, None, loop)  # type: ignore[arg-type]


def _update(n: int, uid: str) -> tuple[str, str, bytes]:
    return ("PATCH", f"{ENTITIES}/urn:ngsi-ld:BenchEntity:{n % POOL}/attrs",
            b'{"temperature":{"type":"Property","value":%d}}' % n)


def _patch_attr(n: int, uid: str) -> tuple[str, str, bytes]:
    return ("PATCH", f"{ENTITIES}/urn:ngsi-ld:BenchEntity:{n % POOL}/attrs/temperature",
            b'{"type":"Property","value":%d}' % n)


def _create(n: int, uid: str) -> tuple[str, str, bytes]:
    return ("POST", ENTITIES, orjson.dumps({
        "id": f"urn:ngsi-ld:BenchCreate:{uid}-{n}", "type": "BenchCreate",
        "temperature": {"type": "Property", "value": n, "unitCode": "CEL"},
        "status": {"type": "Property", "value": "ok"}}))


def _streetlight(n: int, uid: str) -> tuple[str, str, bytes]:
    return ("POST", ENTITIES,
            streetlight_body(f"urn:ngsi-ld:Streetlight:bench:{uid}-{n}").encode())


def _streetlight_batch(n: int, uid: str) -> tuple[str, str, bytes]:
    # 100 Streetlights of 10 rotating id sets (as the suite's): replaced once they exist,
    # each request reporting a new powerConsumption (its number), as the suite's does
    return ("POST", UPSERT, b"[" + b",".join(
        streetlight_body(f"urn:ngsi-ld:Streetlight:benchbatch:{n % 10}:{k}", str(n)).encode()
        for k in range(BATCH)) + b"]")


SCENARIOS: dict[str, Callable[[int, str], tuple[str, str, bytes]]] = {
    "update-attr": _update, "patch-attr": _patch_attr, "create-entity": _create,
    "streetlight-create": _streetlight, "streetlight-batch-upsert": _streetlight_batch}
#: the entities of a request, where it is not one (the figures are per entity)
PER_REQUEST = {"streetlight-batch-upsert": BATCH}


def _requests(build: Callable[[int, str], tuple[str, str, bytes]], first: int, count: int,
              uid: str, link: str | None) -> list[web.Request]:
    # the Streetlights are sent with the Link of their hosted @context, as in the suite
    link = link if build in (_streetlight, _streetlight_batch) else None
    return [_request(*build(n, uid), link) for n in range(first, first + count)]


async def _send(app: web.Application, requests: list[web.Request]) -> int:
    """Hand ``requests`` to ``app`` from 16 coroutines; the number of error answers."""
    numbers = iter(requests)
    errors = 0

    async def worker() -> None:
        nonlocal errors
        for request in numbers:
            response = await app._handle(request)
            if response.status >= 400:
                errors += 1

    await asyncio.gather(*(worker() for _ in range(CONNECTIONS)))
    return errors


async def _prepare(app: web.Application) -> str:
    """The pool, the idle subscription, the hosted Streetlight @context: its Link."""
    for start in range(0, POOL, 100):
        batch = [{"id": f"urn:ngsi-ld:BenchEntity:{i}", "type": "BenchEntity",
                  "temperature": {"type": "Property", "value": i},
                  "status": {"type": "Property", "value": "ok"}}
                 for i in range(start, start + 100)]
        response = await app._handle(_request("POST", "/ngsi-ld/v1/entityOperations/upsert",
                                              orjson.dumps(batch)))
        assert response.status < 300, response.status
    subscription = {"type": "Subscription", "entities": [{"type": "BenchEntity"}],
                    "watchedAttributes": ["status"],
                    "notification": {"endpoint": {"uri": "http://127.0.0.1:9/never"}}}
    response = await app._handle(_request("POST", "/ngsi-ld/v1/subscriptions",
                                          orjson.dumps(subscription)))
    assert response.status == 201, response.status
    response = await app._handle(_request("POST", "/ngsi-ld/v1/jsonldContexts",
                                          STREETLIGHT_CONTEXT.read_bytes(),
                                          media="application/ld+json"))
    assert response.status == 201, response.status
    # hosted at the broker's own URL (``Host: localhost``): resolved without a fetch
    url = "http://localhost" + response.headers["Location"]
    return f'<{url}>; rel="{LINK_REL}"; type="application/ld+json"'


async def run(scenarios: list[str], requests: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(Settings(store=f"sqlite:///{Path(tmp) / 'b.db'}"))
        runner = web.AppRunner(app)
        await runner.setup()
        try:
            link = await _prepare(app)
            for name in scenarios:
                build = SCENARIOS[name]
                per = PER_REQUEST.get(name, 1)
                count = max(requests // per, 1)
                await _send(app, _requests(build, 0, max(count // 2, 10), "warm", link))
                figures: list[float] = []
                others: list[float] = []
                for round_ in range(rounds):
                    sent = _requests(build, count * (round_ + 1), count, f"r{round_}", link)
                    await asyncio.sleep(0.1)
                    before, whole = time.thread_time(), time.process_time()
                    errors = await _send(app, sent)
                    loop_us = (time.thread_time() - before) * 1e6 / (count * per)
                    figures.append(loop_us)
                    others.append((time.process_time() - whole) * 1e6 / (count * per)
                                  - loop_us)
                    if errors:
                        print(f"  {name}: {errors} errors")
                unit = "entity" if per > 1 else "request"
                print(f"{name:16} event loop {statistics.median(figures):6.1f} us/{unit} "
                      f"(rounds {', '.join(f'{f:.0f}' for f in sorted(figures))}); other "
                      f"threads {statistics.median(others):6.1f} (rounds "
                      f"{', '.join(f'{f:.0f}' for f in sorted(others))})", flush=True)
        finally:
            await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.loopcpu")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--scenario", action="append", choices=sorted(SCENARIOS), default=[])
    args = parser.parse_args()
    asyncio.run(run(args.scenario or sorted(SCENARIOS, reverse=True), args.requests,
                    args.rounds))


if __name__ == "__main__":
    main()
