"""Screenshots of the explorer for the README (development time): docs/img/explorer-*.png.

    python frontend/scripts/screenshots.py   # from the repository root, in the venv

Starts ``ngsi-ld-broker demo`` (400 lampposts, simulator on) on port 1049 in a
temporary folder and drives Debian's Chromium with Playwright.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
from pathlib import Path

from playwright.async_api import async_playwright

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "img"
PORT = 1049
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
LAMP = "urn:ngsi-ld:Streetlight:hk:wanchai-causewaybay:0042"


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
