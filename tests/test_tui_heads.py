"""The heads screen: an NTM run's read and write weightings, opened from the live view, following the run.

pytest-asyncio is not a dependency: each async scenario runs under `asyncio.run`.
"""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import pytest
import torch
from rich.console import Console

from rnnlab import config, store
from rnnlab.store import RunDir
from rnnlab.train import Trainer, prepare
from rnnlab.tui import make_app
from rnnlab.tui.screens.heads import HeadsScreen, used_slots
from rnnlab.tui.screens.live import LiveScreen
from tui_fixtures import FIXED_START, _freeze, copy_fixture_runs, make_fixture_runs, toasts, wait_for

NTM = "20261118-140000-tiny-ntm-eeee"
LSTM = "20261118-100000-tiny-lstm-aaaa"
SETS = ["device=cpu", "name=tiny-ntm", "model.arch=ntm", "model.hidden=12", "model.embed=4", "model.memory_slots=8",
        "model.memory_width=4", "task.name=copy", "task.length=3", "task.copy_len=3", "train.steps=12",
        "train.batch_size=8", "train.lr=0.01", "train.eval_every=4", "train.eval_batches=1",
        "train.checkpoint_every=12", "probes.every=4", "probes.batch=2"]


@pytest.fixture(scope="module")
def fixture_runs(tmp_path_factory) -> Path:
    """The shared fixture runs plus a tiny NTM on copy (T = 9, 8 slots) with heads probes at steps 4, 8, 12."""
    root = tmp_path_factory.mktemp("heads-fixtures")
    runs_dir = root / "runs"
    make_fixture_runs(runs_dir, root)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the NTM's many tiny ops: a second thread only waits for a core
    try:
        cfg = config.load(None, SETS)
        run = store.create_run(runs_dir, cfg.name)
        store.atomic_write(run.config_path, cfg.to_toml().encode())
        assert Trainer(prepare(cfg), run).train().state == "finished"
    finally:
        torch.set_num_threads(threads)
    _freeze(run, NTM, FIXED_START + 4 * 3600)
    return runs_dir


def rendered(renderable) -> str:
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def heads_events(runs_dir: Path) -> list[dict]:
    return [e for e in RunDir(runs_dir / NTM).event_reader().read_new() if e["kind"] == "heads"]


async def open_heads(pilot, runs_dir: Path) -> HeadsScreen:
    pilot.app.open_live(RunDir(runs_dir / NTM))
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, LiveScreen) and pilot.app.screen.status is not None,
                   what="the live screen")
    await pilot.press("h")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, HeadsScreen), what="the heads screen")
    screen = pilot.app.screen
    await wait_for(pilot, lambda: len(screen.probes) == 3, what="the three probes")
    return screen


def test_h_opens_the_heads_of_the_latest_probe_and_brackets_browse(fixture_runs):
    events = heads_events(fixture_runs)

    async def main():
        app = make_app(runs_dir=fixture_runs)
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await open_heads(pilot, fixture_runs)
            title = str(screen.query_one("#title").render())
            assert title.startswith("step 12 (probe 3 of 3, following the run): the first probe example, 9 steps × ")
            latest = events[-1]
            columns = used_slots(latest)  # the slots some head weights by 10% or more (tested below)
            assert 0 < len(columns) <= 8
            for kind in ("write", "read"):
                (table,) = screen.query_one(f"#{kind}").content.renderables  # one head of each kind: one map
                assert [str(c.header) for c in table.columns] == ["%", *map(str, columns)]  # columns: slots
                labels = [str(cell).split() for cell in table.columns[0].cells]
                assert [int(cells[0]) for cells in labels] == list(range(9))  # rows: time
                for step in (0, 8):  # each cell: the event's weight in percent
                    shown = [int(str(list(column.cells)[step])) for column in table.columns[1:]]
                    assert shown == [min(99, latest[kind][0][step][i]) for i in columns]
                tokens = latest["input"] if kind == "write" else latest["output"]
                assert [cells[1] for cells in labels] == [str(t) for t in tokens]  # input, or the model's output
                wrong = [t for t in range(9) if latest["output"][t] != latest["target"][t]]
                assert [t for t, cells in enumerate(labels) if cells[-1] == "✗"] == (wrong if kind == "read" else [])
            assert "✗" in rendered(screen.query_one("#read").content) or not wrong
            await pilot.press("left_square_bracket")
            assert screen.shown["step"] == 8 and "probe 2 of 3, l: latest" in str(screen.query_one("#title").render())
            await pilot.press("left_square_bracket", "left_square_bracket")  # stops at the first
            assert screen.shown["step"] == 4
            await pilot.press("l")
            assert screen.index is None and screen.shown["step"] == 12
            await pilot.press("escape")
            assert isinstance(app.screen, LiveScreen)

    asyncio.run(main())


def test_the_screen_follows_new_probes_and_skips_malformed_ones(fixture_runs, tmp_path):
    runs_dir = copy_fixture_runs(fixture_runs, tmp_path / "runs")
    log = RunDir(runs_dir / NTM).events_path
    later = dict(heads_events(runs_dir)[-1], step=16)

    async def main():
        app = make_app(runs_dir=runs_dir)
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await open_heads(pilot, runs_dir)
            await pilot.press("left_square_bracket")  # browsing an older probe: a new one does not jump
            with log.open("a") as handle:
                bad = [dict(later, step=13, read="oops"), dict(later, step=14, write=[[[0.5]]]),
                       dict(later, step=15, read=[[["x"] * 8] * 9]), dict(later, step="16")]
                for event in [*bad, later]:
                    handle.write(json.dumps(event) + "\n")
            await wait_for(pilot, lambda: len(screen.probes) == 4, what="the new probe")
            assert [e["step"] for e in screen.probes] == [4, 8, 12, 16]  # the malformed three are skipped
            assert screen.shown["step"] == 8
            await pilot.press("l")
            assert str(screen.query_one("#title").render()).startswith("step 16 (probe 4 of 4, following")

    asyncio.run(main())


def test_h_on_a_run_without_heads_says_why(fixture_runs):
    async def main():
        app = make_app(runs_dir=fixture_runs)
        async with app.run_test(size=(100, 34), notifications=True) as pilot:
            app.open_live(RunDir(fixture_runs / LSTM))
            await wait_for(pilot, lambda: isinstance(app.screen, LiveScreen) and app.screen.status is not None,
                           what="the live screen")
            assert app.screen.check_action("heads", ()) is False  # not in an LSTM run's footer
            await pilot.press("h")
            await wait_for(pilot, lambda: any("NTM runs only (this run's arch is lstm)" in toast
                                              for toast in toasts(app)), what="the reason for h")
            assert isinstance(app.screen, LiveScreen)

    asyncio.run(main())


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_snapshot(fixture_runs, snap_compare, size):
    app = make_app(runs_dir=fixture_runs)

    async def run_before(pilot):
        await open_heads(pilot, fixture_runs)
        await pilot.pause(0.1)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


def test_only_the_slots_the_heads_use_are_drawn(fixture_runs, tmp_path):
    """A copy of n symbols on a 64-slot memory uses ~n + 1 slots: those get columns (with numbers), not all 64."""
    runs_dir = copy_fixture_runs(fixture_runs, tmp_path / "runs")
    diagonal = [[[100 if slot == 3 + t % 3 else 0 for slot in range(64)] for t in range(9)]]  # slots 3-5
    event = dict(heads_events(runs_dir)[-1], step=16, slots=64, read=diagonal, write=diagonal)
    with RunDir(runs_dir / NTM).events_path.open("a") as handle:
        handle.write(json.dumps(event) + "\n")

    async def main():
        app = make_app(runs_dir=runs_dir)
        async with app.run_test(size=(120, 40)) as pilot:
            pilot.app.open_heads(RunDir(runs_dir / NTM))
            await wait_for(pilot, lambda: isinstance(app.screen, HeadsScreen) and len(app.screen.probes) == 4,
                           what="the probes")
            screen = app.screen
            assert "9 steps × slots 3-5 of 64 (the others hold < 10% at every step)" in \
                str(screen.query_one("#title").render())
            (table,) = screen.query_one("#read").content.renderables
            assert [str(c.header) for c in table.columns] == ["%", "3", "4", "5"]
            assert [str(list(c.cells)[4]) for c in table.columns[1:]] == [" 0", "99", " 0"]  # step 4: slot 3 + 1
            await pilot.press("left_square_bracket")  # the tiny run's own probe
            assert str(screen.query_one("#title").render()).startswith("step 12 (probe 3 of 4, l: latest)")

    asyncio.run(main())


@pytest.mark.parametrize("hot, expected", [
    ([3, 4, 5], [3, 4, 5]),
    ([0, 63, 62], [62, 63, 0]),  # a head that walks -1 from slot 0 wraps round to 63
    ([7], [7]),
    ([], list(range(64))),  # nothing above 1%: every slot
    ([0, 32], list(range(33))),  # two equal gaps: either run is as short
])
def test_the_slots_drawn_are_the_shortest_circular_run_holding_every_weight(hot, expected):
    head = [[50 if slot == s else 0 for slot in range(64)] for s in hot] or [[1 / 64] * 64]
    event = {"read": [head], "write": [[[0] * 64 for _ in head]]}
    assert used_slots(event) == expected
