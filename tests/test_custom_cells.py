"""Custom cells: torch's own LSTM/GRU reproduced exactly, every cell gradchecked, and all train with probes."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rnnlab import config, store
from rnnlab.models import TaskSpec, build_model
from rnnlab.models.custom import compile_path
from rnnlab.train import Trainer, prepare

from model_checks import assert_compiled_loop_equals_eager
from tiny import tiny_config

FEATURES = TaskSpec(input_size=3, output_size=2)  # float inputs: no embedding between x and the cells

# (arch, extra --set keys): every custom cell type and option variant
VARIANTS = [("elman_act", {"activation": a}) for a in ("tanh", "relu", "relu6", "elu", "softplus", "softsign", "linear")]
VARIANTS += [
    ("lstm_peephole", {}), ("lstm_peephole", {"coupled": "true"}), ("mgu", {}),
    ("leaky", {"tau": 3.0}), ("leaky", {"tau_mode": "learned"}), ("leaky", {"tau_mode": "per_unit"}),
    ("leaky", {"timescales": "[1,4,16]"}), ("leaky", {"timescales": "[2,8]", "tau_mode": "per_unit"}),
    ("residual", {}), ("gated_residual", {}), ("lstm_cell", {}), ("gru_cell", {}),
    ("indrnn", {}), ("indrnn", {"activation": "relu", "recurrent_max": 0.9}),
]
ARCHS = sorted({arch for arch, _ in VARIANTS})


def build(arch, spec=FEATURES, hidden=3, layers=2, **extra):
    sets = [f"model.arch={arch}", f"model.hidden={hidden}", f"model.layers={layers}", "model.embed=4"]
    sets += [f"model.{k}={v}" for k, v in extra.items()]
    torch.manual_seed(0)
    model = build_model(config.load(None, sets).model, spec).double()
    with torch.no_grad():  # zero-initialised extras (peepholes) would hide their own equations
        for name, p in model.named_parameters():
            if "peephole" in name:
                p.uniform_(-0.5, 0.5)
    return model


def random_state(model, batch):
    state = model.init_state(batch)
    return tuple(torch.randn_like(s) for s in state) if isinstance(state, tuple) else torch.randn_like(state)


@pytest.mark.parametrize("arch,torch_class", [("lstm_cell", nn.LSTM), ("gru_cell", nn.GRU)])
@pytest.mark.parametrize("compiled", [True, False])
def test_lstm_and_gru_cells_equal_torch(arch, torch_class, compiled):
    model = build(arch, hidden=5, layers=3)
    model.compiled = compiled
    fused = torch_class(3, 5, num_layers=3, batch_first=True).double()
    with torch.no_grad():
        for layer, cell in enumerate(model.cells):
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(fused, f"{name}_l{layer}").copy_(getattr(cell, name))
    x = torch.randn(4, 7, 3, dtype=torch.float64, requires_grad=True)
    state = random_state(model, 4)
    y, final = model(x, state)  # (B, T, O)
    hidden, torch_final = fused(x, state)
    torch_y = model.head(hidden)
    torch.testing.assert_close(y, torch_y, atol=1e-10, rtol=0)
    for ours, theirs in zip(final if isinstance(final, tuple) else (final,),
                            torch_final if isinstance(torch_final, tuple) else (torch_final,)):
        torch.testing.assert_close(ours, theirs, atol=1e-10, rtol=0)
    weights = torch.randn_like(y)  # a loss that weighs every output differently
    ours = torch.autograd.grad((y * weights).sum(), [x, *model.cells.parameters()])
    theirs = torch.autograd.grad((torch_y * weights).sum(), [x, *fused.parameters()])
    for a, b in zip(ours, theirs):  # same parameter order: weight_ih, weight_hh, bias_ih, bias_hh per layer
        torch.testing.assert_close(a, b, atol=1e-10, rtol=0)


@pytest.mark.parametrize("arch,extra", VARIANTS, ids=[f"{a}-{'-'.join(map(str, e.values()))}" for a, e in VARIANTS])
def test_gradcheck_every_cell(arch, extra):
    """Autograd through the compiled loop against finite differences, for inputs, initial state and parameters."""
    model = build(arch, hidden=3, layers=2, **extra)
    names = [n for n, _ in model.named_parameters() if not n.startswith("head")]
    params = [p.detach().clone().requires_grad_() for n, p in model.named_parameters() if n in names]
    x = torch.randn(2, 4, 3, dtype=torch.float64, requires_grad=True)
    state = random_state(model, 2)
    state = tuple(s.requires_grad_() for s in state) if isinstance(state, tuple) else (state.requires_grad_(),)
    paired = len(state) == 2

    def run(x, *rest):
        given = dict(zip(names, rest[len(state):]))
        y, final = torch.func.functional_call(model, given, (x, rest[:len(state)] if paired else rest[0]))
        return y, *(final if paired else (final,))

    assert torch.autograd.gradcheck(run, (x, *state, *params), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("arch", ARCHS)
def test_compiled_loop_equals_eager(arch):
    model = build(arch, hidden=4, layers=2)
    x = torch.randn(3, 6, 3, dtype=torch.float64)
    assert_compiled_loop_equals_eager(model, x)


def test_the_loop_is_compiled_with_torchscript():
    assert compile_path() == "torchscript"


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_leaky_with_tau_one_is_elman(activation):
    leaky = build("leaky", tau=1.0, activation=activation)
    elman = build("elman_act", activation=activation)
    elman.load_state_dict(leaky.state_dict(), strict=False)  # all but leaky's tau buffer
    x = torch.randn(2, 5, 3, dtype=torch.float64)
    torch.testing.assert_close(leaky(x)[0], elman(x)[0], atol=1e-12, rtol=0)


def test_learned_taus_stay_at_least_one():
    model = build("leaky", tau_mode="per_unit", timescales="[1,2,50]", hidden=6, layers=1)
    cell = model.cells[0]
    assert cell.taus().tolist() == pytest.approx([1.001, 1.001, 2, 2, 50, 50], abs=1e-6)  # tau 1 starts a hair above
    with torch.no_grad():
        cell.tau_raw.fill_(-1e3)  # wherever the optimiser pushes the raw parameter
        assert float(cell.taus().min()) >= 1.0


def test_a_single_learned_tau_refuses_several_timescales():
    with pytest.raises(Exception, match="tau_mode"):
        config.load(None, ["model.arch=leaky", "model.tau_mode=learned", "model.timescales=[1,4]"])


@pytest.mark.parametrize("arch", ARCHS)
def test_every_arch_trains_with_probes(tmp_path, arch):
    cfg = tiny_config(tmp_path, model__arch=arch, model__layers=2, model__dropout=0.1, train__lr=0.01,
                      probes__every=2, probes__jacobian_every=4, probes__jacobian_steps=3)
    run = store.create_run(tmp_path / "runs", arch)
    assert Trainer(prepare(cfg), run).train().state == "finished"
    events = run.read_events()
    losses = [e["loss"] for e in events if e["kind"] == "train"]
    assert all(math.isfinite(v) for v in losses) and losses[-1] < losses[0]
    kinds = {e["kind"] for e in events}
    assert {"gradflow", "spectrum", "gradnorm"} <= kinds
    assert any("jacobian" in e for e in events if e["kind"] == "spectrum")
    if build(arch).cells[0].gates:
        assert "gates" in kinds


def test_token_model_matches_its_unrolled_trace():
    """The probes' unrolled pass through the cells' own steps is the model's forward."""
    from rnnlab.models.unrolled import unrolled_forward

    model = build("lstm_peephole", spec=TaskSpec(input_size=7, output_size=7, vocab_size=7)).eval()
    x = torch.randint(0, 7, (2, 6))
    torch.testing.assert_close(unrolled_forward(model, x).output, model(x)[0], atol=1e-12, rtol=0)
    assert F.cross_entropy(model(x)[0].transpose(1, 2), x).isfinite()


def indrnn_reference(x, layers, activation, bound):
    """Li et al. 2018 written out by hand: h_t = f(W x_t + b + clip(u) * h_{t-1}), layer by layer.
    layers: (W (H, I), b (H,), u (H,)) per layer; returns the top layer's h_t, (B, T, H), and each final h."""
    inputs, finals = x, []
    for w, b, u in layers:
        u = u.clamp(-bound, bound) if bound else u
        h, hs = torch.zeros(x.shape[0], w.shape[0], dtype=x.dtype), []
        for t in range(x.shape[1]):
            h = activation(inputs[:, t] @ w.T + b + u * h)
            hs.append(h)
        inputs = torch.stack(hs, 1)
        finals.append(h)
    return inputs, torch.stack(finals)


@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize("arch", ["indrnn", "deep"])
def test_indrnn_follows_its_equation(arch, compiled):
    """The IndRNN arch and a 2-layer deep stack of IndRNN cells against the hand-written recurrence,
    with some |u| beyond recurrent_max (clipped) for the arch."""
    bound = 0.8 if arch == "indrnn" else 0.0  # deep's cells keep their default: unbounded
    extra = {"recurrent_max": bound, "activation": "relu"} if arch == "indrnn" else {"cell": "indrnn",
                                                                                      "activation": "relu"}
    model = build(arch, hidden=4, layers=2, **extra)
    model.compiled = compiled
    cells = model.cells if arch == "indrnn" else model.stack
    with torch.no_grad():
        cells[0].weight_hh.copy_(torch.tensor([1.5, -1.2, 0.3, 0.7], dtype=torch.float64))  # two beyond 0.8
    x = torch.randn(3, 6, 3, dtype=torch.float64)
    layers = [(c.weight_ih, c.bias_ih + c.bias_hh, c.weight_hh) for c in cells]
    top, finals = indrnn_reference(model.embed(x) if model.embed is not None else x, layers, torch.relu, bound)
    y, final = model(x)
    torch.testing.assert_close(y, model.head(top), atol=1e-12, rtol=0)
    torch.testing.assert_close(final, finals, atol=1e-12, rtol=0)
    assert cells[0].recurrent_matrix().shape == (4, 4)  # diag(u): what the spectra probe reads
    torch.testing.assert_close(torch.diagonal(cells[0].recurrent_matrix()), layers[0][2].clamp(-bound, bound)
                               if bound else layers[0][2], atol=0, rtol=0)


def test_indrnn_clipped_weights_get_no_gradient_outward():
    model = build("indrnn", hidden=4, layers=1, recurrent_max=0.8)
    with torch.no_grad():
        model.cells[0].weight_hh.copy_(torch.tensor([1.5, -1.2, 0.3, 0.7], dtype=torch.float64))
    y, _ = model(torch.randn(2, 5, 3, dtype=torch.float64))
    grad = torch.autograd.grad(y.square().sum(), model.cells[0].weight_hh)[0]
    assert grad[:2].abs().max() == 0 and grad[2:].abs().min() > 0


def test_indrnn_refuses_an_init_scheme_when_the_config_loads():
    with pytest.raises(Exception, match="model.init = 'orthogonal': an IndRNN's recurrent weight is a vector"):
        config.load(None, ["model.arch=indrnn", "model.init=orthogonal"])


def test_every_cell_runs_scripted_in_both_loops():
    """A cell whose update TorchScript cannot compile would fall back to eager with only a warning."""
    from rnnlab.models.cells import CELLS
    from rnnlab.models.deep import scripted_loop

    for cell in CELLS.values():
        assert compile_path(cell) == "torchscript", cell.name
        assert scripted_loop(cell) is not None, cell.name
