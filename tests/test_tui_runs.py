"""The runs browser (home screen) and the compare screen, driven through Pilot.

pytest-asyncio is not a dependency: each scenario is an async function run under `asyncio.run`.
Screens that change the runs directory work on a copy of the fixture runs.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import time

import pytest
from textual.widgets import DataTable, Input, Static

from rnnlab import store
from rnnlab.tui import make_app
from rnnlab.tui.screens.compare import CompareScreen, differing_keys, flatten, load
from rnnlab.tui.screens.confirm import ConfirmScreen
from rnnlab.tui.screens.runs import MARK, RunsScreen

from tui_fixtures import copy_fixture_runs, make_fixture_runs, utc  # noqa: F401  utc: autouse

LSTM, GRU, ELMAN, BROKEN = ("20261118-100000-tiny-lstm-aaaa", "20261118-110000-tiny-gru-bbbb",
                            "20261118-120000-tiny-elman-cccc", "20261118-130000-broken-dddd")


@pytest.fixture(scope="module")
def fixture_dir(tmp_path_factory):
    """The four fixture runs, trained once for the whole file (about 2 s); tests only read them."""
    tmp = tmp_path_factory.mktemp("tui-runs")
    make_fixture_runs(tmp / "runs", tmp)
    return tmp / "runs"


@pytest.fixture
def runs_copy(fixture_dir, tmp_path):
    return copy_fixture_runs(fixture_dir, tmp_path / "runs")


def run(scenario, runs_dir, size=(100, 30)):
    """Run `scenario(app, pilot, screen)` inside the app, on the runs screen."""
    async def main():
        app = make_app(runs_dir=runs_dir)
        async with app.run_test(size=size) as pilot:
            await scenario(app, pilot, await _runs_screen(pilot))
    asyncio.run(main())


def ids(screen: RunsScreen) -> list[str]:
    table = screen.query_one(DataTable)
    return [row.key.value for row in table.ordered_rows]


def row(table: DataTable, key: str) -> list[str]:
    return [str(value) for value in table.get_row(key)]  # the cells are rich Text (never parsed as markup)


def cell(screen: RunsScreen, run_id: str, column: str):
    return screen.query_one(DataTable).get_cell(run_id, column)


async def settle(app, pilot):
    await app.workers.wait_for_complete()
    await pilot.pause()


def test_lists_every_run_newest_first_with_crashed_and_corrupt_flagged(fixture_dir):
    async def scenario(app, pilot, screen):
        assert isinstance(screen, RunsScreen)
        assert ids(screen) == [ELMAN, GRU, LSTM, BROKEN]  # the corrupt one has no start time: last
        assert str(cell(screen, ELMAN, "state")) == "crashed"  # status says running, its pid is gone
        assert str(cell(screen, BROKEN, "state")) == "corrupt"
        assert str(cell(screen, LSTM, "steps")) == "12/12"
        await pilot.press("down", "down", "down")
        status = str(screen.query_one("#status", Static).render())
        assert status == "4 runs  unreadable status.json: JSONDecodeError"
        await pilot.press("enter")  # a corrupt directory cannot be opened: a message, not a crash
        assert isinstance(app.screen, RunsScreen)
    run(scenario, fixture_dir)


def test_filter_narrows_rows_and_escape_clears_it(fixture_dir):
    async def scenario(app, pilot, screen):
        await pilot.press("slash", *"gru")
        assert ids(screen) == [GRU]
        await pilot.press("space", "d", "backspace", "backspace")  # keys type into the filter, no delete
        assert isinstance(app.screen, RunsScreen) and screen.query_one(Input).value == "gru"
        await pilot.press("escape")  # leaves the filter, keeps it
        assert screen.focused is screen.query_one(DataTable) and ids(screen) == [GRU]
        await pilot.press("escape")  # clears it
        assert len(ids(screen)) == 4
        screen.query_one(Input).value = "tiny finished"  # every word must match
        await pilot.pause()
        assert ids(screen) == [LSTM]
        screen.query_one(Input).value = "nothing-like-this"
        await pilot.pause()
        assert ids(screen) == [] and "No run matches" in str(screen.query_one("#empty", Static).render())
    run(scenario, fixture_dir)


def test_sort_key_cycles_columns_and_header_click_sorts_then_reverses(fixture_dir):
    async def scenario(app, pilot, screen):
        await pilot.press("s")  # from "started" on to the next column: id, ascending
        assert screen.sort_column == "id" and ids(screen) == [LSTM, GRU, ELMAN, BROKEN]
        await pilot.press("r")
        assert ids(screen) == [BROKEN, ELMAN, GRU, LSTM]
        table = screen.query_one(DataTable)
        arch_x = sum(column.get_render_width(table) for column in table.ordered_columns[:2]) + 1
        await pilot.click(DataTable, offset=(arch_x, 0))
        assert screen.sort_column == "arch" and ids(screen) == [BROKEN, ELMAN, GRU, LSTM]  # "?" < "elman"
        await pilot.click(DataTable, offset=(arch_x, 0))
        assert ids(screen) == [LSTM, GRU, ELMAN, BROKEN]
        assert "arch ▼" in str(table.columns["arch"].label)
        screen.sort_column, screen.sort_reverse = "best", False
        screen.rebuild()
        assert ids(screen)[-1] == BROKEN  # no best val: last in both directions
        app.theme = "textual-light"  # the state colours come from the theme: rebuilt, not broken
        await pilot.pause()
        assert len(ids(screen)) == 4
    run(scenario, fixture_dir)


def test_mark_two_and_compare_shows_overlaid_curves_and_config_diff(fixture_dir):
    async def scenario(app, pilot, screen):
        await pilot.press("c")  # nothing marked: a hint, no compare screen
        assert isinstance(app.screen, RunsScreen)
        await pilot.press("down", "space", "down", "space")
        assert str(cell(screen, GRU, "mark")) == MARK and str(cell(screen, LSTM, "mark")) == MARK
        await pilot.press("c")
        await settle(app, pilot)
        compare = app.screen
        assert isinstance(compare, CompareScreen)
        assert [r.id for r in compare.runs] == [GRU, LSTM]
        assert list(compare.val_series) == ["tiny-gru", "tiny-lstm"]  # labelled by config name
        assert all(xs for xs, _ in compare.val_series.values()) and len(compare.train_series) == 2
        diff = compare.query_one("#diff", DataTable)
        assert row(diff, "model.arch") == ["model.arch", "gru", "lstm"]
        assert row(diff, "model.forget_bias")[1] == "-"  # an LSTM-only key
        await pilot.press("escape")
        assert app.screen is screen and screen.marked == {GRU, LSTM}
    run(scenario, fixture_dir)


def test_compare_legends_every_run_below_its_plots_and_w_smooths_the_train_curves(fixture_dir):
    from rnnlab.tui.screens.compare import ComparePlot

    async def scenario(app, pilot, screen):
        app.open_compare([store.RunDir(fixture_dir / name) for name in (LSTM, GRU, ELMAN)])
        await wait_for_compare(app, pilot)
        train = app.screen.query_one("#train", ComparePlot)
        assert set(train.series) == {"tiny-lstm", "tiny-gru", "tiny-elman"}
        assert "━ tiny-lstm" in train.render().plain  # the legend below the plot, not over its data
        await pilot.press("w")
        assert set(train.series) == {"tiny-lstm (smoothed 0.6)", "tiny-gru (smoothed 0.6)",
                                     "tiny-elman (smoothed 0.6)"}
        assert set(app.screen.query_one("#val", ComparePlot).series) == {"tiny-lstm", "tiny-gru", "tiny-elman"}
    run(scenario, fixture_dir, size=(120, 40))


async def wait_for_compare(app, pilot):
    from tui_fixtures import wait_for

    await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.loaded is not None,
                   what="the compared runs")


def test_compare_with_an_unreadable_config_shows_question_marks(fixture_dir):
    async def scenario(app, pilot, screen):
        app.open_compare([store.RunDir(fixture_dir / name) for name in (LSTM, GRU, BROKEN)])
        await settle(app, pilot)
        compare = app.screen
        assert row(compare.query_one("#diff", DataTable), "model.arch")[1:] == ["lstm", "gru", "?"]
        assert "config unreadable" in str(compare.query_one("#notes", Static).render())
        assert compare.val_series[compare.loaded.labels[2]] == ([], [])
    run(scenario, fixture_dir)


def logged_run(runs_dir, name: str, unit: str, evals: list[dict]) -> store.RunDir:
    run = store.create_run(runs_dir, name)
    writer = run.event_writer()
    writer.write({"kind": "start", "step": 0, "t": 0.0, "loss_unit": unit})
    for step, metrics in enumerate(evals, 1):
        writer.write({"kind": "eval", "step": 10 * step, "t": float(step), **metrics})
    writer.close()
    return run


def test_compare_puts_language_models_over_different_tokens_on_one_scale(tmp_path):
    chars = logged_run(tmp_path, "chars", "nats/char", [{"loss": 1.6, "bpc": 2.31}])
    subwords = logged_run(tmp_path, "bpe", "nats/token", [{"loss": 3.9, "bpc": 2.25}])
    loaded = load([chars, subwords])
    assert loaded.val_title == "val bits/char"  # per token, 3.9 would look far worse than 1.6
    assert [ys for _, ys in loaded.val.values()] == [[2.31], [2.25]]
    same = load([chars, logged_run(tmp_path, "chars2", "nats/char", [{"loss": 1.5, "bpc": 2.16}])])
    assert same.val_title == "val loss (nats/char)" and [ys for _, ys in same.val.values()] == [[1.6], [1.5]]
    mixed = load([chars, logged_run(tmp_path, "series", "MSE", [{"loss": 0.01}])])
    assert mixed.val_title == "val loss (units differ)" and "MSE, nats/char" in mixed.notes[-1]


def test_flatten_and_differing_keys():
    assert flatten({"seed": 0, "model": {"arch": "gru", "hidden": 8}}) == {"seed": 0, "model.arch": "gru",
                                                                           "model.hidden": 8}
    configs = [{"a": 1, "b": 2}, {"a": 1, "b": 3, "c": 0}, None]
    assert differing_keys(configs) == ["b", "c"]


def test_delete_asks_first_no_keeps_and_yes_removes(runs_copy):
    async def scenario(app, pilot, screen):
        await pilot.press("down", "d")  # the cursor row: gru
        assert isinstance(app.screen, ConfirmScreen)
        assert app.screen.question == "Delete 1 run and its files?"
        await pilot.press("n")
        assert (runs_copy / GRU).is_dir() and isinstance(app.screen, RunsScreen)
        await pilot.press("d", "y")
        assert not (runs_copy / GRU).exists()
        assert ids(screen) == [ELMAN, LSTM, BROKEN]
        await pilot.press("space", "down", "down", "space", "d")  # marked runs win over the cursor
        assert str(app.screen.query_one(".hint", Static).render()).splitlines() == [ELMAN, BROKEN]
        assert app.screen.question == "Delete 2 runs and all their files?"
        await pilot.click("#yes")
        assert ids(screen) == [LSTM] and sorted(os.listdir(runs_copy)) == [LSTM]
    run(scenario, runs_copy)


def test_delete_refuses_a_live_run(runs_copy):
    me = store.RunDir(runs_copy / LSTM)
    me.update_status(state="running", host=socket.gethostname(), pid=os.getpid(),
                     pid_start=store.process_start_time(os.getpid()))

    async def scenario(app, pilot, screen):
        said = []
        app.notify = lambda message, **kwargs: said.append(message)
        await pilot.press("down", "down")
        assert str(cell(screen, LSTM, "state")) == "running"
        await pilot.press("d")
        assert isinstance(app.screen, RunsScreen) and me.path.is_dir()
        assert "still running" in said[0]
    run(scenario, runs_copy)


def test_enter_opens_the_run_live_and_n_opens_launch(fixture_dir):
    async def scenario(app, pilot, screen):
        opened = []
        app.open_live = lambda run, process=None: opened.append(run.id)
        app.open_launch = lambda: opened.append("launch")
        await pilot.press("down", "enter", "n")
        assert opened == [GRU, "launch"]
    run(scenario, fixture_dir)


def test_enter_opens_the_real_live_screen_and_escape_comes_back(fixture_dir):
    live = pytest.importorskip("rnnlab.tui.screens.live")  # written beside this screen

    async def scenario(app, pilot, screen):
        await pilot.press("down", "down", "enter")
        await pilot.pause()
        assert isinstance(app.screen, live.LiveScreen)
        await pilot.press("escape")
        await settle(app, pilot)
        assert app.screen is screen and screen.cursor_summary().id == LSTM
    run(scenario, fixture_dir)


def test_refresh_keeps_cursor_marks_and_filter(runs_copy):
    async def scenario(app, pilot, screen):
        await pilot.press("slash", *"charlm", "enter", "space", "down")  # mark elman, cursor on gru
        assert ids(screen) == [ELMAN, GRU, LSTM]
        new = runs_copy / "20261118-140000-tiny-lstm-eeee"  # a run started from another terminal
        shutil.copytree(runs_copy / LSTM, new)
        store.RunDir(new).update_status(id=new.name, started=store.RunDir(new).read_status_raw()["started"] + 9999)
        shutil.rmtree(runs_copy / LSTM)  # and one deleted elsewhere
        screen.reload()
        await settle(app, pilot)
        assert ids(screen) == [new.name, ELMAN, GRU]
        assert screen.cursor_summary().id == GRU and screen.marked == {ELMAN}
        assert str(cell(screen, ELMAN, "mark")) == MARK and screen.query_one(Input).value == "charlm"
    run(scenario, runs_copy)


def test_empty_runs_dir_shows_a_hint(tmp_path):
    async def scenario(app, pilot, screen):
        assert ids(screen) == []
        assert "Press n to start one" in str(screen.query_one("#empty", Static).render())
    run(scenario, tmp_path / "no-runs-yet")


def test_table_gets_every_row_of_200_runs(fixture_dir, tmp_path):
    """Many directories (the 1,000-run timing is benchmarks/tui_browser.py's job)."""
    config_text = (fixture_dir / LSTM / "config.toml").read_text()
    for i in range(200):
        path = tmp_path / "runs" / f"20260101-{i:06d}-many-{i:04x}"
        path.mkdir(parents=True)
        (path / "config.toml").write_text(config_text)
        (path / "status.json").write_text(json.dumps({
            "id": path.name, "arch": "lstm", "task": "charlm", "state": "finished", "step": 10,
            "total_steps": 10, "best_val": 1.0 + i / 1000, "started": 1_790_000_000.0 + i, "elapsed": 5.0}))

    async def scenario(app, pilot, screen):
        assert screen.query_one(DataTable).row_count == 200
        assert ids(screen)[0] == "20260101-000199-many-00c7"
    started = time.perf_counter()
    run(scenario, tmp_path / "runs")
    assert time.perf_counter() - started < 5  # generous: the CI machine may be busy


# -- snapshots --------------------------------------------------------------------------
async def _runs_screen(pilot) -> RunsScreen:
    """Wait until the runs screen is up and its table focused: keys pressed before would be lost."""
    for _ in range(500):
        screen = pilot.app.screen
        if isinstance(screen, RunsScreen) and isinstance(screen.focused, DataTable):
            await pilot.pause()
            return screen
        await pilot.pause(0.01)
    raise TimeoutError("the runs screen never got focus")


async def _mark_and_point_at_corrupt(pilot):
    await _runs_screen(pilot)
    await pilot.press("down", "space", "down", "down")


async def _open_compare(pilot):
    screen = await _runs_screen(pilot)
    await pilot.press("down", "space", "down", "space", "c")
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    assert isinstance(pilot.app.screen, CompareScreen) and screen.marked == {GRU, LSTM}


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_snapshot_runs_screen(fixture_dir, snap_compare, size):
    assert snap_compare(make_app(runs_dir=fixture_dir), terminal_size=size, run_before=_mark_and_point_at_corrupt)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_snapshot_compare_screen(fixture_dir, snap_compare, size):
    assert snap_compare(make_app(runs_dir=fixture_dir), terminal_size=size, run_before=_open_compare)


def test_a_growing_steps_cell_is_never_cut_at_80_columns(tmp_path):
    """A running run's cells are updated in place every 2 s: 31/1000 became `319/100` (the width stayed)."""
    from tui_fixtures import screen_text, wait_for

    path = tmp_path / "runs" / "20261118-100000-tiny-lstm-aaaa"
    path.mkdir(parents=True)
    (path / "config.toml").write_text("")
    status = {"id": path.name, "arch": "lstm", "task": "charlm", "state": "stopped", "step": 31,
              "total_steps": 1000, "started": 1_795_000_000.0, "elapsed": 4.0}
    store.RunDir(path).write_status(status)

    async def scenario(app, pilot, screen):
        assert "31/1000" in screen_text(app)
        store.RunDir(path).write_status({**status, "step": 319, "best_val": 1.25})
        screen.reload()
        await settle(app, pilot)
        # the table widens the column on its next idle, which a loaded machine can delay past one pause
        await wait_for(pilot, lambda: " 319/1000 " in screen_text(app), what="the widened steps cell")
        assert " 319/1000 " in screen_text(app), screen_text(app)
    run(scenario, tmp_path / "runs", size=(80, 24))


def test_a_long_list_shows_a_screenful_first_and_the_rest_after(tmp_path, monkeypatch):
    """10,000 rows at once took the table 2-3 s before its first frame: it adds FIRST_ROWS, then the rest a
    chunk per repaint; the count, the filter and the cursor work on every run meanwhile and after."""
    from rnnlab.tui.screens import runs as runs_screen
    from tui_fixtures import wait_for

    monkeypatch.setattr(runs_screen, "FIRST_ROWS", 40)
    monkeypatch.setattr(runs_screen, "MORE_ROWS", 60)
    runs_dir = tmp_path / "runs"
    for i in range(230):
        path = runs_dir / f"20261118-{100000 + i:06d}-bench-{i}-{i:04x}"
        path.mkdir(parents=True)
        (path / "config.toml").write_text("")
        store.RunDir(path).write_status({"id": path.name, "arch": "lstm", "task": "charlm", "state": "finished",
                                         "step": 9, "total_steps": 9, "started": 1_795_000_000.0 + i})

    async def scenario(app, pilot, screen):
        table = screen.query_one(DataTable)
        await wait_for(pilot, lambda: table.row_count == 230, what="every row, chunk by chunk")
        screen.action_reverse()  # a rebuild: its first chunk now, the rest after repaints
        assert table.row_count == 40 and "230 runs" in str(screen.query_one("#status", Static).render())
        screen.query_one("#filter", Input).value = "bench-7"  # filtering while the rows are still coming
        await wait_for(pilot, lambda: table.row_count == 11, what="the filtered rows")  # 7, 70-79
        await pilot.pause(0.2)
        assert table.row_count == 11  # the earlier rebuild's remaining chunks did not come back
        screen.query_one("#filter", Input).value = ""
        screen.action_reverse()  # back to newest first
        await wait_for(pilot, lambda: table.row_count == 230, what="every row again")
        assert ids(screen) == [f"20261118-{100000 + i:06d}-bench-{i}-{i:04x}" for i in reversed(range(230))]
        table.move_cursor(row=200)  # a row of the last chunk
        wanted = screen.cursor_summary().id
        await pilot.press("r")  # reverse the sort: a rebuild, whose first chunk lacks that row
        await wait_for(pilot, lambda: table.row_count == 230, what="the rebuilt rows")
        assert screen.cursor_summary().id == wanted  # the cursor found its run once it was added
        screen.query_one("#filter", Input).value = "bench-7"
        await wait_for(pilot, lambda: table.row_count == 11, what="the filtered rows")  # 7, 70-79
        assert "230 runs, 11 shown" in str(screen.query_one("#status", Static).render())
    run(scenario, runs_dir, size=(100, 30))
