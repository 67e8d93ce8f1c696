"""What the explorer's browser tests share: Debian's Chromium, a demo broker, a page.

The demo runs in its own process (``python -m broker demo``) on a small data set
without its simulator, so that the only changes are those a test makes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from conformance.process import free_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@contextmanager
def demo_broker(data_dir: Path, size: int, *extra: str) -> Iterator[str]:
    """``ngsi-ld-broker demo`` with ``size`` lampposts and no simulator: its base URL."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "broker", "demo", "--host", "127.0.0.1", "--port", str(port),
         "--data-dir", str(data_dir), "--size", str(size), "--interval", "0",
         "--log-level", "WARNING", *extra],
        env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        assert "NGSI-LD demo running" in process.stdout.readline().decode()
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


@asynccontextmanager
async def explorer_page(playwright_api: Any, base_url: str,
                        viewport: Sequence[int] = (1400, 900)) -> AsyncIterator[Any]:
    """The explorer loaded in headless Chromium; ``page.errors`` collects console errors."""
    async with playwright_api.async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page(
                viewport={"width": viewport[0], "height": viewport[1]})
            page.errors = []
            page.on("console", lambda m: m.type == "error" and page.errors.append(m.text))
            page.on("pageerror", lambda e: page.errors.append(str(e)))
            await page.goto(base_url + "/explorer/")
            await page.wait_for_selector("body[data-ready=true]", timeout=15000)
            yield page
        finally:
            await browser.close()
