"""`rnnlab serve`: the real textual-serve server on 127.0.0.1, fetched and driven over its websocket as a
browser does; and its refusals (a taken port) and warning (an address others can reach)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest
from typer.testing import CliRunner

from rnnlab.cli import app

ANSI = re.compile(r"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)|\x1b[()][0-9A-B]")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(runs_dir: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "rnnlab", "serve", "--runs-dir", str(runs_dir), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)


def stop_server(server: subprocess.Popen) -> None:
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGINT)  # as Ctrl-C in its terminal: the server and the apps it started
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


async def first_screen(port: int, timeout: float = 90.0) -> tuple[str, str]:
    """The page a browser loads, then the app's screen as its websocket streams it (escape codes removed)."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(f"http://127.0.0.1:{port}/") as response:
                    assert response.status == 200
                    page = await response.text()
                    break
            except aiohttp.ClientConnectionError:
                assert time.monotonic() < deadline, "the server never answered"
                await asyncio.sleep(0.2)
        screen = ""
        async with session.ws_connect(f"ws://127.0.0.1:{port}/ws?width=100&height=30") as socket_:
            await socket_.send_str(json.dumps(["resize", {"width": 100, "height": 30}]))
            while "rnnlab" not in screen or "No runs yet" not in screen:
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"the app's first screen never came; got: {screen[-500:]!r}"
                try:
                    message = await socket_.receive(timeout=remaining)
                except asyncio.TimeoutError:
                    continue
                if message.type == aiohttp.WSMsgType.BINARY:
                    screen += ANSI.sub("", message.data.decode("utf-8", "replace"))
                elif message.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                    raise AssertionError(f"the websocket closed early; got: {screen[-500:]!r}")
    return page, screen


def test_serve_shows_the_app_in_a_browser_on_localhost(tmp_path):
    port = free_port()
    server = start_server(tmp_path / "runs", "--port", str(port))
    try:
        page, screen = asyncio.run(first_screen(port))
    finally:
        stop_server(server)
    assert f"ws://127.0.0.1:{port}/ws" in page  # the page's script opens the app's websocket
    assert "runs" in screen and "No runs yet" in screen  # the runs browser, the first screen of `rnnlab tui`
    assert "warning" not in server.stderr.read()  # localhost: nobody else can reach it


def test_serve_on_a_reachable_address_warns_first(tmp_path):
    server = start_server(tmp_path / "runs", "--host", "0.0.0.0", "--port", str(free_port()))
    try:
        line = server.stderr.readline()
    finally:
        stop_server(server)
    assert line.startswith("warning: serving on 0.0.0.0:") and "can launch, stop and delete runs" in line


def test_serve_on_a_taken_port_is_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(app, ["serve", "--port", str(port), "--runs-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [f"error: --port = {port}: in use by another program; "
                                                  "allowed: a free port (e.g. --port 8001)"]


@pytest.mark.parametrize("port", ["0", "70000", "http"])
def test_serve_refuses_a_bad_port(tmp_path, port):
    result = CliRunner().invoke(app, ["serve", "--port", port, "--runs-dir", str(tmp_path)])
    assert result.exit_code == 2 and "Traceback" not in result.output
