"""The launch and sample screens, driven through the app with Pilot, plus snapshots.

pytest-asyncio is not a dependency: each test runs its scenario with asyncio.run.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import time
import tomllib
from pathlib import Path

import pytest
import tomli_w
from rich.style import Style

from rnnlab import config
from rnnlab.errors import ConfigError
from rnnlab.sampling import beam_generate, generate, load_language_model
from rnnlab.tui.app import make_app
from rnnlab.tui.screens import sample as sample_screen
from rnnlab.tui.screens.launch import LaunchScreen

from tiny import overrides as tiny_overrides
from tui_fixtures import make_fixture_runs, wait_for

SIZE = (100, 34)


@pytest.fixture(scope="module")
def fixture_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("fixture")
    return root / "runs", make_fixture_runs(root / "runs", root)


def write_tiny_preset(folder: Path, tmp_path: Path, **extra) -> Path:
    """tests.tiny's overrides as a preset file: what a user would keep in experiments/."""
    raw: dict = {}
    for text in tiny_overrides(tmp_path, **extra):
        path, value = config.parse_override(text)
        table = raw.setdefault(path[0], {}) if len(path) == 2 else raw
        try:
            table[path[-1]] = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            table[path[-1]] = value  # a plain string (a path)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "tiny.toml"
    path.write_text("# A tiny run for the tests\n" + tomli_w.dumps({"name": "tiny-launch", **raw}))
    return path


def text_of(screen, selector: str) -> str:
    return str(screen.query_one(selector).render())


def has_backgrounds(text) -> bool:
    return bool(text.spans) and all(Style.parse(str(span.style)).bgcolor is not None for span in text.spans)


# -- launch ---------------------------------------------------------------------------------
def test_launch_validates_inline_and_starts_the_same_rnnlab_run(tmp_path):
    preset = write_tiny_preset(tmp_path / "experiments", tmp_path, train__steps=30)
    runs_dir = tmp_path / "runs"
    app = make_app(runs_dir=runs_dir, experiments_dir=tmp_path / "experiments")

    async def scenario():
        async with app.run_test(size=SIZE) as pilot:
            app.open_launch()
            await wait_for(pilot, lambda: isinstance(app.screen, LaunchScreen) and app.screen.valid, what="form")
            screen = app.screen
            assert screen.preset == preset and screen.value("model.hidden") == "16"
            assert screen.overrides() == []  # nothing changed: the preset alone

            screen.widget("model.hidden").focus()
            screen.widget("model.hidden").value = ""
            await pilot.press("0")
            assert text_of(screen, "#problem-model-hidden") == "model.hidden = 0: out of range; allowed: integer >= 1"
            assert screen.query_one("#launch").disabled
            await pilot.press("ctrl+l")  # refused while invalid
            assert app.children_started == []

            screen.widget("model.hidden").value = "24"
            screen.widget("task.corpus").value = "no/such/corpus.txt"
            await pilot.pause()
            assert text_of(screen, "#problem-model-hidden") == ""  # one error at a time, like rnnlab run
            assert text_of(screen, "#problem-task-corpus").startswith("task.corpus = ")
            assert text_of(screen, "#problem-task-corpus").endswith(
                "no/such/corpus.txt': file not found; allowed: 'stdlib' or a path to a UTF-8 text file")
            screen.widget("task.corpus").value = str(tmp_path / "corpus.txt")  # as in the preset

            # An error only the trainer finds (the corpus is too short): the child's line, inline.
            screen.widget("task.seq_len").value = "100000"
            await pilot.pause()
            assert screen.valid and not screen.query_one("#launch").disabled
            await pilot.press("ctrl+l")
            await wait_for(pilot, lambda: text_of(screen, "#problem-task-seq_len"), 60, "the child's error")
            assert text_of(screen, "#problem-task-seq_len").startswith(
                "task.seq_len = 100000: longer than the corpus allows")
            assert app.screen is screen and app.children_started[0].wait(10) == 2

            field = screen.widget("task.seq_len")
            field.value = "16"
            field.focus()  # the user types the fix into the field, then presses enter there
            await wait_for(pilot, lambda: app.focused is field and screen.valid, what="the fixed field focused")
            assert screen.overrides() == ["model.hidden=24"]  # only the departures from the preset
            await pilot.press("enter")  # enter in a field launches too
            await wait_for(pilot, lambda: type(app.screen).__name__ == "LiveScreen", 120, "the live view")
            live = app.screen
            assert live.process is app.children_started[1]
            assert LaunchScreen not in [type(s) for s in app.screen_stack]  # escape goes back to the runs
            await wait_for(pilot, lambda: live.process.poll() is not None, 60, "the run to finish")
            return live.run

    try:
        run = asyncio.run(scenario())
        assert run.read_status()["state"] == "finished"
        resolved = config.load(run.config_path)
        assert (resolved.name, resolved.model.hidden, resolved.train.steps) == ("tiny-launch", 24, 30)
        assert len(list(tmp_path.glob("runs/.launch-*.log"))) >= 1
    finally:
        kill_children(app)


def test_launch_with_a_sweep_field_starts_rnnlab_sweep_and_opens_the_sweep(tmp_path):
    write_tiny_preset(tmp_path / "experiments", tmp_path, train__steps=6)
    app = make_app(runs_dir=tmp_path / "runs", experiments_dir=tmp_path / "experiments")

    async def scenario():
        from textual.widgets import TextArea

        from rnnlab.tui.screens.sweep import SweepScreen

        async with app.run_test(size=SIZE) as pilot:
            app.open_launch()
            await wait_for(pilot, lambda: isinstance(app.screen, LaunchScreen) and app.screen.valid, what="form")
            screen = app.screen
            field = screen.query_one("#field-sweep", TextArea)
            field.text = "model.hidden="
            await pilot.pause()
            assert text_of(screen, "#problem-sweep").startswith("--sweep = 'model.hidden=': expected key=v1,v2,...")
            assert not screen.valid and screen.query_one("#launch").disabled
            field.text = "model.hidden=8,12\nseeds=0"
            await pilot.pause()
            assert screen.valid and text_of(screen, "#problem-sweep") == ""
            assert "a sweep of 2 trials" in text_of(screen, "#help")
            await pilot.press("ctrl+l")
            await wait_for(pilot, lambda: isinstance(app.screen, SweepScreen), 60, "the sweep screen")
            sweep_screen = app.screen
            assert LaunchScreen not in [type(s) for s in app.screen_stack]
            driver = app.children_started[0]
            await wait_for(pilot, lambda: driver.poll() is not None, 90, "the sweep to finish")
            await wait_for(pilot, lambda: "2 done" in text_of(sweep_screen, "#progress"), what="the results")
            return sweep_screen.sweep, driver.returncode

    try:
        sweep, code = asyncio.run(scenario())
        assert code == 0
        record = sweep.read()
        assert record["state"] == "finished" and sorted(t["point"]["model.hidden"] for t in record["trials"]) == [8, 12]
    finally:
        kill_children(app)


def kill_children(app) -> None:
    for process in app.children_started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


# -- sample -------------------------------------------------------------------------------
def test_sample_streams_the_same_text_as_generate_and_colours_it(fixture_runs, tmp_path, monkeypatch):
    runs_dir, runs = fixture_runs
    monkeypatch.setattr(sample_screen, "FLUSH_SECONDS", 0.0)  # every character is its own chunk
    app = make_app(runs_dir=runs_dir, experiments_dir=tmp_path)

    async def scenario():
        async with app.run_test(size=SIZE) as pilot:
            app.open_sample(runs["lstm"])
            screen = app.screen
            await wait_for(pilot, lambda: screen.state == "ready", what="the checkpoint")
            assert "step 12" in text_of(screen, "#info")
            chunks = []
            add = screen._add
            monkeypatch.setattr(screen, "_add", lambda serial, chunk: (chunks.append(chunk), add(serial, chunk)))
            screen.query_one("#length").value = "100000"
            # A long generation, replaced by the next one before it ends. (Not pilot.press: it waits for
            # the screen to be idle, and a stream of characters keeps it busy.)
            screen.action_generate()
            await wait_for(pilot, lambda: len(screen.generated) > 5, what="the first characters")
            for name, value in (("prompt", "the "), ("length", "40"), ("seed", "7"), ("temperature", "0.8"),
                                ("top_k", "5")):
                screen.query_one(f"#{name}").value = value
            await pilot.pause()
            await pilot.press("g")
            await wait_for(pilot, lambda: screen.state == "done", what="the generation")
            assert len([c for c in chunks if c]) > 1  # streamed, not delivered at the end

            loaded = load_language_model(runs["lstm"], "best")
            expected = "the " + "".join(generate(loaded.model, loaded.vocab, "the ", 40, 0.8, 5, seed=7))
            assert screen.prompt + screen.generated == expected and len(expected) == 44
            assert screen.rendered.plain == expected
            assert screen.query_one("#text").render().plain == expected

            await pilot.press("u")
            assert has_backgrounds(screen.rendered) and screen.rendered.plain == expected
            first = (screen.unit_layer, screen.unit)
            assert text_of(screen, "#legend").startswith(f"layer {first[0]} unit {first[1]}")
            await pilot.press("right_square_bracket")
            assert (screen.unit_layer, screen.unit) != first and screen.mode == "unit"
            await pilot.press("left_square_bracket")
            assert (screen.unit_layer, screen.unit) == first
            await pilot.press("v")
            assert has_backgrounds(screen.rendered) and text_of(screen, "#legend").startswith("surprisal")
            await pilot.press("o")
            assert not any(Style.parse(str(s.style)).bgcolor for s in screen.rendered.spans)

            await pilot.click("#prompt")  # typing in a field is typing, not a shortcut
            await pilot.press("end", "g")
            assert screen.query_one("#prompt").value == "the g" and screen.state == "done"
            screen.query_one("#prompt").value = "THE"
            await pilot.pause()
            with pytest.raises(ConfigError) as error:
                loaded.vocab.encode("THE")
            assert text_of(screen, "#problem") == str(error.value)
            await pilot.press("g")  # refused: the old text stays
            assert screen.rendered.plain == expected

    asyncio.run(scenario())


def test_sample_with_top_p_and_beam_search(fixture_runs, tmp_path):
    runs_dir, runs = fixture_runs
    app = make_app(runs_dir=runs_dir, experiments_dir=tmp_path)
    loaded = load_language_model(runs["lstm"], "best")

    async def scenario():
        async with app.run_test(size=SIZE) as pilot:
            app.open_sample(runs["lstm"])
            screen = app.screen
            await wait_for(pilot, lambda: screen.state == "ready", what="the checkpoint")
            for name, value in (("prompt", "the "), ("length", "15"), ("seed", "3"), ("top_p", "0.9")):
                screen.query_one(f"#{name}").value = value
            await pilot.pause()
            screen.action_generate()
            await wait_for(pilot, lambda: screen.state == "done", what="the nucleus sample")
            nucleus = "".join(generate(loaded.model, loaded.vocab, "the ", 15, 0.8, None, seed=3, top_p=0.9))
            assert screen.generated == nucleus
            screen.query_one("#beam").value = "3"
            await pilot.pause()
            screen.action_generate()
            await wait_for(pilot, lambda: screen.state == "done", what="the beam search")
            assert screen.generated == beam_generate(loaded.model, loaded.vocab, "the ", 15, 3)[0]
            screen.query_one("#top_p").value = "1.5"
            await pilot.pause()
            assert text_of(screen, "#problem") == "--top-p = 1.5: out of range; allowed: a number in (0, 1] (blank: all)"

    asyncio.run(scenario())


def test_sample_shows_one_line_for_runs_it_cannot_load(fixture_runs, tmp_path):
    runs_dir, runs = fixture_runs
    broken = shutil.copytree(runs["lstm"].path, tmp_path / "runs" / "20261118-140000-garbled-eeee")
    for name in ("best.pt", "last.pt"):
        (broken / "checkpoints" / name).write_bytes(b"not a checkpoint")
    app = make_app(runs_dir=tmp_path / "runs", experiments_dir=tmp_path)

    async def scenario():
        from rnnlab.store import RunDir

        async with app.run_test(size=SIZE) as pilot:
            for run, start in ((runs["corrupt"], "no checkpoint at "), (RunDir(broken), "cannot load ")):
                app.open_sample(run)
                screen = app.screen
                await wait_for(pilot, lambda: screen.state == "error", what="the error")
                assert text_of(screen, "#info").startswith(start) and "\n" not in text_of(screen, "#info")
                await pilot.press("g")  # nothing to generate with; no crash
                await pilot.press("escape")

    asyncio.run(scenario())


# -- snapshots ------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_snapshot_launch_defaults(snap_compare, tmp_path, size):
    app = make_app(runs_dir=tmp_path / "runs", experiments_dir=tmp_path / "no-presets")

    async def run_before(pilot):
        app.open_launch()
        await wait_for(pilot, lambda: isinstance(app.screen, LaunchScreen) and app.screen.valid)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_snapshot_launch_inline_error(snap_compare, tmp_path, size):
    app = make_app(runs_dir=tmp_path / "runs", experiments_dir=tmp_path / "no-presets")

    async def run_before(pilot):
        app.open_launch()
        await wait_for(pilot, lambda: isinstance(app.screen, LaunchScreen) and app.screen.valid)
        app.screen.widget("model.hidden").value = "0"
        await wait_for(pilot, lambda: not app.screen.valid)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_snapshot_sample_after_a_seeded_generation(snap_compare, fixture_runs, tmp_path, size):
    runs_dir, runs = fixture_runs
    app = make_app(runs_dir=runs_dir, experiments_dir=tmp_path)

    async def run_before(pilot):
        app.open_sample(runs["lstm"])
        screen = app.screen
        await wait_for(pilot, lambda: screen.state == "ready")
        for name, value in (("prompt", "the "), ("length", "120"), ("seed", "3")):
            screen.query_one(f"#{name}").value = value
        await pilot.press("g")
        await wait_for(pilot, lambda: screen.state == "done")
        await pilot.press("u")

    assert snap_compare(app, terminal_size=size, run_before=run_before)


def test_switching_the_task_drops_the_presets_keys_it_does_not_have(tmp_path):
    """quickstart is a charlm preset: choosing `adding` must validate and launch without its task.corpus."""
    import asyncio

    from textual.widgets import Select

    from rnnlab.tui import make_app
    from rnnlab.tui.screens.launch import LaunchScreen

    experiments = tmp_path / "presets"
    experiments.mkdir()
    (experiments / "lm.toml").write_text('[task]\nname = "charlm"\ncorpus = "stdlib"\nseq_len = 64\n')

    async def main():
        app = make_app(runs_dir=tmp_path / "runs", experiments_dir=experiments)
        async with app.run_test(size=(100, 34)) as pilot:
            await pilot.pause()
            app.open_launch()
            await wait_for(pilot, lambda: isinstance(app.screen, LaunchScreen) and app.screen.valid, what="form")
            screen = app.screen
            select = screen.widget("task.name")
            assert isinstance(select, Select)
            select.value = "adding"
            await pilot.pause()
            screen.validate(force=True)
            assert screen.valid, screen.query_one("#problem").render()
            assert text_of(screen, "#note") == ("note: task.corpus, task.seq_len dropped: they came from lm.toml "
                                                "and task.name = 'adding' has no such keys")
            assert screen.widget("task.corpus").disabled

    asyncio.run(main())


def test_switching_the_arch_keeps_what_applies_drops_the_rest_and_launches(tmp_path):
    """An LSTM preset with its forget bias, launched as a GRU: the form says what is dropped (config's rule,
    as `rnnlab run` applies it) and the run gets the preset's other keys."""
    preset = write_tiny_preset(tmp_path / "experiments", tmp_path, model__forget_bias=2.0, train__steps=2,
                               train__eval_every=0, train__checkpoint_every=0, probes__every=0)
    app = make_app(runs_dir=tmp_path / "runs", experiments_dir=preset.parent)

    async def scenario():
        async with app.run_test(size=SIZE) as pilot:
            app.open_launch()
            await wait_for(pilot, lambda: isinstance(app.screen, LaunchScreen) and app.screen.valid, what="form")
            screen = app.screen
            assert text_of(screen, "#note") == "" and not screen.query_one("#note").display
            screen.widget("model.arch").value = "gru"
            await pilot.pause()
            assert screen.valid, text_of(screen, "#problem")
            assert text_of(screen, "#note") == ("note: model.forget_bias dropped: it came from tiny.toml and "
                                                "model.arch = 'gru' has no such key")
            assert screen.overrides() == ["model.arch=gru"] and screen.value("model.hidden") == "16"
            await pilot.press("ctrl+l")
            await wait_for(pilot, lambda: type(app.screen).__name__ == "LiveScreen", 120, "the live view")
            live = app.screen
            await wait_for(pilot, lambda: live.process.poll() is not None, 60, "the run to finish")
            return live.run

    try:
        run = asyncio.run(scenario())
        assert run.read_status()["state"] == "finished"
        written = tomllib.loads(run.config_path.read_text())
        assert written["model"]["arch"] == "gru" and "forget_bias" not in written["model"]
        assert written["model"]["hidden"] == 16 and written["name"] == "tiny-launch"
        assert not list((tmp_path / "runs").glob(".launch-*.toml"))  # the child read the preset itself
    finally:
        for process in app.children_started:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)


def test_n_opens_the_launch_screen_at_once_while_the_registries_load(tmp_path, monkeypatch):
    """Importing the models and tasks (torch) took 2-5 s on the UI thread after `n`: now a thread does it,
    and the screen shows a loading indicator meanwhile."""
    import threading

    from textual.widgets import LoadingIndicator

    from rnnlab.tui.screens import launch

    release = threading.Event()
    real = launch.registries

    def slow_registries():
        release.wait(10)  # a cold import of torch, held until the test has looked at the screen
        return real()

    monkeypatch.setattr(launch, "registries", slow_registries)
    preset = write_tiny_preset(tmp_path / "experiments", tmp_path)
    app = make_app(runs_dir=tmp_path / "runs", experiments_dir=preset.parent)
    monkeypatch.setattr(app, "warm_up", lambda: None)

    async def scenario():
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            started = time.monotonic()
            await pilot.press("n")
            # under 8 s: the registries are held for 10 s, so a screen that waited for them would come later
            await wait_for(pilot, lambda: isinstance(app.screen, LaunchScreen), 8, "the launch screen")
            assert time.monotonic() - started < 8 and app.screen.query(LoadingIndicator)  # not blocked
            assert not app.screen.query("#preset")
            release.set()
            # the indicator goes in the update that fills the form, but its removal lands a message later
            await wait_for(pilot, lambda: app.screen.valid and not app.screen.query(LoadingIndicator), 30,
                           "the form, in place of the indicator")
            assert app.screen.value("model.hidden") == "16"

    try:
        asyncio.run(scenario())
    finally:
        release.set()
