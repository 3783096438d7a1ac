"""The app shell: help screen, command palette, front door."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from rnnlab.tui import make_app
from rnnlab.tui.screens.help import HelpScreen, help_text
from rnnlab.tui.screens.runs import RunsScreen
from tui_fixtures import screen_text


def test_help_lists_every_binding_of_every_screen():
    from rnnlab.tui.screens.launch import LaunchScreen
    from rnnlab.tui.screens.live import LiveScreen
    from rnnlab.tui.screens.sample import SampleScreen

    text = help_text()
    for screen in (RunsScreen, LiveScreen, LaunchScreen, SampleScreen):
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
    assert rows["Probe example"] == "`p`"  # the attention screen is listed too
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
