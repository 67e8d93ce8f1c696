"""The outbound request policy (broker/outbound.py): who the broker may call.

Remote @contexts and notification endpoints on loopback, link-local (cloud
metadata), private or reserved addresses are refused unless allowed by
``--outbound-allow``; names are judged by what they resolve to.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from subscriptions_harness import Harness, room

from broker.config import Settings, load_settings
from broker.outbound import OutboundPolicy, Refused, parse_networks
from subscriptions.delivery import DeliveryError, HttpSender, MqttSender

DEFAULT = OutboundPolicy()


@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.1.2.3", "169.254.169.254", "10.0.0.1", "10.255.1.2", "172.16.0.1",
    "192.168.1.1", "100.64.0.1", "0.0.0.0", "224.0.0.1", "240.0.0.1", "255.255.255.255",
    "::1", "::", "fe80::1", "fd00::1", "::ffff:127.0.0.1", "::ffff:169.254.169.254", "ff02::1",
])
def test_the_default_policy_refuses_internal_addresses(address: str) -> None:
    assert not DEFAULT.permits(address)
    assert DEFAULT.refusal(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"])
def test_the_default_policy_allows_public_addresses(address: str) -> None:
    assert DEFAULT.permits(address)


def test_the_allow_list_opens_exactly_its_networks() -> None:
    policy = OutboundPolicy.parse("127.0.0.0/8, 10.1.0.0/16,::1")
    assert policy.permits("127.0.0.1") and policy.permits("10.1.200.3") and policy.permits("::1")
    assert policy.permits("::ffff:127.0.0.1")  # judged as the IPv4 address it carries
    assert not policy.permits("10.2.0.1") and not policy.permits("169.254.169.254")


@given(st.ip_addresses())
def test_an_address_is_allowed_only_if_global_or_listed(address: ipaddress._BaseAddress) -> None:
    mapped = getattr(address, "ipv4_mapped", None) or address
    assert DEFAULT.permits(str(address)) == (
        mapped.is_global and not mapped.is_multicast and not mapped.is_reserved
        and not mapped.is_private and not mapped.is_loopback and not mapped.is_link_local)
    assert OutboundPolicy.parse("0.0.0.0/0,::/0").permits(str(address))


async def test_names_are_judged_by_the_addresses_they_resolve_to() -> None:
    with pytest.raises(Refused, match="loopback"):
        await DEFAULT.check("http://localhost:8080/notify")
    with pytest.raises(Refused):
        await DEFAULT.check("http://169.254.169.254/latest/meta-data/")
    with pytest.raises(Refused):
        await DEFAULT.check("https://[::1]/x")
    with pytest.raises(Refused, match="does not resolve"):
        await DEFAULT.check("http://no-such-host.invalid/x")
    with pytest.raises(Refused):
        await DEFAULT.check("file:///etc/passwd")
    assert await OutboundPolicy.parse("127.0.0.0/8").check("mqtt://127.0.0.1/topic") \
        == ["127.0.0.1"]
    assert "127.0.0.1" in await OutboundPolicy.parse("127.0.0.0/8,::1").check(
        "http://localhost:1/")


def test_the_option_takes_networks_and_refuses_nonsense() -> None:
    assert load_settings(["--outbound-allow", "127.0.0.0/8,::1"]).outbound_allow \
        == "127.0.0.0/8,::1"
    assert Settings().outbound_allow == ""
    with pytest.raises(SystemExit):
        load_settings(["--outbound-allow", "localhost"])
    assert parse_networks("127.0.0.1/8") == (ipaddress.ip_network("127.0.0.0/8"),)


@pytest.mark.parametrize("uri", ["http://127.0.0.1:9/n", "https://127.0.0.1:9/n",
                                 "http://localhost:9/n", "https://[::1]:9/n"])
async def test_http_notifications_to_refused_addresses_fail_without_a_connection(uri: str) -> None:
    sender = HttpSender(DEFAULT)
    with pytest.raises(DeliveryError):
        await sender.send(uri, {}, b"{}", 2.0)
    assert not sender.pool._idle
    await sender.close()


async def test_mqtt_notifications_to_refused_addresses_fail() -> None:
    sender = MqttSender(DEFAULT)
    with pytest.raises(DeliveryError, match="Refused"):
        await sender.send("mqtt://127.0.0.1:1/topic", {}, {}, {}, 2.0)
    await sender.close()


@pytest.fixture
async def default_broker() -> AsyncIterator[Harness]:
    harness = await Harness(settings=Settings(store="memory:")).start()  # no allow-list
    yield harness
    await harness.close()


async def test_the_broker_by_default_does_not_notify_a_loopback_endpoint(
    default_broker: Harness,
) -> None:
    h = default_broker
    sub_id = await h.subscribe({"entities": [{"type": "Room"}],
                                "notification": {"endpoint": {"uri": h.receiver.url("n")}}})
    await h.create(room(1))
    for _ in range(100):
        await h.manager.drain()
        if "lastFailure" in (await h.subscription(sub_id))["notification"]:
            break
        await asyncio.sleep(0.05)
    sub = await h.subscription(sub_id)
    assert sub["notification"]["status"] == "failed"
    assert h.receiver.received == []


async def test_the_broker_by_default_refuses_a_loopback_context(default_broker: Harness) -> None:
    h = default_broker
    link = f'<{h.receiver.url("ctx.jsonld")}>; rel="http://www.w3.org/ns/json-ld#context"'
    status, problem, _ = await h.request("GET", "/ngsi-ld/v1/entities?type=Room",
                                         headers={"Link": link})
    assert status == 504
    assert problem["type"] == "https://uri.etsi.org/ngsi-ld/errors/LdContextNotAvailable"
    assert problem["detail"].endswith("could not be retrieved")
