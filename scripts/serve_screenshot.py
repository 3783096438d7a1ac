"""A screenshot of `rnnlab serve` in a real headless browser (Debian's chromium), through Chrome's DevTools
protocol: the page has to run for real seconds (its websocket starts the app), which chromium's own
--screenshot does not wait for. docs/images/serve.png was taken so:

    rnnlab serve --port 8777 --runs-dir RUNS &
    python scripts/serve_screenshot.py http://127.0.0.1:8777/ docs/images/serve.png 15

Needs chromium (apt-get install chromium) and aiohttp (textual-serve's dependency).
"""
from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys

import aiohttp

PORT = 9333  # chromium's DevTools port


async def screenshot(url: str, out: str, seconds: float) -> None:
    chrome = subprocess.Popen(["chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                               f"--remote-debugging-port={PORT}", "--window-size=1280,800", "about:blank"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        async with aiohttp.ClientSession() as session:
            pages = []
            for _ in range(100):  # until chromium answers on its port
                try:
                    async with session.get(f"http://127.0.0.1:{PORT}/json") as response:
                        pages = [page for page in await response.json() if page["type"] == "page"]
                except aiohttp.ClientError:
                    pass
                if pages:
                    break
                await asyncio.sleep(0.2)
            async with session.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0) as devtools:
                calls = 0

                async def call(method: str, **params) -> dict:
                    nonlocal calls
                    calls += 1
                    await devtools.send_json({"id": calls, "method": method, "params": params})
                    while True:  # events arrive between the answers: skip them
                        message = json.loads((await devtools.receive()).data)
                        if message.get("id") == calls:
                            return message.get("result", {})

                await call("Page.enable")
                await call("Page.navigate", url=url)
                await asyncio.sleep(seconds)  # real time: the app starts behind the page's websocket
                shot = await call("Page.captureScreenshot", format="png")
                with open(out, "wb") as handle:
                    handle.write(base64.b64decode(shot["data"]))
    finally:
        chrome.kill()


if __name__ == "__main__":
    asyncio.run(screenshot(sys.argv[1], sys.argv[2], float(sys.argv[3]) if len(sys.argv) > 3 else 15.0))
