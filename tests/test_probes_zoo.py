"""Architectures without an unrolled one-step form still get the spectra of their recurrent matrices."""

from __future__ import annotations

import pytest
import torch

from rnnlab import store
from rnnlab.probes import square_blocks
from rnnlab.train import Trainer, prepare

from tiny import tiny_config


@pytest.mark.parametrize("arch,names,extra", [
    ("delay", {"layer0.d1", "layer0.d2", "layer0.d4", "layer0.d8"}, {}),
    ("clockwork", {"layer0"}, {}),
    ("jordan", {"loop"}, {}),
    # an echo state network traces itself (models/esn.py): every reservoir's W, deep or parallel
    ("esn", {"layer0", "layer1", "layer2"}, {"model__layers": 3, "model__layout": "parallel",
                                             "model__rc_connectivity": 0.5}),
])
def test_spectrum_events_for_every_recurrent_matrix(tmp_path, arch, names, extra):
    cfg = tiny_config(tmp_path, model__arch=arch, train__steps=4, probes__every=2, **extra)
    run = store.create_run(tmp_path / "runs", arch)
    prepared = prepare(cfg)
    assert Trainer(prepared, run).train().state == "finished"
    spectra = [e for e in run.read_events() if e["kind"] == "spectrum"]
    assert [e["step"] for e in spectra] == [2, 4]
    assert set(spectra[-1]["matrices"]) == names
    for name, matrix in square_blocks(prepared.model).items():
        radius = float(torch.linalg.eigvals(matrix.detach().double()).abs().max())
        assert spectra[-1]["matrices"][name]["radius"] == pytest.approx(radius, rel=1e-4)


def test_gate_stacks_are_cut_into_square_blocks():
    class Stacked(torch.nn.Module):
        def recurrent_matrices(self):
            return {"w": torch.zeros(12, 4), "odd": torch.zeros(5, 4), "square": torch.eye(3)}

    blocks = square_blocks(Stacked())
    assert set(blocks) == {"w.0", "w.1", "w.2", "square"} and blocks["w.1"].shape == (4, 4)


def test_the_live_view_says_gradient_flow_is_not_traced_for_such_an_architecture():
    from rnnlab.curves import RunCurves
    from rnnlab.tui.widgets.plots import GradFlowPlot

    curves = RunCurves()
    plot = GradFlowPlot()
    assert plot.plot(curves) is None  # nothing yet: "no data yet"
    curves.feed([{"kind": "spectrum", "step": 2, "t": 0.1, "matrices": {}}])
    assert "not traced for this architecture" in plot.plot(curves)


def test_an_empty_plot_of_a_run_that_has_ended_says_none_was_recorded():
    """A feedforward NTM (ntm-copy) has no recurrent state: its dynamics plots stay empty, and once the run
    has ended "no data yet" would promise data that never comes."""
    import asyncio

    from textual.app import App

    from rnnlab.curves import RunCurves
    from rnnlab.tui.widgets.plots import GradFlowPlot

    async def main():
        app = App()
        async with app.run_test():
            plot = GradFlowPlot()
            await app.mount(plot)
            curves = RunCurves()
            plot.draw(curves)
            assert plot.shown_title.endswith(": no data yet")
            curves.feed([{"kind": "end", "step": 20, "t": 1.0, "state": "finished"}])
            plot.draw(curves)
            assert plot.shown_title.endswith(": none recorded")
    asyncio.run(main())
