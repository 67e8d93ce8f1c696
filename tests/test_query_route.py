"""The query route's caches never change an answer: errors stay errors, contexts stay apart."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

INLINE = "application/ld+json"


async def test_a_bad_q_is_refused_every_time(client: TestClient) -> None:
    for _ in range(3):
        resp = await client.get("/ngsi-ld/v1/entities", params={"type": "T", "q": "p>>1"})
        assert resp.status == 400
        assert "position" in (await resp.json())["detail"]


async def test_the_same_q_text_follows_each_request_context(client: TestClient) -> None:
    links = []
    for host, value in (("a", 1), ("b", 2)):
        ctx = {"p": f"https://{host}.example/p", "T": f"https://{host}.example/T"}
        body = {"@context": ctx, "id": f"urn:x:{value}", "type": "T", "p": value}
        resp = await client.post(
            "/ngsi-ld/v1/entities", json=body, headers={"Content-Type": INLINE}
        )
        assert resp.status == 201
        links.append(resp.headers["Link"])  # the hosted URL of the inline context
    for link, expected in zip(links, ("urn:x:1", "urn:x:2"), strict=True):
        resp = await client.get(
            "/ngsi-ld/v1/entities", params={"type": "T", "q": "p>0"}, headers={"Link": link}
        )
        assert resp.status == 200, await resp.text()
        assert [e["id"] for e in await resp.json()] == [expected]
