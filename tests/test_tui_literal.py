"""Untrusted text from a run directory reaches the screen as literal text: no markup, no escape sequences.

A run directory may come from someone else. Its name, status.json and events are shown in the runs
browser, the live view, the compare screen and notifications; every one of those must show
`[blink]lstm` as those characters and an ESC as the four characters `\\x1b`, never obey them.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from textual.widgets import DataTable

from rnnlab import config
from rnnlab.store import RunDir
from rnnlab.tui import make_app
from rnnlab.tui.screens.compare import CompareScreen
from rnnlab.tui.screens.live import LiveScreen
from rnnlab.tui.screens.runs import RunsScreen
from tui_fixtures import screen_text, wait_for

ESC = "\x1b"
EVIL_ID = f"20261118-100000-evil{ESC}[2J{ESC}]0;pwned\x07-aaaa"
SHOWN_ID = "20261118-100000-evil\\x1b[2J\\x1b]0;pwned\\x07-aaaa"  # what the user must read
BROKEN_ID = f"20261118-090000-broken{ESC}[2J-bbbb"
ERROR = f"boom {ESC}[31mred [bold]x[/bold]"


def hostile_runs(runs_dir: Path) -> RunDir:
    """A failed run whose name, status and events are full of markup and escape sequences, plus a corrupt one."""
    run = RunDir(runs_dir / EVIL_ID)
    run.path.mkdir(parents=True)
    cfg = config.load(None, [f"name=evil{ESC}[2J[blink]name", "model.hidden=8"])
    run.config_path.write_text(cfg.to_toml())
    run.write_status({"id": EVIL_ID, "name": "evil", "arch": "[blink]lstm", "task": f"[b]charlm{ESC}[2J",
                      "state": "failed", "step": 319, "total_steps": 1000, "best_val": 1.5, "error": ERROR,
                      "started": 1_795_000_000.0, "elapsed": 4.0, "host": "elsewhere", "pid": 1})
    events = [
        {"kind": "start", "step": 0, "t": 0.0, "device": f"[i]cpu{ESC}[2J", "params": 10, "total_steps": 1000,
         "loss_unit": "nats/[blink]char", "baseline": 3.0, "baseline_label": f"uni{ESC}[2Jgram"},
        *({"kind": "train", "step": s, "t": s * 0.01, "loss": 3.0 - s / 200, "lr": 0.003, "grad_norm": 1.0,
           "clipped": False, "tokens_per_s": 1000.0} for s in range(1, 320)),
        {"kind": "log", "step": 100, "t": 1.0, "message": f"note {ESC}]0;title\x07 [blink]logged"},
        {"kind": "end", "step": 319, "t": 4.0, "state": "failed", "error": ERROR},
    ]
    run.events_path.write_text("".join(json.dumps(e) + "\n" for e in events))
    broken = runs_dir / BROKEN_ID
    broken.mkdir()
    (broken / "status.json").write_text("{not json")
    (broken / "config.toml").write_text("")
    return run


def assert_literal(text: str, *expected: str) -> None:
    assert ESC not in text and "\x07" not in text, "a raw control character reached the screen"
    for part in expected:
        assert part in text, f"{part!r} is not on the screen:\n{text}"


def test_hostile_run_is_shown_literally_in_the_browser_live_view_and_notifications(tmp_path):
    runs_dir = tmp_path / "runs"
    run = hostile_runs(runs_dir)

    async def main():
        app = make_app(runs_dir=runs_dir)
        async with app.run_test(size=(160, 40), notifications=True) as pilot:  # toasts are off by default
            await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen)
                           and app.screen.query_one(DataTable).row_count == 2, what="the runs table")
            await pilot.pause()
            assert_literal(screen_text(app), SHOWN_ID, "[blink]lstm", "[b]charlm\\x1b[2J", "319/1000")
            # the corrupt run cannot be opened: the notification names it literally
            await pilot.press("down", "enter")
            await pilot.pause(0.3)
            assert_literal(screen_text(app), "broken\\x1b[2J-bbbb: unreadable")
            app.clear_notifications()
            await pilot.press("up", "enter")
            await wait_for(pilot, lambda: isinstance(app.screen, LiveScreen) and app.screen.repaints > 0
                           and app.screen.curves.end is not None, what="the live view")
            screen = app.screen
            await wait_for(pilot, lambda: not screen.dirty, what="the plots")
            await pilot.pause(0.2)
            text = screen_text(app)
            assert_literal(text, SHOWN_ID[:40], "[blink]lstm", "[i]cpu\\x1b[2J",
                           "boom \\x1b[31mred [bold]x[/bold]",  # the header's problem line
                           "note \\x1b]0;title\\x07 [blink]logged",  # the log pane
                           "nats/[blink]char", "uni\\x1b[2Jgram")  # plot title and legend
            # `s` on a run of another host: the notification echoes its host and stays literal
            run.update_status(state="running", host=f"[blink]far{ESC}[2J")
            await wait_for(pilot, lambda: screen.state == "running", what="the new status")
            await pilot.press("s")
            await pilot.pause(0.3)
            assert_literal(screen_text(app), "[blink]far\\x1b[2J")

    asyncio.run(main())


def test_compare_shows_hostile_names_and_values_literally(tmp_path):
    runs_dir = tmp_path / "runs"
    evil = hostile_runs(runs_dir)
    other = RunDir(runs_dir / "20261118-110000-plain-cccc")
    other.path.mkdir()
    other.config_path.write_text(config.load(None, ["name=plain", "model.hidden=16"]).to_toml())
    other.write_status({"id": other.id, "state": "finished", "started": 1_795_000_001.0})
    other.events_path.write_text(json.dumps({"kind": "eval", "step": 1, "t": 0.1, "loss": 2.0}) + "\n")

    async def main():
        app = make_app(runs_dir=runs_dir)
        async with app.run_test(size=(160, 40)) as pilot:
            await pilot.pause()
            app.open_compare([evil, other])
            await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.loaded is not None,
                           what="the compare screen")
            await pilot.pause(0.3)
            # the config name labels a table column and the legends; it differs, so it is a row too
            assert_literal(screen_text(app), "evil\\x1b[2J[blink]name")

    asyncio.run(main())


def test_snapshot_hostile_run_live_view(tmp_path, snap_compare, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = hostile_runs(Path("runs"))

    async def run_before(pilot):
        pilot.app.open_live(run)
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, LiveScreen) and pilot.app.screen.repaints > 0
                       and pilot.app.screen.curves.end is not None and not pilot.app.screen.dirty, what="the data")
        await pilot.pause(0.1)

    assert snap_compare(make_app(runs_dir=Path("runs")), terminal_size=(80, 24), run_before=run_before)
