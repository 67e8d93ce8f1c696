"""ngsi-ld-broker demo: the generated city, its daily curves, and the running demo."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from notify_receiver import Receiver

from broker.demo import HONG_KONG, SHANGHAI, generate, lampposts
from broker.demo.curves import Moment, lamps_on, traffic_level
from broker.demo.dataset import readings_of
from broker.demo.simulator import Simulator
from broker.schemas import ModelSchemas
from broker.smartdatamodels import DIRECTORY
from conformance.process import free_port
from ngsi_ld.entity import parse_entity
from ngsi_ld.jsonld import compile_context, core_context_url

WHEN = datetime(2026, 12, 4, 2, 30, tzinfo=UTC)  # 10:30 in Hong Kong
CONTEXT_LINK = '<{}/ngsi-ld/v1/jsonldContexts/smart-data-models>; ' \
               'rel="http://www.w3.org/ns/json-ld#context"'


def test_the_same_seed_gives_the_same_city_and_another_seed_another() -> None:
    first = generate(HONG_KONG, 40, seed=7, when=WHEN)
    assert first == generate(HONG_KONG, 40, seed=7, when=WHEN)
    other = generate(HONG_KONG, 40, seed=8, when=WHEN)
    assert first != other
    assert [e["id"] for e in first] == [e["id"] for e in other]  # same ids, other values


def test_four_hundred_lampposts_over_four_districts_with_their_sensors() -> None:
    entities = generate(HONG_KONG, 400, seed=42, when=WHEN)
    types = Counter(e["type"] for e in entities)
    assert types["Streetlight"] == 400
    assert types["AirQualityObserved"] == types["WeatherObserved"] == 400
    assert types["TrafficFlowObserved"] == 400
    assert (types["Catalogue"], types["Dataset"], types["Distribution"]) == (1, 4, 8)
    districts = Counter(e["areaServed"]["value"] for e in entities if e["type"] == "Streetlight")
    assert sorted(districts.values()) == [100, 100, 100, 100]
    light = next(e for e in entities if e["type"] == "Streetlight")
    ids = {e["id"] for e in entities}
    assert set(light["refDevice"]["object"]) <= ids  # every refDevice names an entity


def test_lampposts_stand_in_their_city_and_apart() -> None:
    for city, (west, south, east, north) in ((HONG_KONG, (114.14, 22.27, 114.24, 22.34)),
                                             (SHANGHAI, (121.42, 31.19, 121.54, 31.25))):
        posts = lampposts(city, 400, seed=1)
        assert all(west < p.point[0] < east and south < p.point[1] < north for p in posts)
        assert len({p.point for p in posts}) == 400


def test_the_generated_entities_conform_to_the_smart_data_models_schemas() -> None:
    schemas = ModelSchemas.load(DIRECTORY)
    index = orjson.loads((DIRECTORY / "index.json").read_bytes())
    compiled: dict[str, Any] = {}
    for entity in generate(HONG_KONG, 8, seed=3, when=WHEN):
        url = entity.pop("@context")
        if url not in compiled:
            document = orjson.loads((DIRECTORY / index[url]).read_bytes())
            compiled[url] = compile_context(url, {url: document}, core_context_url())
        expanded = compiled[url].expand_entity(parse_entity(entity))
        assert schemas.violations(expanded) == [], entity["id"]


def test_daily_curves() -> None:
    assert traffic_level(8.5) > 2 * traffic_level(3.5)
    assert traffic_level(18.5) > 2 * traffic_level(3.5)
    assert lamps_on(22.0) and lamps_on(5.0) and not lamps_on(12.0)
    post = lampposts(HONG_KONG, 4, seed=1)[0]
    noon = readings_of(post, 1, datetime(2026, 7, 1, 6, 0, tzinfo=UTC))  # 14:00 local
    night = readings_of(post, 1, datetime(2026, 7, 1, 19, 0, tzinfo=UTC))  # 03:00 local
    winter = readings_of(post, 1, datetime(2026, 1, 20, 6, 0, tzinfo=UTC))
    assert noon.temperature > night.temperature and noon.temperature > winter.temperature + 8
    assert noon.o3 > night.o3
    assert not noon.lamp_on and night.lamp_on and noon.power == 0 < night.power
    assert Moment.of(WHEN, 8).hour == 10.5


def test_simulator_updates_are_deterministic_and_touch_every_entity() -> None:
    posts = lampposts(HONG_KONG, 12, seed=5)
    simulator = Simulator(client=None, lampposts=posts, seed=5, interval=1)  # type: ignore[arg-type]
    updates = simulator.updates(WHEN)
    assert updates == Simulator(None, posts, 5, 1).updates(WHEN)  # type: ignore[arg-type]
    assert len(updates) == 12 * 4
    later = simulator.updates(datetime(2026, 12, 4, 10, 30, tzinfo=UTC))
    assert updates != later


def get(url: str, **headers: str) -> Any:
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as resp:
        return orjson.loads(resp.read())


@pytest.fixture
def demo(tmp_path: Path) -> Any:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "broker", "demo", "--host", "127.0.0.1", "--port", str(port),
         "--data-dir", str(tmp_path / "demo"), "--size", "8", "--interval", "0.3",
         "--outbound-allow", "127.0.0.0/8",
         "--city", "hong-kong", "--city", "shanghai", "--log-level", "WARNING"],
        env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode()  # printed once the data set is loaded
        assert "NGSI-LD demo running" in line, line
        yield url
    finally:
        process.terminate()
        process.wait(10)


def test_the_demo_serves_the_generated_cities(demo: str) -> None:
    link = CONTEXT_LINK.format(demo)
    names = {t["typeName"] for t in get(demo + "/ngsi-ld/v1/types?details=true", Link=link)}
    assert names == {"Streetlight", "AirQualityObserved", "WeatherObserved",
                     "TrafficFlowObserved", "Catalogue", "Dataset", "Distribution"}
    count = {name: get(f"{demo}/ngsi-ld/v1/types/{name}", Link=link)["entityCount"]
             for name in ("Streetlight", "AirQualityObserved", "Catalogue")}
    assert count == {"Streetlight": 16, "AirQualityObserved": 16, "Catalogue": 2}
    district = get(demo + '/ngsi-ld/v1/entities?type=Streetlight&q=areaServed=="Tsim%20Sha%20Tsui"',
                   Link=link)
    assert len(district) == 2
    # the hosted context names every attribute the demo writes: none shows as an IRI
    for name in names:
        entity = get(f"{demo}/ngsi-ld/v1/entities?type={name}&limit=1", Link=link)[0]
        assert [key for key in entity if "://" in key] == [], name


async def test_the_simulator_writes_through_the_api_so_subscriptions_fire(demo: str) -> None:
    receiver = await Receiver().start()
    try:
        subscription = {
            "type": "Subscription",
            "entities": [{"type": "AirQualityObserved",
                          "id": "urn:ngsi-ld:AirQualityObserved:hk:central:0001"}],
            "watchedAttributes": ["no2"],
            "notification": {"endpoint": {"uri": receiver.url()}},
        }
        request = urllib.request.Request(
            demo + "/ngsi-ld/v1/subscriptions", data=orjson.dumps(subscription),
            headers={"Content-Type": "application/json", "Link": CONTEXT_LINK.format(demo)})
        await asyncio.to_thread(urllib.request.urlopen, request)
        started = time.monotonic()
        notified = await receiver.wait_entities(1, timeout=10)
        assert notified and time.monotonic() - started < 10
        entity, _ = notified[0]
        assert entity["id"] == "urn:ngsi-ld:AirQualityObserved:hk:central:0001"
    finally:
        await receiver.close()


async def test_the_readings_build_a_history_by_the_time_they_were_observed(demo: str) -> None:
    link = CONTEXT_LINK.format(demo)
    air = "urn:ngsi-ld:AirQualityObserved:hk:central:0001"
    # the temporal API's default time property is observedAt: the walkthrough's queries
    # find the simulator's readings only because each carries it
    url = f"{demo}/ngsi-ld/v1/temporal/entities/{air}?attrs=no2,pm25&lastN=5"
    history: dict[str, Any] = {}
    for _ in range(100):  # the simulator ticks every 0.3 s: a few ticks
        history = await asyncio.to_thread(get, url, Link=link)
        if len(history.get("no2", [])) >= 3:
            break
        await asyncio.sleep(0.2)
    assert len(history["no2"]) >= 3 and len(history["pm25"]) >= 3
    assert all(instance["observedAt"].endswith("Z") for instance in history["no2"])
    since = (datetime.now(UTC) - timedelta(hours=1)).replace(minute=0, second=0,
                                                             microsecond=0).isoformat()
    hourly = await asyncio.to_thread(
        get, f"{demo}/ngsi-ld/v1/temporal/entities?type=AirQualityObserved&attrs=no2"
        f"&idPattern=:kwuntong-kaitak:&timerel=after&timeAt={since[:19]}Z&aggrMethods=avg"
        "&aggrPeriodDuration=PT1H&format=aggregatedValues", Link=link)
    # the README's step 5: the district's sensors (2 of 8 lampposts), each with its averages
    assert [e["id"].split(":")[-2] for e in hourly] == ["kwuntong-kaitak"] * 2
    assert all(e["no2"]["avg"][0][0] > 0 for e in hourly)


def test_every_picture_the_readme_shows_exists() -> None:
    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    pictures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", readme)
    assert len(pictures) >= 7
    assert all((root / picture).is_file() for picture in pictures)
