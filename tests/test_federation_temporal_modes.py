"""Registration modes applied to temporal reads (4.3.6.2, 4.3.6.3, 5.7.3, 5.7.4), as the
entity reads apply them: what an exclusive or redirect registration covers comes from its
source only (the hub's own history of it is left out); an auxiliary source's series of an
Attribute is used only where no other party has one in the window."""

from __future__ import annotations

from typing import Any

from test_federation_forwarding import JSON, Federation, fed, registration, url_of
from test_federation_temporal import OPS, TEMPORAL, at, history, points

__all__ = ["fed"]

LAMP1 = "urn:ngsi-ld:Lamp:1"
WINDOW = f"timerel=after&timeAt={at(0)}"


async def post_all(*pairs: tuple[Any, dict[str, Any]]) -> None:
    for client, body in pairs:
        resp = await client.post(TEMPORAL, json=body, headers=JSON)
        assert resp.status in (201, 204), await resp.text()


def values(entity: dict[str, Any], name: str) -> list[Any]:
    return [v for _, v in points(entity, name)]


async def test_exclusive_hides_the_hubs_instances_of_the_attributes_it_holds(
        fed: Federation) -> None:
    source = await fed.source()
    await post_all((fed.hub, history(1, power=[(1, 10), (3, 30)], colour=[(1, 7)])),
                   (source, history(1, power=[(2, 20), (4, 40)], colour=[(2, 8)])))
    fed.register(registration(url_of(source), mode="exclusive", operations=OPS, information=[
        {"entities": [{"id": LAMP1, "type": "Lamp"}], "propertyNames": ["power"]}]))
    got = await (await fed.hub.get(f"{TEMPORAL}/{LAMP1}")).json()
    # power from the source alone; colour, not registered, only from the hub
    assert values(got, "power") == [20, 40]
    assert values(got, "colour") == [7]
    queried = await (await fed.hub.get(f"{TEMPORAL}?type=Lamp&{WINDOW}")).json()
    assert [(e["id"], values(e, "power")) for e in queried] == [(LAMP1, [20, 40])]
    # local=true: the hub's own history, as it is
    local = await (await fed.hub.get(f"{TEMPORAL}/{LAMP1}?local=true")).json()
    assert values(local, "power") == [10, 30]


async def test_an_exclusive_source_answering_nothing_leaves_the_attribute_empty(
        fed: Federation) -> None:
    source = await fed.source()
    await post_all((fed.hub, history(1, power=[(1, 10)], colour=[(1, 7)])))
    fed.register(registration(url_of(source), mode="exclusive", operations=OPS, information=[
        {"entities": [{"id": LAMP1, "type": "Lamp"}], "propertyNames": ["power"]}]))
    got = await (await fed.hub.get(f"{TEMPORAL}/{LAMP1}")).json()
    assert "power" not in got and values(got, "colour") == [7]


async def test_redirect_leaves_out_the_hubs_history_of_what_it_covers(fed: Federation) -> None:
    source = await fed.source()
    await post_all((fed.hub, history(1, power=[(1, 10), (3, 30)])),
                   (fed.hub, history(3, power=[(1, 11)])),
                   (source, history(1, power=[(2, 20)])),
                   (source, history(2, power=[(5, 50)])))
    fed.register(registration(url_of(source), mode="redirect", operations=OPS))
    got = await (await fed.hub.get(f"{TEMPORAL}/{LAMP1}")).json()
    assert values(got, "power") == [20]
    # an Entity only the hub holds is not answered: the redirect source holds every Lamp
    assert (await fed.hub.get(f"{TEMPORAL}/urn:ngsi-ld:Lamp:3")).status == 404
    queried = await (await fed.hub.get(f"{TEMPORAL}?type=Lamp&{WINDOW}&count=true")).json()
    assert [(e["id"], values(e, "power")) for e in queried] == [
        (LAMP1, [20]), ("urn:ngsi-ld:Lamp:2", [50])]
    local = await (await fed.hub.get(f"{TEMPORAL}?type=Lamp&{WINDOW}&local=true")).json()
    assert [e["id"] for e in local] == [LAMP1, "urn:ngsi-ld:Lamp:3"]


async def test_redirect_of_some_attributes_keeps_the_hubs_others(fed: Federation) -> None:
    source = await fed.source()
    await post_all((fed.hub, history(1, power=[(1, 10)], colour=[(1, 7)])),
                   (source, history(1, power=[(2, 20)], colour=[(2, 8)])))
    fed.register(registration(url_of(source), mode="redirect", operations=OPS, information=[
        {"entities": [{"type": "Lamp"}], "propertyNames": ["power"]}]))
    got = await (await fed.hub.get(f"{TEMPORAL}/{LAMP1}")).json()
    assert values(got, "power") == [20] and values(got, "colour") == [7]


async def test_auxiliary_fills_only_what_no_other_party_has(fed: Federation) -> None:
    source = await fed.source()
    await post_all((fed.hub, history(1, power=[(1, 10), (3, 30)])),
                   (source, history(1, power=[(2, 20), (4, 40)], height=[(2, 5)])),
                   (source, history(2, power=[(5, 50)])))
    fed.register(registration(url_of(source), mode="auxiliary", operations=OPS))
    got = await (await fed.hub.get(f"{TEMPORAL}/{LAMP1}")).json()
    # the hub has power: the auxiliary series is not used; height only it has
    assert values(got, "power") == [10, 30]
    assert values(got, "height") == [5]
    # in a window where the hub has no power, the auxiliary source fills it
    late = await (await fed.hub.get(
        f"{TEMPORAL}/{LAMP1}?timerel=after&timeAt=2024-01-01T03:30:00Z&attrs=power")).json()
    assert values(late, "power") == [40]
    only = await (await fed.hub.get(f"{TEMPORAL}/urn:ngsi-ld:Lamp:2")).json()
    assert values(only, "power") == [50]


async def test_auxiliary_gives_way_to_an_inclusive_source_too(fed: Federation) -> None:
    inclusive, auxiliary = await fed.source(), await fed.source()
    await post_all((inclusive, history(1, power=[(2, 20)])),
                   (auxiliary, history(1, power=[(4, 40)], height=[(2, 5)])))
    fed.register(registration(url_of(inclusive), operations=OPS))
    fed.register(registration(url_of(auxiliary), "urn:ngsi-ld:ContextSourceRegistration:aux",
                              mode="auxiliary", operations=OPS))
    got = await (await fed.hub.get(f"{TEMPORAL}/{LAMP1}")).json()
    assert values(got, "power") == [20] and values(got, "height") == [5]
    queried = await (await fed.hub.get(f"{TEMPORAL}?type=Lamp&{WINDOW}")).json()
    assert [(e["id"], values(e, "power")) for e in queried] == [(LAMP1, [20])]


async def test_inclusive_merges_every_partys_instances(fed: Federation) -> None:
    source = await fed.source()
    await post_all((fed.hub, history(1, power=[(1, 10)])),
                   (source, history(1, power=[(2, 20)])))
    fed.register(registration(url_of(source), mode="inclusive", operations=OPS))
    got = await (await fed.hub.get(f"{TEMPORAL}/{LAMP1}")).json()
    assert values(got, "power") == [10, 20]
