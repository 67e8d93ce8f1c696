"""Screenshots of the explorer for the README (development time): docs/img/explorer-*.png.

    python frontend/scripts/screenshots.py   # from the repository root, in the venv

Starts ``ngsi-ld-broker demo`` (400 lampposts, simulator on) on port 1049 in a
temporary folder and drives Debian's Chromium with Playwright.  For the history
chart, which a fresh demo has only seconds of, it first adds the eight past hours
of one air-quality sensor's NO2 readings (every 5 minutes, from the demo's own
daily curves) through the temporal API (POST /temporal/entities/{id}/attrs).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from playwright.async_api import async_playwright

from broker.demo import HONG_KONG, lampposts
from broker.demo.dataset import readings_of

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "img"
PORT = 1049
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
LAMP = "urn:ngsi-ld:Streetlight:hk:wanchai-causewaybay:0042"
AIR = LAMP.replace("Streetlight", "AirQualityObserved")
HOURS = 8


def add_past_readings() -> None:
    """Eight hours of the sensor's NO2 readings, as the simulator would have sent them."""
    post = next(p for p in lampposts(HONG_KONG, 400, 42) if p.entity_id() == LAMP)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    instances = []
    for minutes in range(HOURS * 60, 0, -5):
        when = now - timedelta(minutes=minutes)
        instances.append({"type": "Property", "value": readings_of(post, 42, when).no2,
                          "unitCode": "GQ", "observedAt": when.strftime("%Y-%m-%dT%H:%M:%SZ")})
    base = f"http://127.0.0.1:{PORT}/ngsi-ld/v1"
    request = urllib.request.Request(
        f"{base}/temporal/entities/{AIR}/attrs", data=orjson.dumps({"no2": instances}),
        headers={"Content-Type": "application/json",
                 "Link": f"<{base}/jsonldContexts/smart-data-models>; "
                         'rel="http://www.w3.org/ns/json-ld#context"'})
    with urllib.request.urlopen(request) as resp:
        assert resp.status == 204, resp.status


async def shoot() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = await browser.new_page(viewport={"width": 1500, "height": 900})
        await page.goto(f"http://127.0.0.1:{PORT}/explorer/")
        await page.wait_for_selector("body[data-ready=true]", timeout=30000)
        await page.fill("#query-type", "Streetlight")
        await page.fill("#query-idPattern", ":hk:wanchai")
        await page.click("#query button[type=submit]")
        await page.wait_for_timeout(500)
        await page.click(f"#entities tr[data-id='{LAMP}']")
        await page.wait_for_timeout(6000)  # a round of simulated readings arrives
        await page.screenshot(path=OUT / "explorer-overview.png")
        await page.locator("#map").screenshot(path=OUT / "explorer-map.png")
        await page.fill("#query-type", "AirQualityObserved")
        await page.fill("#query-q", 'no2>30;areaServed=="Causeway Bay and Wan Chai"')
        await page.fill("#query-idPattern", "")
        await page.fill("#query-attrs", "no2,pm25,airQualityIndex")
        await page.click("#query button[type=submit]")
        await page.wait_for_timeout(800)
        await page.locator("#center").screenshot(path=OUT / "explorer-query.png")
        for fmt in ("normalized", "concise", "keyValues", "GeoJSON"):
            await page.click(f"#formats button[data-format={fmt}]")
            await page.wait_for_timeout(500)
            await page.locator("#detail").screenshot(path=OUT / f"explorer-{fmt.lower()}.png")
        add_past_readings()
        await page.fill("#query-type", "AirQualityObserved")
        await page.fill("#query-q", "")
        await page.fill("#query-attrs", "")
        await page.fill("#query-idPattern", ":hk:wanchai")
        await page.click("#query button[type=submit]")
        await page.wait_for_timeout(500)
        await page.click(f"#entities tr[data-id='{AIR}']")
        await page.click("#history-range button[data-range=day]")
        await page.wait_for_timeout(6000)  # and a live reading or so
        await page.locator("#detail").screenshot(path=OUT / "explorer-history.png")
        await browser.close()


def main() -> None:
    with tempfile.TemporaryDirectory() as data:
        demo = subprocess.Popen(
            [sys.executable, "-m", "broker", "demo", "--host", "127.0.0.1", "--port", str(PORT),
             "--data-dir", data, "--log-level", "WARNING"], stdout=subprocess.PIPE)
        try:
            assert demo.stdout is not None
            demo.stdout.readline()  # "NGSI-LD demo running ..."
            asyncio.run(shoot())
        finally:
            demo.terminate()
            demo.wait(10)


if __name__ == "__main__":
    main()
