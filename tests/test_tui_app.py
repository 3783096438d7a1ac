"""The app shell: help screen, command palette, front door."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from pathlib import Path

import pytest

from rnnlab.tui import make_app
from rnnlab.tui.screens.help import HelpScreen, help_text
from rnnlab.tui.screens.quit import QuitScreen
from rnnlab.tui.screens.runs import RunsScreen
from tui_fixtures import screen_text, start_endless_trainer


def test_help_lists_every_binding_of_every_screen():
    from rnnlab.tui.screens.caption import CaptionScreen
    from rnnlab.tui.screens.heads import HeadsScreen
    from rnnlab.tui.screens.launch import LaunchScreen
    from rnnlab.tui.screens.live import LiveScreen
    from rnnlab.tui.screens.sample import SampleScreen

    text = help_text()
    for screen in (RunsScreen, LiveScreen, LaunchScreen, SampleScreen, HeadsScreen, CaptionScreen):
        for binding in screen.BINDINGS:
            description = binding.description if hasattr(binding, "description") else binding[2]
            if description:
                assert description in text, (screen.__name__, description)
    assert "`[`" in text and "left_square_bracket" not in text  # keys as the user types them


def test_help_names_keys_as_the_user_reads_them():
    """Space, escape and tab were printed raw (blank cells), "tab,p" as a tab and ", p"."""
    rows = {line.rsplit("|", 2)[-2].strip(): line.split("|")[1].strip()
            for line in help_text().splitlines() if line.startswith("| ") and "---" not in line}
    assert rows["Mark"] == "`space`" and rows["Clear filter"] == "`escape`" and rows["Filter"] == "`/`"
    assert rows["Back"] == "`escape`" and rows["Cancel"] == "`escape`"
    assert rows["Plots page"] == "`tab` / `p`" and rows["Previous unit"] == "`[`"
    assert rows["Probe example"] == "`ctrl+e`"  # the attention screen is listed too
    assert not any(char in help_text() for char in "\t\x1b")


def test_help_screen_shows_the_key_names(tmp_path):
    async def main():
        app = make_app(runs_dir=tmp_path)
        async with app.run_test(size=(120, 40)) as pilot:
            await open_help(pilot)
            lines = screen_text(app).splitlines()
            assert any("space" in line and "Mark" in line for line in lines), "\n".join(lines)
            assert any("escape" in line and "Clear filter" in line for line in lines)

    asyncio.run(main())


def test_help_opens_with_question_mark_and_closes_with_escape(tmp_path):
    async def main():
        app = make_app(runs_dir=tmp_path)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            await pilot.press("question_mark")
            assert isinstance(app.screen, HelpScreen)
            await pilot.press("escape")
            assert isinstance(app.screen, RunsScreen)

    asyncio.run(main())


def test_palette_offers_new_run_and_recent_runs(tmp_path):
    from rnnlab import store

    run = store.create_run(tmp_path, "palette")
    run.write_status({"state": "finished", "started": 1.0})

    async def main():
        app = make_app(runs_dir=tmp_path)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            titles = [command.title for command in app.get_system_commands(app.screen)]
            assert "New run" in titles and "Help" in titles and f"Open run {run.id}" in titles

    asyncio.run(main())


async def open_help(pilot):
    await pilot.pause()
    await pilot.press("question_mark")
    markdown = pilot.app.screen.query_one("Markdown")
    for _ in range(50):  # Markdown builds its blocks asynchronously: wait until they are all there
        await pilot.pause(0.05)
        if len(markdown.children) >= 10:
            break
    await pilot.wait_for_scheduled_animations()
    await pilot.pause(0.2)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_snapshot_help_screen(tmp_path, snap_compare, size, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the browser behind the help names its runs dir: keep it the same

    assert snap_compare(make_app(runs_dir=Path("runs")), terminal_size=size, run_before=open_help)


async def ask_to_quit(pilot) -> None:
    await pilot.pause()
    await pilot.press("ctrl+q")
    await pilot.pause()
    assert isinstance(pilot.app.screen, QuitScreen)


def test_quit_with_a_running_trainer_asks_and_stop_stops_it(tmp_path):
    """A real trainer started from the app: ctrl+q names it; escape stays; s stops it (SIGINT, exit 130)."""
    runs_dir = tmp_path / "runs"
    process, run = start_endless_trainer(tmp_path, runs_dir)

    async def main():
        app = make_app(runs_dir=runs_dir)
        app.children_started.append(process)
        async with app.run_test(size=(80, 24)) as pilot:
            await ask_to_quit(pilot)
            text = screen_text(app)
            assert "1 trainer started here is still running" in text and f"pid {process.pid}: {run.id}" in text
            await pilot.press("escape")  # cancel: the app goes on, so does the trainer
            await pilot.pause()
            assert isinstance(app.screen, RunsScreen) and process.poll() is None
            await ask_to_quit(pilot)
            await pilot.press("s")
            await pilot.pause()
        assert app.return_code == 0 and process.wait(timeout=30) == 130  # stopped the way `s` stops a run
        assert run.read_status()["state"] == "stopped"

    try:
        asyncio.run(main())
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_quit_can_leave_trainers_running_and_quits_at_once_without_any(tmp_path):
    child = subprocess.Popen(["sleep", "60"], start_new_session=True)

    async def main():
        app = make_app(runs_dir=tmp_path)
        app.children_started.append(child)
        async with app.run_test(size=(80, 24)) as pilot:
            await ask_to_quit(pilot)
            assert "pid %d: starting" % child.pid in screen_text(app)  # no run directory names it yet
            await pilot.press("l")
            await pilot.pause()
        assert child.poll() is None  # left running, as asked
        quiet = make_app(runs_dir=tmp_path)
        async with quiet.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            await pilot.press("ctrl+q")  # nothing running: no question
            await pilot.pause()
            assert not isinstance(quiet.screen, QuitScreen)
        assert quiet.return_code == 0

    try:
        asyncio.run(main())
    finally:
        child.kill()
        child.wait()
