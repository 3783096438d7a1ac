"""Deep RNNs (Pascanu et al. 2014) and bidirectional RNNs: gradchecked, equal to their references, trainable."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnlab import config, store
from rnnlab.errors import ConfigError
from rnnlab.models import TaskSpec, build_model
from rnnlab.models.bidirectional import BidirectionalModel
from rnnlab.models.deep import CELLS, scripted_loop
from rnnlab.train import Trainer, prepare

from model_checks import assert_compiled_loop_equals_eager
from tiny import tiny_config

FEATURES = TaskSpec(input_size=3, output_size=2)  # float inputs: no embedding between x and the cells
TOKENS = TaskSpec(input_size=5, output_size=3, vocab_size=5, pad=4)  # ids 0..3, 4 pads the end
CUSTOM_ARCH = {"elman": "elman_act", "lstm": "lstm_cell", "gru": "gru_cell"}  # the rest share the cell's name


def build(arch, spec=FEATURES, hidden=3, layers=2, **extra):
    sets = [f"model.arch={arch}", f"model.hidden={hidden}", f"model.layers={layers}", "model.embed=3"]
    sets += [f"model.{k}={v}" for k, v in extra.items()]
    torch.manual_seed(0)
    model = build_model(config.load(None, sets).model, spec).double()
    with torch.no_grad():  # zero-initialised peepholes would hide their own equations
        for name, p in model.named_parameters():
            if "peephole" in name:
                p.uniform_(-0.5, 0.5)
    return model.eval()


def padded_tokens(batch=3, steps=6, seed=0):
    """Token ids (B, T) whose rows end early, padded with 4: lengths 6, 4, 2 ..."""
    x = torch.randint(0, 4, (batch, steps), generator=torch.Generator().manual_seed(seed))
    for row in range(1, batch):
        x[row, steps - 2 * row:] = 4
    return x


def random_state(model, batch):
    state = model.init_state(batch)
    return tuple(torch.randn_like(s) for s in state) if isinstance(state, tuple) else torch.randn_like(state)


DEEP_VARIANTS = [
    {"cell": "elman", "transition_depth": 3},
    {"cell": "lstm", "transition_depth": 2},
    {"cell": "gru", "transition_depth": 2, "transition_shortcut": "true"},
    {"cell": "leaky", "transition_depth": 3, "transition_shortcut": "true", "tau": 2.0},
    {"cell": "mgu", "output_depth": 3},
    {"cell": "lstm_peephole", "input_skip": "true"},
    {"cell": "indrnn", "transition_depth": 2, "transition_shortcut": "true", "activation": "relu"},
    {"cell": "gated_residual", "transition_depth": 2, "transition_shortcut": "true", "output_depth": 2,
     "input_skip": "true"},
]


@pytest.mark.parametrize("extra", DEEP_VARIANTS, ids=lambda e: "-".join(map(str, e.values())))
def test_gradcheck_deep(extra):
    """Autograd through the scripted loop against finite differences: inputs, initial state, every parameter."""
    model = build("deep", hidden=2, layers=2, **extra)
    names = [n for n, _ in model.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in model.parameters()]
    x = torch.randn(2, 3, 3, dtype=torch.float64, requires_grad=True)
    state = random_state(model, 2)
    state = tuple(s.requires_grad_() for s in state) if isinstance(state, tuple) else (state.requires_grad_(),)

    def run(x, *rest):
        given = dict(zip(names, rest[len(state):]))
        y, final = torch.func.functional_call(model, given, (x, rest[:len(state)] if len(state) == 2 else rest[0]))
        return y, *(final if isinstance(final, tuple) else (final,))

    assert torch.autograd.gradcheck(run, (x, *state, *params), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("cell", ["mgu", "lstm_peephole", "gru"])
def test_gradcheck_birnn_custom_cells_on_padded_tokens(cell):
    model = build("birnn", TOKENS, hidden=2, layers=2, cell=cell)
    assert not model.fused or cell == "gru"
    if cell == "gru":
        model = BidirectionalModel(model.options, TOKENS, fused=False).double().eval()
    names = [n for n, _ in model.named_parameters()]
    x = padded_tokens(3, 5)

    def run(*params):
        return torch.func.functional_call(model, dict(zip(names, params)), (x,))[0]

    params = [p.detach().clone().requires_grad_() for p in model.parameters()]
    assert torch.autograd.gradcheck(run, params, eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("cell", list(CELLS))
def test_deep_with_defaults_equals_the_custom_stacked_model(cell):
    deep = build("deep", hidden=4, layers=3, cell=cell)
    custom = build(CUSTOM_ARCH.get(cell, cell), hidden=4, layers=3)
    custom.load_state_dict({k.replace("stack.", "cells."): v for k, v in deep.state_dict().items()})
    x = torch.randn(3, 5, 3, dtype=torch.float64, requires_grad=True)
    state = random_state(deep, 3)
    (y, final), (ref_y, ref_final) = deep(x, state), custom(x, state)
    torch.testing.assert_close(y, ref_y, atol=1e-10, rtol=0)
    for ours, theirs in zip(final if isinstance(final, tuple) else (final,),
                            ref_final if isinstance(ref_final, tuple) else (ref_final,)):
        torch.testing.assert_close(ours, theirs, atol=1e-10, rtol=0)
    weights = torch.randn_like(y)
    ours = torch.autograd.grad((y * weights).sum(), [x, *deep.stack.parameters()])
    theirs = torch.autograd.grad((ref_y * weights).sum(), [x, *custom.cells.parameters()])
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=0)


def test_deep_scripted_loop_equals_eager():
    assert scripted_loop() is not None  # TorchScript compiles the loop: the speed path is the one tested
    model = build("deep", cell="gru", transition_depth=3, transition_shortcut="true", output_depth=2,
                  input_skip="true")
    x = torch.randn(2, 5, 3, dtype=torch.float64)
    assert_compiled_loop_equals_eager(model, x)


def test_deep_transition_follows_its_equation():
    """Elman, one layer, depth 3 with shortcut: h_t = tanh(W x_t + b + U z + S h_{t-1}), z = tanh(V2 tanh(V1 h + c1) + c2)."""
    model = build("deep", hidden=3, layers=1, cell="elman", transition_depth=3, transition_shortcut="true")
    cell, (v1, v2), shortcut = model.stack[0], model.transitions[0], model.shortcuts[0]
    x = torch.randn(2, 4, 3, dtype=torch.float64)
    h, expected = torch.zeros(2, 3, dtype=torch.float64), []
    for t in range(4):
        z = torch.tanh(v2(torch.tanh(v1(h))))
        h = torch.tanh(x[:, t] @ cell.weight_ih.T + cell.bias_ih + cell.bias_hh + z @ cell.weight_hh.T
                       + h @ shortcut.T)
        expected.append(h)
    torch.testing.assert_close(model(x)[0], model.head(torch.stack(expected, 1)), atol=1e-12, rtol=0)


@pytest.mark.parametrize("cell", ["elman", "lstm", "gru"])
def test_birnn_custom_cells_equal_the_fused_kernels(cell):
    """Same weights: the custom cells' loop in each direction = torch's fused one-way kernels."""
    fused = build("birnn", TOKENS, hidden=3, layers=2, cell=cell)
    custom = BidirectionalModel(fused.options, TOKENS, fused=False).double().eval()
    assert fused.fused and not custom.fused
    reference = dict(fused.named_parameters())
    custom_name = lambda name: name + "_l0" if name.endswith(("_ih", "_hh")) else name  # noqa: E731
    custom.load_state_dict({name: reference[custom_name(name)] for name in custom.state_dict()})
    for x in (padded_tokens(), torch.randint(0, 4, (2, 5))):  # with and without padding
        y, ref = custom(x)[0], fused(x)[0]
        torch.testing.assert_close(y, ref, atol=1e-10, rtol=0)
        weights = torch.randn_like(y)
        names = [name for name, _ in custom.named_parameters()]
        ours = torch.autograd.grad((y * weights).sum(), list(custom.parameters()))
        theirs = torch.autograd.grad((ref * weights).sum(), [reference[custom_name(n)] for n in names])
        for a, b in zip(ours, theirs):
            torch.testing.assert_close(a, b, atol=1e-10, rtol=0)


def test_birnn_equals_torch_bidirectional_lstm():
    """torch's 2-layer bidirectional nn.LSTM, on padded rows as packed sequences: the same outputs."""
    model = build("birnn", TOKENS, hidden=3, layers=2, cell="lstm", forget_bias=2.0)
    reference = nn.LSTM(3, 3, num_layers=2, batch_first=True, bidirectional=True).double()
    with torch.no_grad():
        for layer in range(2):
            for layers, suffix in ((model.forward_layers, ""), (model.backward_layers, "_reverse")):
                for name, weight in layers[layer].named_parameters():  # weight_ih_l0 ...
                    getattr(reference, name.replace("_l0", f"_l{layer}{suffix}")).copy_(weight)
    x = torch.randint(0, 4, (2, 5))
    torch.testing.assert_close(model(x)[0], model.head(reference(model.embed(x))[0]), atol=1e-10, rtol=0)
    x = padded_tokens()
    packed = pack_padded_sequence(model.embed(x), (x != 4).sum(1), batch_first=True, enforce_sorted=False)
    hidden = pad_packed_sequence(reference(packed)[0], batch_first=True, total_length=x.shape[1])[0]
    torch.testing.assert_close(model(x)[0], model.head(hidden), atol=1e-10, rtol=0)


@pytest.mark.parametrize("arch,extra", [("birnn", {"cell": "lstm"}), ("birnn", {"cell": "residual"}),
                                        ("deep", {"cell": "lstm", "transition_depth": 2, "input_skip": "true"})])
def test_only_a_bidirectional_model_sees_later_inputs(arch, extra):
    model = build(arch, hidden=3, layers=2, **extra)
    x = torch.randn(2, 6, 3, dtype=torch.float64)
    later = x.clone()
    later[:, 4] += 1.0  # change only the input at t = 4
    before, after = model(x)[0], model(later)[0]
    changed = (before - after).abs().amax(dim=(0, 2)) > 1e-9  # (T,): which outputs moved
    assert changed[4:].all()
    assert changed[:4].all() == (arch == "birnn") and changed[:4].any() == (arch == "birnn")


def test_birnn_refuses_a_causal_task_at_build_time(tmp_path):
    with pytest.raises(ConfigError, match="would read the answers") as error:
        prepare(tiny_config(tmp_path, model__arch="birnn"))  # charlm: the input at t + 1 is the target at t
    assert "\n" not in str(error.value) and str(error.value).startswith("model.arch = 'birnn'")


def test_birnn_carries_no_state():
    model = build("birnn", cell="gru")
    assert BidirectionalModel.carries_state is False and model.init_state(2) is None
    with pytest.raises(ValueError, match="no state to carry"):
        model(torch.randn(2, 4, 3, dtype=torch.float64), torch.zeros(4, 2, 3, dtype=torch.float64))


def test_options_that_the_cell_would_ignore_are_refused():
    with pytest.raises(ConfigError, match="model.transition_shortcut = True: a shortcut skips"):
        config.load(None, ["model.arch=deep", "model.transition_shortcut=true"])
    with pytest.raises(ConfigError, match="model.activation = 'relu': cell 'gru' has fixed activations"):
        config.load(None, ["model.arch=birnn", "model.cell=gru", "model.activation=relu"])
    with pytest.raises(ConfigError, match="model.forget_bias = 2.0: cell 'elman' has no forget gate"):
        config.load(None, ["model.arch=deep", "model.cell=elman", "model.forget_bias=2.0"])


def test_recurrent_matrices_are_square_blocks():
    deep = build("deep", hidden=4, layers=2, cell="lstm", transition_depth=3, transition_shortcut="true")
    blocks = deep.recurrent_matrices()
    assert len(blocks) == 2 * (4 + 2 + 4) and all(b.shape == (4, 4) for b in blocks.values())
    for arch_cell in ("gru", "mgu"):
        bi = build("birnn", hidden=4, layers=2, cell=arch_cell)
        assert len(bi.recurrent_matrices()) == 2 * 2 * (3 if arch_cell == "gru" else 2)
        assert all(b.shape == (4, 4) for b in bi.recurrent_matrices().values())


@pytest.mark.parametrize("sets", [
    {"model__arch": "deep", "model__cell": "gru", "model__transition_depth": 2, "model__transition_shortcut": "true",
     "model__output_depth": 2, "model__input_skip": "true", "model__layers": 2},
    {"model__arch": "birnn", "model__cell": "lstm", "task__name": "flank_sum", "task__length": 12,
     "task__min_length": 8, "task__before": 1, "task__after": 1},
    {"model__arch": "birnn", "model__cell": "leaky", "task__name": "markov_source", "task__length": 10},
], ids=["deep-charlm", "birnn-fused-flank_sum", "birnn-cells-markov_source"])
def test_each_arch_trains(tmp_path, sets):
    if sets.get("task__name"):  # a generated task: no corpus to point at
        cfg = config.load(None, [f"{k.replace('__', '.')}={v}" for k, v in {
            "device": "cpu", "model__hidden": 8, "model__embed": 4, "model__layers": 1, "train__steps": 12,
            "train__batch_size": 8, "train__eval_every": 6, "train__eval_batches": 1, "train__lr": 0.02,
            "model__dropout": 0.1, **sets}.items()])
    else:
        cfg = tiny_config(tmp_path, train__lr=0.02, model__dropout=0.1, train__steps=8, train__checkpoint_every=8,
                          **sets)
    run = store.create_run(tmp_path / "runs", sets["model__arch"])
    assert Trainer(prepare(cfg), run).train().state == "finished"
    losses = [e["loss"] for e in run.read_events() if e["kind"] == "train"]
    assert all(math.isfinite(v) for v in losses) and min(losses[-3:]) < losses[0]
