"""The Studies screen through Pilot: the list with saved verdicts, one study (what to watch, its checks),
a launch that opens its sweep screen and ends with the verdict; snapshots."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest
from textual.widgets import DataTable, Static

from rnnlab import store, worker
from rnnlab.tui import make_app
from rnnlab.tui.screens.runs import RunsScreen
from rnnlab.tui.screens.studies import StudiesScreen, StudyScreen
from rnnlab.tui.screens.sweep import SweepScreen

from study_fixtures import PASSING, saved_result, study_text
from tui_fixtures import screen_text, synthetic_sweep, utc, wait_for  # noqa: F401  utc: autouse


@pytest.fixture
def lab(tmp_path):
    """An experiments folder with two studies (one with a saved verdict) and a runs folder."""
    studies = tmp_path / "experiments" / "studies"
    studies.mkdir(parents=True)
    (studies / "tiny-widths.toml").write_text(study_text(tmp_path, PASSING), encoding="utf-8")
    (studies / "tiny-other.toml").write_text(study_text(tmp_path, PASSING).replace("number = 1", "number = 2"),
                                             encoding="utf-8")
    runs = tmp_path / "runs"
    saved_result(runs, "tiny-widths")
    return tmp_path / "experiments", runs


async def to_studies(pilot) -> StudiesScreen:
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, RunsScreen)
                   and isinstance(pilot.app.screen.focused, DataTable), what="the runs screen")
    await pilot.press("t")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, StudiesScreen) and pilot.app.screen.studies,
                   what="the studies listed")
    # A DataTable sizes its columns to new rows on its next idle, which a loaded machine delays: wait until
    # the painted screen shows every name whole
    names = [study.name for study in pilot.app.screen.studies]
    await wait_for(pilot, lambda: all(f" {name} " in screen_text(pilot.app) for name in names), what="the names")
    return pilot.app.screen


def run(scenario, experiments, runs, size=(120, 40)):
    async def main():
        app = make_app(runs_dir=runs, experiments_dir=experiments)
        async with app.run_test(size=size, notifications=True) as pilot:
            await scenario(app, pilot, await to_studies(pilot))
    asyncio.run(main())


def test_the_list_shows_each_study_with_its_saved_verdicts_and_opens_one(lab):
    async def scenario(app, pilot, screen):
        table = screen.query_one(DataTable)
        assert [row.key.value for row in table.ordered_rows] == ["tiny-widths", "tiny-other"]  # by number
        assert [str(c) for c in table.get_row_at(0)[:4]] == ["1", "tiny-widths", "not reproduced", "-"]
        assert str(table.get_row_at(1)[2]) == "-"
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, StudyScreen), what="the study")
        text = screen_text(app)
        assert "What to watch, and why. Two widths, one seed" in text and "not reproduced" in text
        checks = app.screen.query_one("#checks", DataTable)
        assert checks.row_count == 2 and str(checks.get_row_at(1)[4]) == "fail"
        await pilot.press("tab")  # the full size: never run
        assert "not run yet" in str(app.screen.query_one("#verdict", Static).render())
        # never run: the study file's own checks, with their bounds, none measured
        assert checks.row_count == 1
        assert [str(c) for c in checks.get_row_at(0)] == ["loss at every point", "each < 100", "-", "", "not run"]
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen, what="back on the list")
    run(scenario, *lab)


def test_a_study_with_samples_shows_them_literally(lab):
    experiments, runs = lab
    result = saved_result(runs, "tiny-widths")
    result["samples"] = [{"point": {"model.hidden": 8}, "seed": 0, "run": "r", "step": 40, "temperature": 1.0,
                          "text": "def f():\n\treturn [red]1[/red]\x1b[2J"}]
    store.StudyDir(runs, "tiny-widths", "quick").write_result(result)

    async def scenario(app, pilot, screen):
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, StudyScreen), what="the study")
        box = app.screen.query_one("#samples", Static)
        assert box.display
        shown = str(box.render())
        assert "sample (model.hidden=8, seed 0, step 40, temperature 1.0):\ndef f():\n" in shown
        assert "return [red]1[/red]\\x1b[2J" in shown  # markup not obeyed, the escape shown
        await pilot.press("tab")  # the full size: never run, no samples
        assert not app.screen.query_one("#samples", Static).display
    run(scenario, experiments, runs)


def test_launching_starts_reproduce_opens_its_sweep_and_ends_with_the_verdict(lab, monkeypatch):
    experiments, runs = lab
    started, children = [], []

    def fake_start(runs_dir, name, size="quick", studies=None, log=None):
        """What `rnnlab reproduce` does first (its sweep and the record naming it), then a short child."""
        started.append((name, size))
        sweep = synthetic_sweep(runs_dir)
        store.StudyDir(runs_dir, "tiny-other", size).write_record({"sweep": sweep.id, "fingerprint": "x"})
        saved_result(runs_dir, "tiny-other", size, verdict="reproduced")
        children.append(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.5)"],
                                         start_new_session=True))
        return children[-1]

    monkeypatch.setattr(worker, "start_reproduce", fake_start)

    async def scenario(app, pilot, screen):
        await pilot.press("down", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, StudyScreen), what="the study")
        study_screen = app.screen
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, SweepScreen), what="its sweep screen")
        assert started == [(str(experiments / "studies" / "tiny-other.toml"), "quick")]
        assert app.children_started == children  # the quit prompt offers to stop it (it may have ended by now)
        await wait_for(pilot, lambda: "tiny-other (quick): reproduced" in screen_text(app),
                       what="the verdict's notice")
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is study_screen, what="back on the study")
        assert "reproduced" in str(study_screen.query_one("#verdict", Static).render())
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen and str(
            screen.query_one(DataTable).get_row_at(1)[2]) == "reproduced", what="the list's new verdict")
    run(scenario, experiments, runs)


def test_a_bad_study_file_is_shown_as_its_one_line_error(lab):
    experiments, runs = lab
    (experiments / "studies" / "broken.toml").write_text("[study]\nclaim = 3\n", encoding="utf-8")

    async def main():
        app = make_app(runs_dir=runs, experiments_dir=experiments)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen), what="the runs screen")
            await pilot.press("t")
            await wait_for(pilot, lambda: "study.claim = 3: expected str" in screen_text(app), timeout=60,
                           what="the error line")
    asyncio.run(main())


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_snapshot_study_screen(lab, snap_compare, size):
    experiments, runs = lab

    async def open_study(pilot):
        await to_studies(pilot)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, StudyScreen), what="the study")
        await pilot.pause()
    assert snap_compare(make_app(runs_dir=runs, experiments_dir=experiments), terminal_size=size,
                        run_before=open_study)


def test_snapshot_studies_list(lab, snap_compare):
    experiments, runs = lab
    assert snap_compare(make_app(runs_dir=runs, experiments_dir=experiments), terminal_size=(120, 40),
                        run_before=to_studies)


def test_a_fresh_checkout_shows_the_kept_verdict_and_says_where_it_comes_from(lab, monkeypatch):
    """No result of this machine's for tiny-other: its row and its screen show docs/results' kept one."""
    from rnnlab.studies import report, runner, spec

    experiments, runs = lab
    study = spec.find("tiny-other", experiments / "studies")
    kept = experiments.parent / report.DEFAULT_ARCHIVE
    kept.mkdir(parents=True)
    result = store.StudyDir(runs, "tiny-widths", "quick").read_result()
    result.update(verdict="reproduced", fingerprint=runner.result_fingerprint(study, "quick"))
    report.archive_path(kept, study, "quick").write_text(json.dumps(result), encoding="utf-8")
    monkeypatch.chdir(experiments.parent)

    async def scenario(app, pilot, screen):
        table = screen.query_one(DataTable)
        assert [str(c) for c in table.get_row_at(1)[:4]] == ["2", "tiny-other", "reproduced", "-"]
        await pilot.press("down", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, StudyScreen), what="the study")
        text = screen_text(app)
        assert "quick: reproduced" in text and f"as kept in {report.DEFAULT_ARCHIVE} (measured elsewhere" in text
    run(scenario, experiments, runs)
