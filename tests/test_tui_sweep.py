"""Sweeps in the TUI: the runs browser groups trials under their sweep; the sweep screen shows the
progress, the results table (results.py's numbers, as `rnnlab sweep show`) and the plot.

A real tiny sweep (`rnnlab sweep`, 8 trials) for the numbers, a synthetic one for snapshots."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from textual.widgets import DataTable, Static
from typer.testing import CliRunner

from rnnlab import store
from rnnlab.cli import app as cli_app
from rnnlab.console import fmt_metric
from rnnlab.sweeps import results
from rnnlab.tui import make_app
from rnnlab.tui.screens.compare import CompareScreen
from rnnlab.tui.run_rows import SweepGroup
from rnnlab.tui.screens.runs import MARK, RunsScreen
from rnnlab.tui.screens.sweep import SweepPlot, SweepReader, SweepScreen

from tiny import sweep_file
from tui_fixtures import constant_lr_run, synthetic_sweep, utc, wait_for  # noqa: F401  utc: autouse

GRID = '"model.arch" = ["elman", "gru"]\n"model.hidden" = [8, 16]\nseeds = [0, 1]\n'
PLAIN = "20261118-150000-constant-lr-ffff"


@pytest.fixture(scope="module")
def real_sweep(tmp_path_factory):
    """A finished tiny sweep made by the real `rnnlab sweep` (2 workers), beside one plain run."""
    tmp = tmp_path_factory.mktemp("tui-sweep")
    runs_dir = tmp / "runs"
    result = CliRunner().invoke(cli_app, ["sweep", str(sweep_file(tmp, GRID, steps=8)), "--workers", "2",
                                          "--runs-dir", str(runs_dir), "--quiet"])
    assert result.exit_code == 0, result.output
    constant_lr_run(runs_dir)
    [sweep] = store.list_sweeps(runs_dir)
    return runs_dir, sweep


@pytest.fixture
def synthetic(tmp_path):
    runs_dir = tmp_path / "runs"
    synthetic_sweep(runs_dir)
    constant_lr_run(runs_dir)
    return runs_dir


async def on_runs_screen(pilot) -> None:
    """Until the runs screen is up, listed and its table focused: keys pressed before would be lost."""
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, RunsScreen) and pilot.app.screen.summaries
                   and isinstance(pilot.app.screen.focused, DataTable), what="the runs screen")


def run(scenario, runs_dir, size=(120, 40)):
    async def main():
        app = make_app(runs_dir=runs_dir)
        async with app.run_test(size=size) as pilot:
            await on_runs_screen(pilot)
            await scenario(app, pilot, app.screen)
    asyncio.run(main())


def keys(screen) -> list[str]:
    return [row.key.value for row in screen.query_one(DataTable).ordered_rows]


def trial_ids(runs_dir, sweep_id) -> set[str]:
    return {s.id for s in store.list_runs(runs_dir) if s.sweep == sweep_id}


# -- the browser ---------------------------------------------------------------------------
def test_trials_are_one_collapsed_row_under_their_sweep_and_e_expands_and_folds(real_sweep):
    runs_dir, sweep = real_sweep
    trials = trial_ids(runs_dir, sweep.id)
    assert len(trials) == 8

    async def scenario(app, pilot, screen):
        assert keys(screen) == [f"sweeps/{sweep.id}", PLAIN]  # the sweep was created after the plain run's start
        group = screen.shown[0]
        assert isinstance(group, SweepGroup) and group.step == 8 and group.state == "8/8 done"
        cells = [str(c) for c in screen.query_one(DataTable).get_row(f"sweeps/{sweep.id}")]
        assert cells[1] == f"▸ sweep {sweep.id}" and cells[2] == "mixed" and cells[5] == "8 trials"
        assert "e shows its trials" in str(screen.query_one("#status", Static).render())
        await pilot.press("e")
        assert keys(screen)[0] == f"sweeps/{sweep.id}" and set(keys(screen)[1:9]) == trials
        assert keys(screen)[9] == PLAIN
        assert all(str(screen.query_one(DataTable).get_cell(t, "id")).startswith("  ") for t in trials)
        await pilot.press("down", "down", "e")  # on a trial: folds its sweep, the cursor back on the sweep row
        assert keys(screen) == [f"sweeps/{sweep.id}", PLAIN] and screen.cursor_summary().id == sweep.id
    run(scenario, runs_dir)


def test_filter_shows_matching_trials_under_their_sweep_and_sort_sorts_within(real_sweep):
    runs_dir, sweep = real_sweep
    gru = {s.id for s in store.list_runs(runs_dir) if s.sweep == sweep.id and s.arch == "gru"}

    async def scenario(app, pilot, screen):
        await pilot.press("slash", *"gru", "enter")  # the plain run is a gru too
        shown = keys(screen)
        assert shown[0] == f"sweeps/{sweep.id}" and set(shown[1:5]) == gru and shown[5:] == [PLAIN]
        await pilot.press("escape", "e")
        screen.sort_column, screen.sort_reverse = "best", False
        screen.rebuild()
        bests = [row.best_val for row in screen.shown if row.sweep == sweep.id]
        assert len(bests) == 8 and bests == sorted(bests)
        assert screen.shown[0].id == PLAIN and isinstance(screen.shown[1], SweepGroup)  # 1.9: below every trial
        screen.sort_reverse = True
        screen.rebuild()
        bests = [row.best_val for row in screen.shown if row.sweep == sweep.id]
        assert bests == sorted(bests, reverse=True) and isinstance(screen.shown[0], SweepGroup)
        assert screen.shown[-1].id == PLAIN
        await pilot.press("slash", *"sweep", "enter")  # the sweep matches: every trial, as expanded
        assert len(keys(screen)) == 9
    run(scenario, runs_dir)


def test_space_on_a_sweep_marks_its_trials_and_compare_and_delete_see_them(real_sweep):
    runs_dir, sweep = real_sweep

    async def scenario(app, pilot, screen):
        await pilot.press("space")
        assert screen.marked == trial_ids(runs_dir, sweep.id)
        assert str(screen.query_one(DataTable).get_cell(f"sweeps/{sweep.id}", "mark")) == MARK
        await pilot.press("space")
        assert screen.marked == set()
        await pilot.press("d")  # a sweep row, nothing marked: not deleted, says how
        assert app.screen is screen  # no question asked
        await pilot.press("e", "down", "space", "down", "space")
        assert len(screen.marked) == 2 and str(screen.query_one(DataTable).get_cell(
            f"sweeps/{sweep.id}", "mark")) == " "
        await pilot.press("c")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, CompareScreen)
    run(scenario, runs_dir)


def test_a_thousand_runs_in_sweeps_list_fast(tmp_path):
    runs_dir = tmp_path / "runs"
    for s in range(10):
        sweep_id = f"20260101-0000{s:02d}-many-{s:04x}"
        trials = []
        for i in range(100):
            path = runs_dir / f"20260101-{s:02d}{i:04d}-many-{i:04x}"
            path.mkdir(parents=True)
            (path / "status.json").write_text(json.dumps({
                "id": path.name, "arch": "lstm", "task": "charlm", "state": "finished", "step": 10,
                "total_steps": 10, "best_val": 1.0 + i / 1000, "started": 1_790_000_000.0 + i, "elapsed": 5.0,
                "sweep": sweep_id, "trial": str(i)}))
            trials.append({"key": str(i), "point": {"x": i}, "seed": 0, "run": path.name, "state": "finished"})
        sweep = store.SweepDir(runs_dir / "sweeps" / sweep_id)
        sweep.path.mkdir(parents=True)
        sweep.write({"id": sweep_id, "state": "finished", "metric": "loss", "goal": "min", "spec": {"x": [0]},
                     "created": 1_790_000_000.0 + s, "trials": trials})

    async def scenario(app, pilot, screen):
        assert len(screen.summaries) == 1000 and len(keys(screen)) == 10
        started = time.perf_counter()
        for _ in range(10):
            screen.rows()
        assert (time.perf_counter() - started) / 10 < 0.5  # grouping, filtering, sorting 1,000 runs
        await pilot.press("e")
        assert len(keys(screen)) == 110
    started = time.perf_counter()
    run(scenario, runs_dir)
    assert time.perf_counter() - started < 8  # generous: the CI machine may be busy


# -- the sweep screen ----------------------------------------------------------------------
def test_sweep_screen_shows_results_py_numbers_and_the_plot_and_opens_a_trial(real_sweep):
    runs_dir, sweep = real_sweep
    record = sweep.read()
    trials = results.trial_results(sweep, record)
    points = results.point_results(trials)
    live = pytest.importorskip("rnnlab.tui.screens.live")

    async def scenario(app, pilot, screen):
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, SweepScreen), what="the sweep screen")
        sweep_screen = app.screen
        table = sweep_screen.query_one("#results", DataTable)
        rows = [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]
        assert len(rows) == len(points) == 4
        for row, point in zip(rows, points):
            assert row[:2] == [str(point.point["model.arch"]), str(point.point["model.hidden"])]
            assert row[2] == f"{fmt_metric(point.mean)} ± {fmt_metric(point.std)}"
            assert row[3:5] == [str(point.n), str(point.mean_steps)] and row[3] == "2"
        progress = str(sweep_screen.query_one("#progress", Static).render())
        assert "8 trials: 0 queued, 0 running, 8 done, 0 failed" in progress
        plot = sweep_screen.query_one(SweepPlot)
        expected = results.plot_series(record, trials, "model.hidden")
        assert set(plot.series) == set(expected) == {"arch=elman", "arch=gru"}
        assert all(plot.series[label] == 2 for label in expected)
        trial_table = sweep_screen.query_one("#trials", DataTable)
        assert trial_table.row_count == 8
        assert {str(trial_table.get_cell_at((i, 2))) for i in range(8)} == {"finished"}
        await pilot.press("down", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, live.LiveScreen), what="the live view")
        assert app.screen.run.id == trials[1].run
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is sweep_screen, what="back on the sweep")
    run(scenario, runs_dir)


def test_sweep_screen_fills_in_as_trials_finish(tmp_path):
    runs_dir = tmp_path / "runs"
    sweep = synthetic_sweep(runs_dir)

    async def scenario(app, pilot, screen):
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, SweepScreen), what="the sweep screen")
        progress = app.screen.query_one("#progress", Static)
        assert "1 queued, 1 running, 9 done, 1 failed" in str(progress.render())
        record = sweep.read()
        running = store.RunDir(runs_dir / record["trials"][9]["run"])
        running.update_status(state="finished", step=100)
        with running.events_path.open("a") as handle:
            handle.write(json.dumps({"kind": "eval", "step": 100, "t": 40.0, "loss": 1.5}) + "\n")
        await wait_for(pilot, lambda: "0 running, 10 done" in str(progress.render()),
                       what="the finished trial")
        table = app.screen.query_one("#results", DataTable)
        assert str(table.get_row_at(4)[3]) == "2"  # lstm, lr 0.01: both seeds now
    run(scenario, runs_dir)


def test_sweep_screen_shows_what_it_read_literally(tmp_path):
    runs_dir = tmp_path / "runs"
    sweep = synthetic_sweep(runs_dir)
    record = sweep.read()
    record["trials"][0]["point"]["model.arch"] = "[b]gru\x1b[2J"
    sweep.write(record)
    view = SweepReader(sweep).read()
    assert view.trials[0].point["model.arch"] == "[b]gru\x1b[2J"

    async def scenario(app, pilot, _screen):
        app.open_sweep(sweep)
        await wait_for(pilot, lambda: isinstance(app.screen, SweepScreen), what="the sweep screen")
        await pilot.pause()
        text = "\n".join(strip.text for strip in app.screen._compositor.render_strips())
        assert "[b]gru\\x1b[2J" in text and "\x1b" not in text
    run(scenario, runs_dir)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_snapshot_sweep_screen(synthetic, snap_compare, size):
    async def open_sweep(pilot):
        await on_runs_screen(pilot)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, SweepScreen), what="the sweep screen")
        await pilot.pause()
    assert snap_compare(make_app(runs_dir=synthetic), terminal_size=size, run_before=open_sweep)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_snapshot_runs_screen_with_an_expanded_sweep(synthetic, snap_compare, size):
    async def expand(pilot):
        await on_runs_screen(pilot)
        await pilot.press("e", "down")
    assert snap_compare(make_app(runs_dir=synthetic), terminal_size=size, run_before=expand)
