"""broker/contexts.py: where @context documents come from, within limits, never blocking."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from broker.contexts import ContextResolver
from broker.outbound import OutboundPolicy
from ngsi_ld.errors import BadRequestData, LdContextNotAvailable
from storage import MemoryStore, SqliteStore

CTX = {"@context": {"speed": "https://example.org/speed"}}


class Origin:
    """A local HTTP server for remote contexts, counting hits per path."""

    def __init__(self) -> None:
        self.hits: dict[str, int] = {}
        self.docs: dict[str, bytes] = {}
        self.delay = 0.0
        self.server: TestServer | None = None

    async def handler(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        self.hits[path] = self.hits.get(path, 0) + 1
        if path.startswith("/redirect/"):
            n = int(path.rsplit("/", 1)[1])
            raise web.HTTPFound(f"/redirect/{n + 1}" if n < 10 else "/ctx")
        if self.delay:
            await asyncio.sleep(self.delay)
        if path not in self.docs:
            raise web.HTTPNotFound()
        return web.Response(body=self.docs[path], content_type="application/ld+json")

    def url(self, path: str) -> str:
        assert self.server is not None
        return str(self.server.make_url(path))


@pytest.fixture
async def origin() -> AsyncIterator[Origin]:
    org = Origin()
    app = web.Application()
    app.router.add_get("/{tail:.*}", org.handler)
    org.server = TestServer(app)
    await org.server.start_server()
    yield org
    await org.server.close()


@pytest.fixture
async def store() -> AsyncIterator[MemoryStore]:
    s = MemoryStore()
    await s.open()
    yield s
    await s.close()


#: the origin server is on loopback, which the outbound policy refuses by default
LOOPBACK = OutboundPolicy.parse("127.0.0.0/8")


def resolver_for(store: object, **kw: object) -> ContextResolver:
    kw.setdefault("outbound", LOOPBACK)
    return ContextResolver(store, timeout=kw.pop("timeout", 2.0), **kw)  # type: ignore[arg-type]


async def test_remote_context_is_fetched_once_and_compiled(
    origin: Origin, store: MemoryStore
) -> None:
    origin.docs["/ctx"] = orjson.dumps(CTX)
    resolver = resolver_for(store)
    url = origin.url("/ctx")
    results = await asyncio.gather(*(resolver.active(url) for _ in range(5)))
    assert all(r.expand_term("speed") == "https://example.org/speed" for r in results)
    assert origin.hits["/ctx"] == 1
    await resolver.close()


async def test_fetched_context_is_persisted_for_a_restart(origin: Origin, tmp_path: Path) -> None:
    origin.docs["/ctx"] = orjson.dumps(CTX)
    url = origin.url("/ctx")
    first = SqliteStore(tmp_path / "c.db")
    await first.open()
    resolver = resolver_for(first)
    await resolver.active(url)
    await resolver.close()
    await first.close()
    again = SqliteStore(tmp_path / "c.db")
    await again.open()
    restarted = resolver_for(again)
    assert (await restarted.active(url)).expand_term("speed") == "https://example.org/speed"
    assert origin.hits["/ctx"] == 1
    record = await again.get_context(url)
    assert record is not None and record.kind == "Cached"
    await restarted.close()
    await again.close()


async def test_preloaded_directory_serves_offline(tmp_path: Path, store: MemoryStore) -> None:
    (tmp_path / "city.jsonld").write_text(json.dumps(CTX))
    (tmp_path / "index.json").write_text(
        json.dumps({"https://offline.example/city.jsonld": "city.jsonld"})
    )
    resolver = resolver_for(store, preload_dir=str(tmp_path))
    await resolver.start()
    ctx = await resolver.active("https://offline.example/city.jsonld")
    assert ctx.expand_term("speed") == "https://example.org/speed"


@pytest.mark.parametrize("case", ["missing", "too-big", "slow", "loop"])
async def test_remote_contexts_that_cannot_be_had_are_not_available(
    origin: Origin, store: MemoryStore, case: str
) -> None:
    origin.docs["/too-big"] = orjson.dumps({"@context": {"x": "y" * 5000}})
    origin.docs["/slow"] = orjson.dumps(CTX)
    origin.delay = 1.0 if case == "slow" else 0.0
    path = {"missing": "/missing", "loop": "/redirect/0"}.get(case, f"/{case}")
    resolver = resolver_for(store, max_size=4096, timeout=0.3)
    with pytest.raises(LdContextNotAvailable) as info:
        await resolver.active(origin.url(path))
    assert info.value.status == 504
    await resolver.close()


@pytest.mark.parametrize("case", ["not-json", "not-a-context", "a-list"])
async def test_remote_contexts_that_are_not_contexts_are_bad_request_data(
    origin: Origin, store: MemoryStore, case: str
) -> None:
    # 5.5.6: retrieved but invalid is BadRequestData, not LdContextNotAvailable
    origin.docs["/not-json"] = b"this is { not json"
    origin.docs["/not-a-context"] = b'{"speed": 1}'
    origin.docs["/a-list"] = b'[{"@context": {}}]'
    resolver = resolver_for(store)
    with pytest.raises(BadRequestData):
        await resolver.active(origin.url(f"/{case}"))
    assert await store.get_context(origin.url(f"/{case}")) is None  # nothing cached
    await resolver.close()


async def test_redirects_are_limited(origin: Origin, store: MemoryStore) -> None:
    origin.docs["/ctx"] = orjson.dumps(CTX)
    resolver = resolver_for(store)
    with pytest.raises(LdContextNotAvailable):
        await resolver.active(origin.url("/redirect/0"))  # 11 redirects
    assert sum(v for k, v in origin.hits.items() if k.startswith("/redirect/")) <= 5
    await resolver.close()


async def test_import_chains_are_followed_up_to_a_depth(origin: Origin, store: MemoryStore) -> None:
    for n in range(12):
        origin.docs[f"/chain/{n}"] = orjson.dumps({"@context": [origin.url(f"/chain/{n + 1}")]})
    origin.docs["/chain/12"] = orjson.dumps(CTX)
    origin.docs["/short/0"] = orjson.dumps({"@context": [origin.url("/short/1")]})
    origin.docs["/short/1"] = orjson.dumps(CTX)
    resolver = resolver_for(store)
    short = await resolver.active(origin.url("/short/0"))
    assert short.expand_term("speed") == "https://example.org/speed"
    with pytest.raises(LdContextNotAvailable, match="deeper"):
        await resolver.active(origin.url("/chain/0"))
    await resolver.close()


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.org/ctx"])
async def test_only_http_urls_are_fetched(store: MemoryStore, url: str) -> None:
    resolver = resolver_for(store)
    with pytest.raises((LdContextNotAvailable, BadRequestData)):
        await resolver.active(url)


async def test_core_contexts_are_never_fetched(store: MemoryStore) -> None:
    resolver = resolver_for(store, timeout=0.01)
    for version in ("1.3", "1.6", "1.7", "1.8", "1.9"):
        url = f"https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v{version}.jsonld"
        assert (await resolver.active(url)).expand_term("location") == (
            "https://uri.etsi.org/ngsi-ld/location"
        )


async def test_inline_contexts_get_one_hosted_url(store: MemoryStore) -> None:
    resolver = resolver_for(store, base_url="http://broker.example:1026")
    inline = {"speed": "https://example.org/speed"}
    first = await resolver.response_url(inline)
    assert first.startswith("http://broker.example:1026/ngsi-ld/v1/jsonldContexts/")
    assert await resolver.response_url(dict(inline)) == first
    record = await store.get_context(first)
    assert record is not None and record.kind == "ImplicitlyCreated"
    # the hosted URL resolves locally, without HTTP
    assert (await resolver.active(first)).expand_term("speed") == "https://example.org/speed"


async def test_the_default_policy_refuses_loopback_with_the_generic_message(
    origin: Origin, store: MemoryStore, caplog: pytest.LogCaptureFixture
) -> None:
    origin.docs["/ctx"] = orjson.dumps(CTX)
    resolver = resolver_for(store, outbound=OutboundPolicy())
    caplog.set_level("INFO", logger="broker.contexts")
    with pytest.raises(LdContextNotAvailable) as info:
        await resolver.active(origin.url("/ctx"))
    assert info.value.detail == f"@context {origin.url('/ctx')} could not be retrieved"
    assert origin.hits == {}  # never called
    assert "loopback" in caplog.text  # the reason is in the log only
    await resolver.close()


async def test_a_redirect_to_a_refused_address_is_not_followed(
    origin: Origin, store: MemoryStore
) -> None:
    # the origin is allowed (by its port's address); it redirects to the metadata service
    app = web.Application()

    async def bounce(request: web.Request) -> web.Response:
        raise web.HTTPFound("http://169.254.169.254/latest/meta-data/")

    app.router.add_get("/ctx", bounce)
    server = TestServer(app)
    await server.start_server()
    resolver = resolver_for(store, timeout=5.0)
    with pytest.raises(LdContextNotAvailable):
        await resolver.active(str(server.make_url("/ctx")))
    await server.close()
    await resolver.close()


@pytest.mark.parametrize("case", ["missing", "closed-port", "slow"])
async def test_clients_cannot_tell_a_closed_port_from_a_timeout_or_an_error(
    origin: Origin, store: MemoryStore, case: str
) -> None:
    origin.docs["/slow"] = orjson.dumps(CTX)
    origin.delay = 1.0 if case == "slow" else 0.0
    url = "http://127.0.0.1:9/ctx" if case == "closed-port" else origin.url(f"/{case}")
    resolver = resolver_for(store, timeout=0.3)
    with pytest.raises(LdContextNotAvailable) as info:
        await resolver.active(url)
    assert info.value.detail == f"@context {url} could not be retrieved"
    await resolver.close()


async def test_a_failed_fetch_is_not_repeated_within_the_failure_ttl(
    origin: Origin, store: MemoryStore
) -> None:
    resolver = resolver_for(store, failure_ttl=30.0)
    for _ in range(3):
        with pytest.raises(LdContextNotAvailable):
            await resolver.active(origin.url("/later"))
    assert origin.hits["/later"] == 1
    origin.docs["/later"] = orjson.dumps(CTX)
    resolver.failure_ttl = 0.0
    without = resolver_for(store, failure_ttl=0.0)
    assert (await without.active(origin.url("/later"))).expand_term("speed")
    await resolver.close()
    await without.close()


async def test_too_many_remote_contexts_are_refused_before_fetching_and_not_cached(
    origin: Origin, store: MemoryStore
) -> None:
    for n in range(40):
        origin.docs[f"/c/{n}"] = orjson.dumps({"@context": {f"t{n}": f"https://e.org/{n}"}})
    resolver = resolver_for(store, max_remote=8)
    with pytest.raises(BadRequestData, match="more than 8 remote"):
        await resolver.active([origin.url(f"/c/{n}") for n in range(40)])
    assert origin.hits == {}
    # imports that go past the bound in a later round: refused, and nothing is kept
    origin.docs["/wide"] = orjson.dumps({"@context": [origin.url(f"/c/{n}") for n in range(10)]})
    with pytest.raises(BadRequestData):
        await resolver.active(origin.url("/wide"))
    assert origin.hits == {"/wide": 1}
    assert await store.list_contexts() == []
    within = await resolver.active([origin.url(f"/c/{n}") for n in range(8)])
    assert within.expand_term("t7") == "https://e.org/7"
    assert len(await store.list_contexts()) == 8
    await resolver.close()
