"""A tree model's run in the live view: its gradient flow by depth and its composition spectra are drawn."""

from __future__ import annotations

import asyncio

from rnnlab import config, store
from rnnlab.train.loop import Trainer, prepare
from rnnlab.tui import make_app
from rnnlab.tui.widgets.plots import EigenPlot, GradFlowPlot
from test_tui_live import open_live
from tui_fixtures import wait_for


def test_live_view_draws_a_tree_models_probes(tmp_path):
    cfg = config.load(None, ["name=tree", "model.arch=treernn", "model.hidden=8", "task.name=listops",
                             "task.operators=3", "task.shape=left", "task.max_args=2", "device=cpu",
                             "train.steps=8", "train.batch_size=8", "train.eval_every=4", "train.eval_batches=1",
                             "train.checkpoint_every=8", "probes.every=4"])
    run = store.create_run(tmp_path / "runs", "tree")
    assert Trainer(prepare(cfg), run).train().state == "finished"

    async def main():
        app = make_app(runs_dir=tmp_path / "runs")
        async with app.run_test(size=(100, 34)) as pilot:
            screen = await open_live(pilot, run)
            await wait_for(pilot, lambda: not screen.dirty, what="the repaint")
            await pilot.press("tab")
            await pilot.pause()
            assert screen.query_one("ContentSwitcher").current == "dynamics"
            # a left chain of 3 binarised operators: each is 2 levels (its chain node and its operator leaf)
            assert screen.query_one(GradFlowPlot).series == {"tree": 7}
            assert "by depth in the tree" in screen.query_one(GradFlowPlot).render().plain
            assert screen.query_one(EigenPlot).series == {"W_left": 8, "W_right": 8}

    asyncio.run(main())
