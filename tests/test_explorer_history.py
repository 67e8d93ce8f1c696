"""The explorer's history chart in a real browser (headless Chromium driven by Playwright).

The demo broker answers at most 4 instances of an attribute per temporal answer
here, so the page must follow the 206 pages (6.3.10) to draw what the API holds;
what it draws is compared with what the temporal API answers to the test.
"""

from __future__ import annotations

import urllib.request
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest

from tests.explorer_browser import CHROMIUM, demo_broker, explorer_page

playwright_api = pytest.importorskip("playwright.async_api",
                                     reason="Playwright (pip install playwright) is missing")
pytestmark = pytest.mark.skipif(CHROMIUM is None,
                                reason="no Chromium here (apt-get install chromium)")

SIZE = 4
AIR = "urn:ngsi-ld:AirQualityObserved:hk:central:0001"
LAMP = "urn:ngsi-ld:Streetlight:hk:central:0001"
TENANT = "district9"
SENSOR = "urn:ngsi-ld:Sensor:district9:1"


def iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def call(base_url: str, method: str, path: str, body: Any = None, tenant: str = "") -> Any:
    headers = {"Content-Type": "application/json", "Accept": "application/json",
               "Link": f"<{base_url}/ngsi-ld/v1/jsonldContexts/smart-data-models>; "
                       'rel="http://www.w3.org/ns/json-ld#context"'}
    if tenant:
        headers["NGSILD-Tenant"] = tenant
    request = urllib.request.Request(base_url + "/ngsi-ld/v1" + path, method=method,
                                     headers=headers,
                                     data=None if body is None else orjson.dumps(body))
    with urllib.request.urlopen(request) as resp:
        assert resp.status < 300
        answer = resp.read()
    return orjson.loads(answer) if answer else None


def reading(base_url: str, entity: str, attr: str, value: float, when: datetime,
            tenant: str = "") -> None:
    call(base_url, "PATCH", f"/entities/{entity}/attrs/{attr}",
         {"value": value, "observedAt": iso(when)}, tenant)


def in_window(base_url: str, entity: str, attr: str, since: datetime, tenant: str = "",
              timeproperty: str = "observedAt") -> tuple[int, float, list[float]]:
    """What the temporal API holds since ``since``: (readings, the last value, hourly avgs)."""
    query = {"id": entity, "attrs": attr, "timerel": "after", "timeAt": iso(since),
             "format": "aggregatedValues", "aggrMethods": "totalCount,avg",
             "timeproperty": timeproperty}
    count = call(base_url, "GET", "/temporal/entities?" + urlencode(
        {**query, "aggrPeriodDuration": "P30D"}), tenant=tenant)[0][attr]["totalCount"]
    hour = since.replace(minute=0, second=0, microsecond=0)  # as the page: whole hours
    hourly = call(base_url, "GET", "/temporal/entities?" + urlencode(
        {**query, "timeAt": iso(hour), "aggrPeriodDuration": "PT1H"}), tenant=tenant)
    last = call(base_url, "GET", f"/temporal/entities/{entity}?" + urlencode(
        {"attrs": attr, "lastN": 1, "options": "temporalValues", "timeproperty": timeproperty}),
        tenant=tenant)
    return (sum(bucket[0] for bucket in count), last[attr]["values"][-1][0],
            [bucket[0] for bucket in hourly[0][attr]["avg"]])


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with demo_broker(tmp_path_factory.mktemp("demo"), SIZE,
                     "--temporal-instance-limit", "4") as base_url:
        now = datetime.now(UTC)
        # a morning of readings: five within the hour, one three hours ago
        for minutes, value in ((180, 11.0), (40, 21.5), (30, 24.0), (20, 30.5), (10, 28.0),
                               (5, 26.5)):
            reading(base_url, AIR, "no2", value, now - timedelta(minutes=minutes))
        # another tenant: an entity the default tenant does not have
        call(base_url, "POST", "/entities", {
            "id": SENSOR, "type": "Sensor",
            "level": {"type": "Property", "value": 1.5, "observedAt": iso(now - timedelta(
                minutes=20))}}, tenant=TENANT)
        for minutes, value in ((10, 2.5), (1, 3.5)):
            reading(base_url, SENSOR, "level", value, now - timedelta(minutes=minutes), TENANT)
        yield base_url


@pytest.fixture
async def page(demo: str) -> AsyncIterator[Any]:
    async with explorer_page(playwright_api, demo) as page:
        yield page


async def select(page: Any, entity: str) -> None:
    await page.fill("#query-type", entity.split(":")[2])
    await page.click("#query button[type=submit]")
    await page.click(f"#entities tr[data-id='{entity}']")


async def drawn(page: Any, points: int) -> dict[str, str]:
    """Wait for the chart to hold ``points`` readings; its data attributes."""
    await page.wait_for_function(
        f"document.getElementById('history').dataset.points === '{points}'", timeout=10000)
    data: dict[str, str] = await page.evaluate(
        "({...document.getElementById('history').dataset})")
    return data


async def test_the_chart_draws_what_the_temporal_api_holds(page: Any, demo: str) -> None:
    since = datetime.now(UTC) - timedelta(hours=1)
    await select(page, AIR)
    await page.wait_for_function("document.getElementById('history-attr').value === 'no2'")
    count, last, hourly = in_window(demo, AIR, "no2", since)
    assert count == 6  # the five readings of the hour and the one the demo loaded
    data = await drawn(page, count)
    assert float(data["last"]) == last
    assert int(data["averages"]) == len(hourly)
    assert (await page.inner_text("#history-status")).startswith(f"{count} readings, ")
    assert await page.locator("#history-chart canvas").count() >= 1
    assert "hourly average" in await page.inner_text("#history-chart")
    # a day: the reading of three hours ago too, and its hour's average
    await page.click("#history-range button[data-range=day]")
    count_day, _, hourly_day = in_window(demo, AIR, "no2", since - timedelta(hours=23))
    assert count_day == count + 1
    data = await drawn(page, count_day)
    assert int(data["averages"]) == len(hourly_day) > len(hourly)
    assert page.errors == []


async def test_a_new_reading_is_added_as_it_arrives(page: Any, demo: str) -> None:
    await select(page, LAMP)
    # the first reading (an attribute with observedAt), not a static number
    await page.wait_for_function(
        "document.getElementById('history-attr').value === 'powerConsumption'")
    count, _, _ = in_window(demo, LAMP, "powerConsumption",
                            datetime.now(UTC) - timedelta(hours=1))
    await drawn(page, count)
    reading(demo, LAMP, "powerConsumption", 131.25, datetime.now(UTC))
    data = await drawn(page, count + 1)
    assert data["last"] == "131.25"
    # another attribute of the same entity: its own history (a static one, without
    # observedAt: charted by modifiedAt)
    await page.select_option("#history-attr", "powerRating")
    rating, last, _ = in_window(demo, LAMP, "powerRating", datetime.now(UTC) - timedelta(hours=1),
                                timeproperty="modifiedAt")
    assert rating == 1
    data = await drawn(page, rating)
    assert float(data["last"]) == last
    assert page.errors == []


async def test_the_chart_reads_the_chosen_tenant(page: Any, demo: str) -> None:
    await page.select_option("#tenant", TENANT)
    await page.wait_for_function("[...document.querySelectorAll('#types li')]"
                                 ".some(li => li.dataset.type === 'Sensor')")
    await select(page, SENSOR)
    count, last, _ = in_window(demo, SENSOR, "level", datetime.now(UTC) - timedelta(hours=1),
                               TENANT)
    assert (count, last) == (3, 3.5)
    data = await drawn(page, 3)
    assert data["last"] == "3.5"
    assert page.errors == []


async def test_with_the_temporal_api_off_the_chart_says_so(tmp_path: Path) -> None:
    with demo_broker(tmp_path, 1, "--temporal", "off") as base_url:
        async with explorer_page(playwright_api, base_url) as page:
            asked: list[str] = []
            page.on("request", lambda r: "/temporal/" in r.url and asked.append(r.url))
            await select(page, LAMP)
            await page.wait_for_function(
                "document.getElementById('detail-title').textContent.includes('Streetlight')")
            status = await page.inner_text("#history-status")
            assert "History is off" in status and "--temporal off" in status
            assert await page.locator("#history-chart canvas").count() == 0
            assert asked == [] and page.errors == []
