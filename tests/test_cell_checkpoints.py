"""Checkpoints of every cell-based arch load after the cells moved to one home (issue 16).

state_dict_keys_main.json holds, for each custom/deep/birnn variant, the state_dict key names and
shapes that main's code before the move (commit 28a18d1) built, for the config sets recorded beside
them; a run directory saved then must load and resume now.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from rnnlab import config
from rnnlab.models import ARCHS, TaskSpec, build_model
from rnnlab.models.cells import CELLS
from rnnlab.models.deep import CellChoiceOptions

FEATURES = TaskSpec(input_size=3, output_size=2)
RECORDED = json.loads((Path(__file__).parent / "state_dict_keys_main.json").read_text())


@pytest.mark.parametrize("variant", sorted(RECORDED))
def test_state_dict_keys_and_shapes_are_mains(variant):
    recorded = RECORDED[variant]
    model = build_model(config.load(None, recorded["sets"]).model, FEATURES)
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert ours == recorded["keys"]  # same names, same shapes, same order
    saved = {k: torch.randn(shape) for k, shape in recorded["keys"].items()}  # a state_dict as main saved it
    model.load_state_dict(saved, strict=True)
    torch.testing.assert_close(model.state_dict(), saved, atol=0, rtol=0)


def test_every_cell_of_the_table_is_an_arch_and_a_choice_of_model_cell():
    """What adding a row to cells.CELLS gives without touching another file."""
    for name, cell in CELLS.items():
        model_class = ARCHS.get(cell.Options.arch)
        assert model_class.cell_class is cell and model_class.Options is cell.Options
        assert model_class.summary == cell.summary
        options = config.load(None, ["model.arch=deep", f"model.cell={name}"]).model
        assert type(build_model(options, FEATURES).stack[0]) is cell
    assert CellChoiceOptions().cell in CELLS
    assert list(CELLS)[:8] == ["elman", "lstm", "gru", "mgu", "lstm_peephole", "leaky", "residual",
                               "gated_residual"]  # main's order of model.cell's choices, new cells after
