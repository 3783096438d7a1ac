"""The caption screen: a captioning run's held-out scenes in half blocks, each word's attention map, the keys."""

from __future__ import annotations

import asyncio

import pytest

from rnnlab import store
from rnnlab.captioning import caption, load_captioner
from rnnlab.console import attended_image
from rnnlab.train import Trainer, prepare
from rnnlab.tui.app import make_app
from rnnlab.tui.screens.caption import CaptionScreen
from rnnlab.tui.screens.live import LiveScreen

from test_caption import caption_config
from test_tui_launch_sample import text_of
from tui_fixtures import wait_for


def trained(runs_dir, **extra) -> store.RunDir:
    cfg = caption_config(**{"train.steps": 20, "train.eval_every": 20, "train.checkpoint_every": 20, **extra})
    run = store.create_run(runs_dir, "cap")
    store.atomic_write(run.config_path, cfg.to_toml().encode())
    assert Trainer(prepare(cfg), run).train().state == "finished"
    return run


@pytest.fixture(scope="module")
def caption_runs(tmp_path_factory):
    runs_dir = tmp_path_factory.mktemp("tui-caption") / "runs"
    return runs_dir, trained(runs_dir), trained(runs_dir, **{"model.attention": "none"})


def map_of(screen) -> str:
    return str(screen.query_one("#map").render())


def on_app(runs_dir, scenario) -> None:
    """Run `scenario(app, pilot)` in the app on `runs_dir` (100 x 30)."""
    app = make_app(runs_dir=runs_dir)

    async def main():
        async with app.run_test(size=(100, 30)) as pilot:
            await scenario(app, pilot)

    asyncio.run(main())


async def opened(app, pilot, run) -> CaptionScreen:
    """The caption screen of `run`, once its first scene is decoded."""
    app.open_caption(run)
    await pilot.pause()
    screen = app.screen
    assert isinstance(screen, CaptionScreen)
    await wait_for(pilot, lambda: screen.result is not None or "no checkpoint" in text_of(screen, "#title"),
                   what="the first caption")
    return screen


def test_the_screen_steps_through_words_scenes_and_beams(caption_runs):
    runs_dir, run, _ = caption_runs
    expected = caption(load_captioner(run), 0)

    async def scenario(app, pilot):
        screen = await opened(app, pilot, run)
        title = text_of(screen, "#title")
        assert title.startswith("scene 0 (beam 1, checkpoint step 20): " + " ".join(expected.words))
        image = str(screen.query_one("#image").render()).splitlines()
        assert len(image) == 8 and all(set(line) == {"▀"} and len(line) == 16 for line in image)
        words = [*expected.words, "<eos>"]
        assert text_of(screen, "#map-label").startswith(f"attention for {words[0]}  (word 1/{len(words)}")
        assert screen.query_one("#map").content == attended_image(expected.image, expected.attention[0], 4)
        await pilot.press("right")
        assert screen.word == 1 and text_of(screen, "#map-label").startswith(f"attention for {words[1]} ")
        assert screen.query_one("#map").content == attended_image(expected.image, expected.attention[1], 4)
        assert expected.attention[1] != expected.attention[0]  # so the map changed with the word
        await pilot.press("left", "left")
        assert screen.word == len(words) - 1  # wraps around to the EOS
        await pilot.press("n")
        await wait_for(pilot, lambda: text_of(screen, "#title").startswith("scene 1 "), what="scene 1")
        assert screen.word == 0 and screen.result.words == caption(load_captioner(run), 1).words
        await pilot.press("p", "p")  # never below scene 0
        await wait_for(pilot, lambda: text_of(screen, "#title").startswith("scene 0 "), what="scene 0")
        await pilot.press("b")
        await wait_for(pilot, lambda: text_of(screen, "#title").startswith("scene 0 (beam 3"), what="beam 3")
        assert screen.result.words == caption(load_captioner(run), 0, beam=3).words
        await pilot.press("escape")
        assert not isinstance(app.screen, CaptionScreen)

    on_app(runs_dir, scenario)


def test_a_fixed_context_run_has_no_map_and_says_why(caption_runs):
    runs_dir, _, fixed = caption_runs

    async def scenario(app, pilot):
        screen = await opened(app, pilot, fixed)
        assert screen.result.attention is None and map_of(screen) == ""
        assert "fixed image vector" in text_of(screen, "#note")
        await pilot.press("right")  # nothing to step through, no crash
        assert text_of(screen, "#title").startswith("scene 0 ")

    on_app(runs_dir, scenario)


def test_the_live_screen_opens_it_for_a_captioning_run(caption_runs):
    runs_dir, run, _ = caption_runs

    async def scenario(app, pilot):
        app.open_live(run)
        await wait_for(pilot, lambda: isinstance(app.screen, LiveScreen) and app.screen.arch == "image_caption",
                       what="the live screen")
        assert app.screen.check_action("attention", ()) is True  # in the footer
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, CaptionScreen), what="the caption screen")
        await pilot.press("escape")
        await pilot.press("x")  # "sample" a captioner: caption its scenes
        await wait_for(pilot, lambda: isinstance(app.screen, CaptionScreen), what="the caption screen again")

    on_app(runs_dir, scenario)


def test_a_run_without_a_checkpoint_says_so(tmp_path):
    run = store.create_run(tmp_path / "runs", "cap")
    store.atomic_write(run.config_path, caption_config().to_toml().encode())

    async def scenario(app, pilot):
        screen = await opened(app, pilot, run)
        title = text_of(screen, "#title")
        assert screen.result is None and "no checkpoint" in title and title.count("\n") == 0

    on_app(tmp_path / "runs", scenario)


def test_snapshot(caption_runs, snap_compare):
    runs_dir, run, _ = caption_runs
    app = make_app(runs_dir=runs_dir)

    async def run_before(pilot):
        app.open_caption(run)
        await wait_for(pilot, lambda: isinstance(app.screen, CaptionScreen) and app.screen.result is not None,
                       what="the caption")
        await pilot.press("right", "right")
        await pilot.pause(0.1)

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)
