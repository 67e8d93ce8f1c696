"""The explorer in a real browser: headless Chromium (Debian's) driven by Playwright.

Skipped, with the reason, where Chromium or Playwright is missing; .ci/run
installs Chromium so CI runs them.  The broker is the demo on a small data set
without its simulator, so that the only change is the one a test makes
(tests/explorer_browser.py).  The history chart: tests/test_explorer_history.py.
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson
import pytest

from tests.explorer_browser import CHROMIUM, demo_broker, explorer_page

playwright_api = pytest.importorskip("playwright.async_api",
                                     reason="Playwright (pip install playwright) is missing")
pytestmark = pytest.mark.skipif(CHROMIUM is None,
                                reason="no Chromium here (apt-get install chromium)")

LAMP = "urn:ngsi-ld:Streetlight:hk:central:0001"
SIZE = 8  # lampposts: 4 located entities each


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with demo_broker(tmp_path_factory.mktemp("demo"), SIZE) as base_url:
        yield base_url


@pytest.fixture
async def page(demo: str) -> AsyncIterator[Any]:
    async with explorer_page(playwright_api, demo) as page:
        yield page


async def test_the_page_loads_and_shows_the_types_and_the_map(page: Any) -> None:
    counts = {await li.get_attribute("data-type"): await (await li.query_selector(".count"))
              .inner_text() for li in await page.query_selector_all("#types li")}
    assert counts["Streetlight"] == str(SIZE)
    assert counts["AirQualityObserved"] == str(SIZE) and counts["Catalogue"] == "1"
    assert await page.get_attribute("#map", "data-markers") == str(4 * SIZE)
    assert await page.locator("#entities tbody tr").count() > 0
    tenants = await page.eval_on_selector_all("#tenant option", "os => os.map(o => o.text)")
    assert tenants[0] == "(default)"
    assert await page.input_value("#tenant") == ""
    assert page.errors == []


async def test_an_update_through_the_api_appears_within_two_seconds(page: Any, demo: str) -> None:
    await page.fill("#query-type", "Streetlight")
    await page.click("#query button[type=submit]")
    await page.click(f"#entities tr[data-id='{LAMP}']")
    await page.click("#formats button[data-format=keyValues]")
    await page.wait_for_function("document.getElementById('detail-body').textContent"
                                 ".includes('powerState')")
    current = orjson.loads(await page.inner_text("#detail-body"))["powerState"]
    wanted = "low" if current != "low" else "bootingUp"
    request = urllib.request.Request(
        f"{demo}/ngsi-ld/v1/entities/{LAMP}/attrs/powerState", method="PATCH",
        data=orjson.dumps({"value": wanted}),
        headers={"Content-Type": "application/json",
                 "Link": f'<{demo}/ngsi-ld/v1/jsonldContexts/smart-data-models>; '
                         'rel="http://www.w3.org/ns/json-ld#context"'})
    started = time.monotonic()
    with urllib.request.urlopen(request) as resp:
        assert resp.status == 204
    await page.wait_for_function(
        f"document.getElementById('detail-body').textContent.includes('\"{wanted}\"')",
        timeout=2000)
    assert time.monotonic() - started < 2.0
    row = await page.inner_text(f"#entities tr[data-id='{LAMP}']")
    assert wanted in row  # the list shows it too
    assert page.errors == []


@pytest.mark.parametrize("fmt, shows, hides", [
    ("normalized", '"type": "Property"', None),
    ("concise", '"powerState"', '"type": "Property"'),
    ("keyValues", '"status": "', '"value"'),
    ("GeoJSON", '"type": "Feature"', None),
])
async def test_the_detail_view_shows_each_representation(page: Any, fmt: str, shows: str,
                                                          hides: str | None) -> None:
    await page.fill("#query-type", "Streetlight")
    await page.click("#query button[type=submit]")
    await page.click(f"#entities tr[data-id='{LAMP}']")
    await page.click(f"#formats button[data-format={fmt}]")
    # the previous representation may still show what this one shows: wait for both
    # conditions, so the check reads the new rendering
    condition = f"document.getElementById('detail-body').textContent.includes({shows!r})"
    if hides is not None:
        condition += f" && !document.getElementById('detail-body').textContent.includes({hides!r})"
    await page.wait_for_function(condition)
    text = await page.inner_text("#detail-body")
    assert orjson.loads(text)["id"] == LAMP
    if hides is not None:
        assert hides not in text
    assert page.errors == []


async def test_the_query_builder_shows_the_curl_command(page: Any) -> None:
    await page.fill("#query-type", "AirQualityObserved")
    await page.fill("#query-q", "no2>0")
    await page.click("#query button[type=submit]")
    curl = await page.inner_text("#curl")
    assert "--data-urlencode 'type=AirQualityObserved'" in curl
    assert "--data-urlencode 'q=no2>0'" in curl and "smart-data-models" in curl
    await page.wait_for_function("document.getElementById('query-status').textContent"
                                 f".startsWith('{SIZE} entities')")
    await page.fill("#query-q", "no2===")
    await page.click("#query button[type=submit]")
    await page.wait_for_function("document.getElementById('query-status').className == 'error'")
    assert "400" in await page.inner_text("#query-status")



async def test_a_tenant_created_after_the_page_loaded_is_offered(page: Any, demo: str) -> None:
    tenant = f"late{time.monotonic_ns()}"
    request = urllib.request.Request(
        f"{demo}/ngsi-ld/v1/entities", method="POST",
        data=orjson.dumps({"id": "urn:ngsi-ld:Sensor:late", "type": "Sensor",
                           "level": {"type": "Property", "value": 1}}),
        headers={"Content-Type": "application/json", "NGSILD-Tenant": tenant})
    with urllib.request.urlopen(request) as resp:
        assert resp.status == 201
    assert await page.locator(f"#tenant option[value='{tenant}']").count() == 0
    await page.focus("#tenant")
    await page.wait_for_selector(f"#tenant option[value='{tenant}']", state="attached")
    await page.select_option("#tenant", tenant)
    await page.wait_for_function("[...document.querySelectorAll('#types li')]"
                                 ".map(li => li.dataset.type).join() === 'Sensor'")
    assert page.errors == []


async def test_the_map_shows_every_geo_property(page: Any, demo: str) -> None:
    tenant = f"geo{time.monotonic_ns()}"
    square = [[[114.15, 22.28], [114.16, 22.28], [114.16, 22.29], [114.15, 22.28]]]
    request = urllib.request.Request(
        f"{demo}/ngsi-ld/v1/entities", method="POST",
        data=orjson.dumps({
            "id": "urn:ngsi-ld:Camera:1", "type": "Camera",
            "location": {"type": "GeoProperty",
                         "value": {"type": "Point", "coordinates": [114.155, 22.285]}},
            "observationSpace": {"type": "GeoProperty",
                                 "value": {"type": "Polygon", "coordinates": square}}}),
        headers={"Content-Type": "application/json", "NGSILD-Tenant": tenant})
    with urllib.request.urlopen(request) as resp:
        assert resp.status == 201
    await page.focus("#tenant")
    await page.wait_for_selector(f"#tenant option[value='{tenant}']", state="attached")
    await page.select_option("#tenant", tenant)
    # the location and the observed space: two shapes of one entity
    await page.wait_for_function("document.getElementById('map').dataset.markers === '2'")
    assert page.errors == []
