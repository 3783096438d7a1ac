"""The live screen: a finished run, a real live run (stop, continue), latency, robustness, snapshots.

pytest-asyncio is not a dependency: each async scenario runs under `asyncio.run`.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import time
from pathlib import Path

import pytest

from rnnlab.store import RunDir
from rnnlab.tui import make_app
from rnnlab.tui.screens.live import LiveScreen
from rnnlab.tui.widgets.header import RunHeader
from rnnlab.tui.widgets.plots import (EigenPlot, GradFlowPlot, GradNormPlot, LengthHistoryPlot, LengthPlot, LossPlot,
                                      RadiusPlot, RunPlot)
from tui_fixtures import (constant_lr_run, copy_fixture_runs, length_run, make_fixture_runs, start_endless_trainer,
                          toasts, wait_for)

LSTM = "20261118-100000-tiny-lstm-aaaa"
ELMAN = "20261118-120000-tiny-elman-cccc"


@pytest.fixture(scope="session")
def fixture_runs(tmp_path_factory) -> Path:
    """The deterministic fixture runs, built once; tests that change a run copy them first."""
    root = tmp_path_factory.mktemp("live-fixtures")
    make_fixture_runs(root / "runs", root)
    return root / "runs"


@pytest.fixture
def runs_copy(fixture_runs, tmp_path) -> Path:
    return copy_fixture_runs(fixture_runs, tmp_path / "runs")


def header_text(app) -> str:
    return app.screen.query_one(RunHeader).render().plain


async def open_live(pilot, run: RunDir, process=None) -> LiveScreen:
    pilot.app.open_live(run, process)
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, LiveScreen), what="the live screen")
    screen = pilot.app.screen
    await wait_for(pilot, lambda: screen.repaints > 0 and screen.status is not None, what="a first repaint")
    return screen


def test_finished_run_is_plotted(fixture_runs):
    async def main():
        app = make_app(runs_dir=fixture_runs)
        async with app.run_test(size=(100, 34)) as pilot:
            screen = await open_live(pilot, RunDir(fixture_runs / LSTM))
            await wait_for(pilot, lambda: len(screen.curves.train_loss.xs) == 12, what="12 train points")
            await wait_for(pilot, lambda: not screen.dirty, what="the repaint")
            assert screen.query_one(LossPlot).series == {"train": 12, "val": 3, "unigram": 2, "n-gram": 2}
            assert screen.query_one(GradNormPlot).series == {"global pre-clip": 12, "layer0": 3, "clip": 2}
            assert "loss (nats/char)" in screen.query_one(LossPlot).render().plain  # the task's own unit
            assert "finished" in header_text(app) and "12/12 100%" in header_text(app)
            assert screen.check_action("stop", ()) is None and screen.check_action("resume", ()) is None
            assert any("finished" in str(line) for line in screen.query_one("#log").lines)
            # the dynamics page: latest gradflow (T=16), the 4 gate blocks of W_hh, their radii at 3 probes
            await pilot.press("tab")
            await pilot.pause()
            assert screen.query_one("ContentSwitcher").current == "dynamics"
            assert screen.query_one(GradFlowPlot).series == {"layer0": 16}
            gates = ("input", "forget", "cell", "output")
            assert screen.query_one(EigenPlot).series == {f"layer0.{gate}": 16 for gate in gates}
            assert screen.query_one(RadiusPlot).series["layer0.forget"] == 3
            assert "eigenvalues of W_hh (step 12" in screen.query_one(EigenPlot).render().plain
            app.theme = "textual-light"  # the plots follow the app's theme ("auto")
            await pilot.pause()
            assert screen.query_one(EigenPlot).theme == "auto"
            assert "eigenvalues" in screen.query_one(EigenPlot).render().plain
            await pilot.press("escape")
            await wait_for(pilot, lambda: not isinstance(app.screen, LiveScreen), what="going back")

    asyncio.run(main())


def test_crashed_run_problem_and_failed_continue(fixture_runs, runs_copy):
    """The elman fixture says running with a dead pid: crashed. It already reached its last step, so `c`
    starts a trainer that refuses (exit 2): the screen says why, from resume.log."""
    config = runs_copy / ELMAN / "config.toml"  # the fixture hides its corpus path; point it back
    config.write_text(config.read_text().replace("/fixture", str(fixture_runs.parent)))

    async def main():
        app = make_app(runs_dir=runs_copy)
        async with app.run_test(size=(100, 34)) as pilot:
            screen = await open_live(pilot, RunDir(runs_copy / ELMAN))
            await wait_for(pilot, lambda: "crashed" in header_text(app), what="crashed in the header")
            assert "the trainer process is gone" in header_text(app)
            assert screen.check_action("resume", ()) is True and screen.check_action("stop", ()) is None
            try:
                await pilot.press("c")
                assert screen.process is not None and screen.process in app.children_started
                log = screen.query_one("#log")
                await wait_for(pilot, lambda: any("already reached step 6" in str(line) for line in log.lines),
                               timeout=30, what="the trainer's refusal in the log")
                assert screen.process.returncode == 2 and isinstance(app.screen, LiveScreen)
            finally:
                if screen.process is not None and screen.process.poll() is None:
                    os.killpg(screen.process.pid, signal.SIGKILL)
                    screen.process.wait()

    asyncio.run(main())


def test_live_run_stop_and_continue(tmp_path):
    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    process, run = start_endless_trainer(tmp_path, runs_dir)

    async def main():
        app = make_app(runs_dir=runs_dir)
        async with app.run_test(size=(100, 34)) as pilot:
            screen = await open_live(pilot, run, process)
            await wait_for(pilot, lambda: screen.curves.step > 0, timeout=90, what="first steps")
            first = screen.curves.step
            await wait_for(pilot, lambda: screen.curves.step > first and "running" in header_text(app),
                           what="steps increasing")
            await pilot.press("s")
            await wait_for(pilot, lambda: "stopped" in header_text(app), timeout=60, what="stopped")
            assert process.wait(timeout=10) == 130
            # continue: a new trainer on the same directory; the curve goes on from the stop step
            stopped_at = screen.curves.step
            assert screen.check_action("resume", ()) is True
            pressed = time.monotonic()
            await pilot.press("c")
            resumed = screen.process
            processes.append(resumed)
            # the trainer takes seconds to start (torch, the task, the checkpoint): the header says so at once
            assert "resuming: starting the trainer" in header_text(app) and time.monotonic() - pressed < 1
            await wait_for(pilot, lambda: screen.curves.step > stopped_at + 5 and "running" in header_text(app),
                           timeout=30, what="the resumed run")
            print(f"c to training again: {time.monotonic() - pressed:.1f} s")
            await wait_for(pilot, lambda: "resuming" not in header_text(app), what="the resuming line to go")
            assert any("resumed" in line for line in screen.curves.logs)
            assert screen.curves.train_loss.xs == sorted(set(screen.curves.train_loss.xs))  # no step twice
            await pilot.press("s")
            await wait_for(pilot, lambda: "stopped" in header_text(app), timeout=60, what="stopped again")
            assert resumed.wait(timeout=10) == 130

    processes = [process]
    try:
        asyncio.run(main())
    finally:
        for child in processes:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()


def test_new_event_reaches_screen_quickly(runs_copy):
    run = RunDir(runs_copy / LSTM)

    async def main():
        app = make_app(runs_dir=runs_copy)
        async with app.run_test(size=(100, 34)) as pilot:
            screen = await open_live(pilot, run)
            await wait_for(pilot, lambda: len(screen.curves.train_loss.xs) == 12, what="the history")
            event = {"kind": "train", "step": 13, "t": 6.5, "loss": 3.2, "lr": 0.002, "grad_norm": 0.3,
                     "clipped": False, "tokens_per_s": 1000.0}
            with open(run.events_path, "a") as handle:
                handle.write(json.dumps(event) + "\n")
            # Generous timeouts: the tail polls a few times a second and repaints at most once a second, and
            # on 2 busy cores a tight bound flakes. The latency itself is printed, not asserted.
            latency = await wait_for(pilot, lambda: screen.curves.train_loss.xs[-1] == 13,
                                     what="the appended event")
            print(f"event latency: {latency * 1000:.0f} ms")
            await wait_for(pilot, lambda: screen.query_one(LossPlot).series.get("train") == 13,
                           what="the repaint")

    asyncio.run(main())


def test_corrupt_line_and_deleted_dir(runs_copy):
    run = RunDir(runs_copy / LSTM)

    async def main():
        app = make_app(runs_dir=runs_copy)
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await open_live(pilot, run)
            with open(run.events_path, "a") as handle:
                handle.write('{"kind": "train", "step": 13, "t": 6.5, "loss": 3.1, "lr"\n')  # cut mid-write
                handle.write('{"kind": "train", "step": 14}\n')  # JSON, but not a train event
                handle.write('{"kind": "train", "step": 15, "t": 7.5, "loss": NaN, "lr": 0.002, '
                             '"grad_norm": 0.3, "clipped": false, "tokens_per_s": 1000.0}\n')  # a diverged step
            await wait_for(pilot, lambda: "corrupt" in header_text(app) and "malformed" in header_text(app),
                           what="the problem line")
            assert screen.query_one(LossPlot).series["train"] == 12  # the NaN point is not drawn
            # a hand-edited status.json: wrong types everywhere
            run.write_status({"state": ["?"], "step": "many", "total_steps": None, "best_val": "n/a"})
            await wait_for(pilot, lambda: "● unknown" in header_text(app), what="an odd status shown")
            shutil.rmtree(run.path)
            await wait_for(pilot, lambda: "deleted" in header_text(app), what="the deleted run")
            for key in ("tab", "s", "c", "x", "tab"):  # keys on a vanished run: notices, no crash
                await pilot.press(key)
            await pilot.pause(0.3)
            assert isinstance(app.screen, LiveScreen) and screen.page == "training"
            assert len(screen.curves.train_loss.xs) == 13  # what was read stays on screen

    asyncio.run(main())


def snapshot_opener(runs_dir: Path, page: str):
    async def run_before(pilot) -> None:
        screen = await open_live(pilot, RunDir(runs_dir / LSTM))
        await wait_for(pilot, lambda: screen.curves.end is not None and not screen.dirty, what="the data")
        if page == "dynamics":
            await pilot.press("tab")
            await wait_for(pilot, lambda: not screen.dirty, what="the page")
        await pilot.pause(0.1)

    return run_before


def test_a_failed_run_can_continue(runs_copy):
    """A run that failed (a full disk, say) continues from its last checkpoint, as `rnnlab run --resume` allows."""
    status_path = runs_copy / LSTM / "status.json"
    status_path.write_text(json.dumps({**json.loads(status_path.read_text()), "state": "failed",
                                       "error": "disk full: No space left on device"}))

    async def main():
        app = make_app(runs_dir=runs_copy)
        async with app.run_test(size=(100, 34)) as pilot:
            screen = await open_live(pilot, RunDir(runs_copy / LSTM))
            await wait_for(pilot, lambda: screen.state == "failed", what="the failed state")
            assert screen.check_action("resume", ()) is True

    asyncio.run(main())


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
@pytest.mark.parametrize("page", ["training", "dynamics"])
def test_snapshot(fixture_runs, snap_compare, page, size):
    app = make_app(runs_dir=fixture_runs)
    assert snap_compare(app, terminal_size=size, run_before=snapshot_opener(fixture_runs, page))


def test_keys_that_cannot_act_say_why(fixture_runs):
    """`c` on a finished run and `a` on a language model are disabled bindings: they used to do nothing."""
    async def main():
        app = make_app(runs_dir=fixture_runs)
        async with app.run_test(size=(100, 34), notifications=True) as pilot:
            screen = await open_live(pilot, RunDir(fixture_runs / LSTM))
            await wait_for(pilot, lambda: screen.state == "finished", what="the finished state")
            assert screen.check_action("resume", ()) is None  # still greyed out in the footer
            await pilot.press("c")
            await wait_for(pilot, lambda: any("Cannot continue this run: it has done all its steps" in toast
                                              for toast in toasts(app)), what="the reason for c")
            await pilot.press("a")
            await wait_for(pilot, lambda: any("seq2seq runs only (this run's arch is lstm)" in toast
                                              for toast in toasts(app)), what="the reason for a")
            assert screen.process is None and isinstance(app.screen, LiveScreen)

    asyncio.run(main())


async def open_constant_lr(pilot, run: RunDir) -> LiveScreen:
    screen = await open_live(pilot, run)
    await wait_for(pilot, lambda: screen.curves.end is not None and not screen.dirty, what="the data")
    await pilot.pause(0.1)
    return screen


def test_a_constant_lr_and_a_small_terminal_draw_readable_plots(tmp_path):
    """A constant lr drew 0.00300000000000000050 labels; 80x24 hid a plot and legends covered the rest."""
    run = constant_lr_run(tmp_path / "runs")

    async def main():
        app = make_app(runs_dir=tmp_path / "runs")
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await open_constant_lr(pilot, run)
            plots = list(screen.query_one("#training").query(RunPlot))
            assert len(plots) == 3 and all(plot.region.width >= 20 and plot.region.height >= 10 for plot in plots)
            texts = [plot.render().plain for plot in plots]
            assert all("⢕" not in text for text in texts)  # plotext's legend box: gone from inside the plot
            lr = texts[2]
            assert "0.0030" in lr and not re.search(r"\d\.\d{6,}", lr), lr
            assert lr.splitlines()[-1] == "━ lr"  # the legend, below the plot
            assert texts[0].splitlines()[-2:] == ["━ train ━ val ━ unigram", "━ n-gram"]  # wrapped, all there
            for text in texts:  # round step ticks (the line under the x axis): 100 200 300, not 80.5 160.0
                lines = text.splitlines()
                steps = next(lines[i + 1] for i, line in enumerate(lines) if "└" in line).split()
                assert steps and all(step.isdigit() and int(step) % 50 == 0 for step in steps), steps

    asyncio.run(main())


def test_a_resized_plot_draws_the_ticks_of_its_new_size(tmp_path):
    """The ticks are chosen for a plot's size when its data is drawn: a plot drawn before its layout, or
    before the terminal was resized, kept the old size's ticks (and the snapshot changed with the load)."""
    run = constant_lr_run(tmp_path / "runs")

    async def plot_texts(size, resize_to=None) -> list[str]:
        app = make_app(runs_dir=tmp_path / "runs")
        async with app.run_test(size=size) as pilot:
            screen = await open_constant_lr(pilot, run)
            if resize_to:
                await pilot.resize_terminal(*resize_to)
                await wait_for(pilot, lambda: all(plot.drawn_size == plot.size
                                                  for plot in screen.query_one("#training").query(RunPlot)),
                               what="the plots drawn at the new size")
            return [plot.render().plain for plot in screen.query_one("#training").query(RunPlot)]

    resized = asyncio.run(plot_texts((80, 24), resize_to=(160, 48)))
    assert resized == asyncio.run(plot_texts((160, 48)))
    assert resized != asyncio.run(plot_texts((80, 24)))


def test_w_smooths_the_every_step_curves_and_l_puts_the_loss_on_a_log_axis(tmp_path):
    """The debiased EMA on request (rnnlab.curves.smooth), the raw points kept faint beneath; log-y loss."""
    from rnnlab.tui.widgets.plots import SMOOTHING

    run = constant_lr_run(tmp_path / "runs")

    async def main():
        app = make_app(runs_dir=tmp_path / "runs")
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await open_constant_lr(pilot, run)
            loss = screen.query_one(LossPlot)
            assert "train" in loss.series and loss.smoothing == 0
            raw_points = loss.series["train"]
            await pilot.press("w")
            await wait_for(pilot, lambda: "train (smoothed 0.6)" in loss.series, what="the smoothed curve")
            assert all(plot.smoothing == 0.6 for plot in screen.query(RunPlot))  # every page alike
            assert "━ train (smoothed 0.6)" in loss.render().plain  # the legend says so
            # the curve drawn is the formula's, downsampled as the raw one is (test_curves checks the formula)
            assert loss.series["train (smoothed 0.6)"] == raw_points
            for _ in SMOOTHING[2:]:
                await pilot.press("w")
            assert loss.smoothing == SMOOTHING[-1]
            await pilot.press("w")  # after the last weight: off again
            await wait_for(pilot, lambda: "train" in loss.series, what="the raw curve again")
            await pilot.press("l")
            await wait_for(pilot, lambda: loss.shown_title.startswith("log10 loss"), what="the log axis")
            await pilot.press("l")
            await wait_for(pilot, lambda: loss.shown_title.startswith("loss ("), what="the linear axis again")

    asyncio.run(main())


def test_snapshot_smoothed(tmp_path, snap_compare, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = constant_lr_run(Path("runs"))

    async def run_before(pilot):
        screen = await open_constant_lr(pilot, run)
        await pilot.press("w", "w")  # 0.9
        await wait_for(pilot, lambda: "train (smoothed 0.9)" in screen.query_one(LossPlot).series, what="0.9")

    assert snap_compare(make_app(runs_dir=Path("runs")), terminal_size=(80, 24), run_before=run_before)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_snapshot_constant_lr(tmp_path, snap_compare, size, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = constant_lr_run(Path("runs"))

    async def run_before(pilot):
        await open_constant_lr(pilot, run)

    assert snap_compare(make_app(runs_dir=Path("runs")), terminal_size=size, run_before=run_before)


async def open_lengths_page(pilot, run: RunDir) -> LiveScreen:
    screen = await open_live(pilot, run)
    await wait_for(pilot, lambda: screen.curves.end is not None and not screen.dirty, what="the data")
    await pilot.press("tab", "tab")
    await wait_for(pilot, lambda: screen.page == "lengths" and not screen.dirty, what="the lengths page")
    await pilot.pause(0.1)
    return screen


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_a_run_scored_by_length_has_a_lengths_page(tmp_path, size):
    run = length_run(tmp_path / "runs")

    async def main():
        app = make_app(runs_dir=tmp_path / "runs")
        async with app.run_test(size=size) as pilot:
            screen = await open_lengths_page(pilot, run)
            assert "lengths" in header_text(app) or size == (80, 24)  # 80 columns: only the page shown
            assert " lengths " in header_text(app)
            by_length, history = screen.query_one(LengthPlot), screen.query_one(LengthHistoryPlot)
            assert by_length.series == {"trained 1-10": 2, "over it": 2, "step 1000": 4}
            assert history.series == {"trained": 5, "15": 5, "20": 5, "30": 5, "40": 5}
            for plot in (by_length, history):
                assert plot.region.width >= 38 and plot.region.height >= 8, plot.region
            text = by_length.render().plain
            assert "░" in text and "error_rate by length, step 1000" in text
            x_labels = next(line for line in reversed(text.splitlines()) if line.split() and
                            all(word.isdigit() for word in line.split())).split()
            # round lengths, out to the longest (at 80 columns a 38-cell plot has room for two: 20 40)
            assert int(x_labels[-1]) >= 40 and len(x_labels) >= 2 and all(int(x) % 5 == 0 for x in x_labels)
            await pilot.press("tab")
            assert screen.page == "training"  # the cycle: training, dynamics, lengths

    asyncio.run(main())


def test_a_run_without_length_scores_has_no_lengths_page(fixture_runs):
    async def main():
        app = make_app(runs_dir=fixture_runs)
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await open_live(pilot, RunDir(fixture_runs / LSTM))
            await wait_for(pilot, lambda: screen.curves.end is not None, what="the data")
            await pilot.press("tab", "tab")
            assert screen.page == "training" and "lengths" not in header_text(app)
            assert screen.query_one(LengthPlot).series == {}

    asyncio.run(main())


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_snapshot_lengths(tmp_path, snap_compare, size, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = length_run(Path("runs"))

    async def run_before(pilot):
        await open_lengths_page(pilot, run)

    assert snap_compare(make_app(runs_dir=Path("runs")), terminal_size=size, run_before=run_before)
