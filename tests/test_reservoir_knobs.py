"""The reservoir knobs ReservoirPy users expect: connectivity, weight distributions, per-unit leak, activation,
output feedback, input-to-readout, deep and parallel reservoirs; each against a numpy reference or statistics,
with ridge, the probes, checkpoints/resume and the renamed `sparsity` key of old run directories."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from rnnlab import config, store
from rnnlab.cli import app
from rnnlab.models import TaskSpec, build_model
from rnnlab.models.reservoir import leak_rates
from rnnlab.models.unrolled import unrolled_forward
from rnnlab.tasks import build_task
from rnnlab.train import Trainer, prepare
from rnnlab.train import checkpoint as ckpt
from rnnlab.train.ridge import RidgeReadout

runner = CliRunner()
SERIES = TaskSpec(input_size=1, output_size=1)
ACTIVATIONS = {"tanh": np.tanh, "relu": lambda v: np.maximum(v, 0), "sigmoid": lambda v: 1 / (1 + np.exp(-v)),
               "linear": lambda v: v}


def esn(spec=SERIES, hidden=8, **options):
    options.setdefault("rc_connectivity", 0.5)  # 10% of an 8 x 8 matrix can leave no cycle: radius 0
    sets = ["model.arch=esn", f"model.hidden={hidden}"] + [f"model.{k}={v}" for k, v in options.items()]
    torch.manual_seed(0)
    return build_model(config.load(None, sets).model, spec).double()


def reference(model, x, targets=None, noise=None):
    """The ESN of esn.py's docstring in numpy: (outputs (B, T, O), features (B, T, F)). Teacher-forced
    (y_{t-1} = the previous target, + noise[:, t] (B, T, O)) when `targets` (B, T) are given, else fed its
    own previous output."""
    o = model.options
    cells = [{k: v.detach().numpy() for k, v in (("w_in", c.weight_ih), ("w", c.weight_hh), ("b", c.bias),
                                                    ("a", c.rates()))} for c in model.cells]
    w_out, b_out = model.head.weight.detach().numpy(), model.head.bias.detach().numpy()
    inputs = np.eye(model.spec.vocab_size)[x.numpy()] if model.embed is not None else x.numpy()  # (B, T, I)
    f = ACTIVATIONS[o.activation]
    hs = [np.zeros((x.shape[0], o.hidden)) for _ in cells]
    fed = np.zeros((x.shape[0], model.head.out_features))
    outputs, features = [], []
    for t in range(x.shape[1]):
        fed = fed + noise[:, t] if noise is not None else fed
        u = np.concatenate([inputs[:, t], fed], 1) if o.feedback_scaling else inputs[:, t]
        for layer, c in enumerate(cells):
            read = u if layer == 0 or o.layout == "parallel" else hs[layer - 1]
            hs[layer] = (1 - c["a"]) * hs[layer] + c["a"] * f(read @ c["w_in"].T + hs[layer] @ c["w"].T + c["b"])
        feature = np.concatenate(hs + ([inputs[:, t]] if o.input_to_readout else []), 1)
        y = feature @ w_out.T + b_out
        fed = targets.numpy()[:, t, None] if targets is not None else y
        outputs.append(y)
        features.append(feature)
    return np.stack(outputs, 1), np.stack(features, 1)


KNOBS = {
    "default": {},
    "per-unit-leak": {"leak": 0.5, "leak_spread": 0.3},
    "relu": {"activation": "relu", "spectral_radius": 0.5},
    "sigmoid": {"activation": "sigmoid", "leak": 0.4},
    "linear": {"activation": "linear", "spectral_radius": 0.7},
    "input-to-readout": {"input_to_readout": "true", "leak": 0.6},
    "deep": {"layers": 3, "layout": "deep", "inter_scaling": 0.5, "leak": 0.7},
    "parallel": {"layers": 2, "layout": "parallel", "input_to_readout": "true"},
    "feedback": {"feedback_scaling": 0.8, "leak": 0.5},
    "feedback-deep": {"feedback_scaling": 0.5, "layers": 2, "input_to_readout": "true", "leak_spread": 0.1,
                      "leak": 0.5},
    "sparse-input": {"input_connectivity": 0.3, "input_weights": "bernoulli", "weights": "normal"},
}


@pytest.mark.parametrize("knobs", list(KNOBS), ids=list(KNOBS))
def test_every_knob_follows_the_equation(knobs):
    model = esn(**KNOBS[knobs], bias_scaling=0.4)
    with torch.no_grad():
        model.head.weight.normal_(0, 0.3)  # a readout that is not ~0, so a fed-back output matters
    x = torch.randn(3, 9, 1, dtype=torch.float64)
    targets = torch.randn(3, 9, dtype=torch.float64)
    free, features = reference(model, x)
    y, state = model.eval()(x, targets=targets)  # evaluation: feedback is its own output, targets or not
    np.testing.assert_allclose(y.detach().numpy(), free, atol=1e-12, rtol=0)
    first, carried = model(x[:, :4])
    rest, _ = model(x[:, 4:], carried)  # a carried state (and fed-back output) continues the same trajectory
    torch.testing.assert_close(torch.cat([first, rest], 1), y, atol=1e-12, rtol=0)
    torch.testing.assert_close(unrolled_forward(model, x).output, y, atol=1e-12, rtol=0)  # the probes' pass
    forced, forced_features = reference(model, x, targets)
    y, _ = model.train()(x, targets=targets)  # training: teacher-forced
    np.testing.assert_allclose(y.detach().numpy(), forced, atol=1e-12, rtol=0)
    np.testing.assert_allclose(model.readout_features(x, targets).numpy(), forced_features, atol=1e-12, rtol=0)
    first, carried = model(x[:, :4], targets=targets[:, :4])
    rest, _ = model(x[:, 4:], carried, targets=targets[:, 4:])  # the carried y_{t-1} is the last target
    torch.testing.assert_close(torch.cat([first, rest], 1), y, atol=1e-12, rtol=0)
    assert model.takes_targets == bool(model.options.feedback_scaling)
    if not model.options.feedback_scaling:  # without feedback, targets change nothing
        np.testing.assert_allclose(forced, free, atol=1e-12, rtol=0)


def test_feedback_noise_is_added_to_the_fed_targets_in_training_only():
    model = esn(feedback_scaling=0.6, feedback_noise=0.1)
    x, targets = torch.randn(2, 7, 1, dtype=torch.float64), torch.randn(2, 7, dtype=torch.float64)
    torch.manual_seed(5)
    y, _ = model.train()(x, targets=targets)
    torch.manual_seed(5)
    noise = 0.1 * torch.randn(2, 7, 1, dtype=torch.float64)
    np.testing.assert_allclose(y.detach().numpy(), reference(model, x, targets, noise.numpy())[0], atol=1e-12, rtol=0)
    assert np.abs(y.detach().numpy() - reference(model, x, targets)[0]).max() > 1e-4  # the noise mattered
    y, _ = model.eval()(x, targets=targets)  # evaluation: the readout's own outputs, no noise
    np.testing.assert_allclose(y.detach().numpy(), reference(model, x)[0], atol=1e-12, rtol=0)


def test_tokens_enter_one_hot_and_reach_the_readout():
    spec = TaskSpec(input_size=5, output_size=5, vocab_size=5)
    model = esn(spec, input_to_readout="true", layers=2, layout="parallel").eval()
    x = torch.randint(0, 5, (2, 6))
    y, _ = model(x)
    np.testing.assert_allclose(y.detach().numpy(), reference(model, x)[0], atol=1e-12, rtol=0)
    assert model.head.in_features == 2 * 8 + 5


@pytest.mark.parametrize("hidden,inputs,rc,ic", [(20, 3, 0.1, 0.5), (40, 10, 0.25, 0.05), (9, 2, 1.0, 1.0)])
def test_connectivity_is_the_exact_share_of_non_zero_entries(hidden, inputs, rc, ic):
    model = esn(TaskSpec(input_size=inputs, output_size=1), hidden=hidden, rc_connectivity=rc,
                input_connectivity=ic, spectral_radius=1.1, layers=2, layout="parallel")
    for cell in model.cells:
        w, w_in = cell.weight_hh, cell.weight_ih
        assert int((w != 0).sum()) == hidden * hidden - round((1 - rc) * hidden * hidden)
        assert int((w_in != 0).sum()) == hidden * inputs - round((1 - ic) * hidden * inputs)
        assert float(torch.linalg.eigvals(w).abs().max()) == pytest.approx(1.1, rel=1e-6)
    assert not torch.equal(model.cells[0].weight_hh, model.cells[1].weight_hh)  # two reservoirs, two draws
    assert set(model.recurrent_blocks()) == {"layer0", "layer1"}


def kurtosis(values: np.ndarray) -> float:
    centred = values - values.mean()
    return float((centred ** 4).mean() / (centred ** 2).mean() ** 2)


@pytest.mark.parametrize("distribution,kurt", [("uniform", 1.8), ("normal", 3.0), ("bernoulli", 1.0)])
def test_weight_distributions(distribution, kurt):
    """W_in: the distribution times input_scaling; W: the same shape (kurtosis is scale-free) after rescaling."""
    s = 0.7
    model = esn(TaskSpec(input_size=40, output_size=1), hidden=120, weights=distribution,
                input_weights=distribution, input_scaling=s, rc_connectivity=0.5)
    w_in = model.cells[0].weight_ih.numpy().ravel()  # 4800 entries
    w = model.cells[0].weight_hh.numpy().ravel()
    w = w[w != 0]  # 7200 entries
    assert abs(w_in.mean()) < 0.05 * s and abs(w.mean()) < 0.05 * np.abs(w).mean()
    assert kurtosis(w_in) == pytest.approx(kurt, abs=0.25) and kurtosis(w) == pytest.approx(kurt, abs=0.25)
    if distribution == "uniform":
        assert np.abs(w_in).max() <= s and w_in.std() == pytest.approx(s / np.sqrt(3), rel=0.05)
    elif distribution == "normal":
        assert w_in.std() == pytest.approx(s, rel=0.05) and np.abs(w_in).max() > 2.5 * s
    else:
        np.testing.assert_allclose(np.abs(w_in), s, rtol=1e-6)
        np.testing.assert_allclose(np.abs(w), np.abs(w[0]), rtol=1e-6)  # +-c: one magnitude, rescaled


def test_per_unit_leaks_are_uniform_over_their_range():
    torch.manual_seed(3)
    rates = leak_rates(20000, 0.4, 0.25).numpy()
    assert 0.15 <= rates.min() < 0.151 and 0.649 < rates.max() <= 0.65
    assert rates.mean() == pytest.approx(0.4, abs=0.005) and rates.std() == pytest.approx(0.25 / np.sqrt(3), rel=0.02)
    model = esn(leak=0.4, leak_spread=0.25, hidden=30)
    a = model.cells[0].rates()
    assert a.requires_grad is False and len(set(a.tolist())) == 30 and float(a.min()) >= 0.15
    assert "cells.0.leak" in model.state_dict() and "cells.0.leak" not in esn(hidden=30).state_dict()


class Float64Inputs:
    """The task with its inputs in float64, for a float64 model."""

    def __init__(self, task):
        self.task = task

    def __getattr__(self, name):
        return getattr(self.task, name)

    def train_batch(self, batch_size, generator):
        x, y, mask = self.task.train_batch(batch_size, generator)
        return x.double(), y, mask


def closed_form(features, targets, alpha):
    """Ridge with an unpenalised bias, as the augmented least-squares problem [X; sqrt(alpha) P] s = [Y; 0]."""
    design = np.concatenate([features, np.ones((len(features), 1))], 1)
    penalty = np.sqrt(alpha) * np.eye(design.shape[1])[:-1]
    solution = np.linalg.lstsq(np.concatenate([design, penalty]),
                               np.concatenate([targets, np.zeros((len(penalty), targets.shape[1]))]), rcond=None)[0]
    return solution[:-1].T, solution[-1]


@pytest.mark.parametrize("knobs", ["feedback-deep", "parallel", "per-unit-leak"])
def test_ridge_fits_the_teacher_forced_features(knobs):
    """NARMA-10's target is not its input, so a fed-back previous target is new information for the fit."""
    task = Float64Inputs(build_task(config.load(None, ["task.name=narma10", "task.length=500",
                                                       "task.seq_len=15"]).task, 0))
    model = esn(task.spec, **KNOBS[knobs], washout=3)
    fit = RidgeReadout(task, 4, torch.Generator().manual_seed(1), torch.device("cpu"), 1e-3)
    generator, rows, targets = torch.Generator().manual_seed(1), [], []
    for _ in range(3):
        fit.step(model)
        x, y, _ = task.train_batch(4, generator)
        rows.append(reference(model, x, y.double())[1][:, 3:].reshape(-1, model.head.in_features))
        targets.append(y.double().numpy()[:, 3:].reshape(-1, 1))
    weight, bias = closed_form(np.concatenate(rows), np.concatenate(targets), 1e-3)
    np.testing.assert_allclose(model.head.weight.detach().numpy(), weight, atol=1e-7, rtol=0)
    np.testing.assert_allclose(model.head.bias.detach().numpy(), bias, atol=1e-7, rtol=0)


def sets(**extra) -> list[str]:
    values = {"device": "cpu", "model.arch": "esn", "model.hidden": 12, "model.rc_connectivity": 0.3,
              "task.name": "narma10", "task.length": 600, "task.seq_len": 12, "train.batch_size": 4,
              "train.eval_batches": 2, "probes.every": 2, "probes.jacobian_every": 2, "probes.jacobian_steps": 3}
    values.update({k.replace("__", "."): v for k, v in extra.items()})
    return [f"{k}={v}" for k, v in values.items()]


@pytest.mark.parametrize("algorithm", ["ridge", "bptt"])
def test_probes_see_every_reservoir(tmp_path, algorithm):
    cfg = config.load(None, sets(train__algorithm=algorithm, train__steps=2, train__eval_every=2,
                                 model__layers=2, model__layout="parallel", model__feedback_scaling=0.3,
                                 model__input_to_readout="true", model__spectral_radius=0.8))
    prepared = prepare(cfg)
    run = store.create_run(tmp_path / "runs", "esn-knobs")
    assert Trainer(prepared, run).train().state == "finished"
    events = run.read_events()
    spectrum = next(e for e in events if e["kind"] == "spectrum")
    assert set(spectrum["matrices"]) == {"layer0", "layer1"} == set(spectrum["jacobian"])
    assert all(m["radius"] == pytest.approx(0.8, rel=1e-4) for m in spectrum["matrices"].values())
    flow = next(e for e in events if e["kind"] == "gradflow")
    assert len(flow["layers"]) == 2
    assert "nrmse_continuous" in [e for e in events if e["kind"] == "eval"][-1]


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def run_args(texts: list[str]) -> list[str]:
    return [arg for text in texts for arg in ("--set", text)]


def test_resume_with_every_knob_and_an_old_run_directory_saying_sparsity(tmp_path):
    runs = tmp_path / "runs"
    knobs = dict(train__algorithm="ridge", train__eval_every=2, train__checkpoint_every=2, model__layers=2,
                 model__layout="deep", model__feedback_scaling=0.2, model__feedback_noise=0.05, model__leak=0.5,
                 model__leak_spread=0.2,
                 model__input_to_readout="true", model__weights="bernoulli", model__input_connectivity=0.5)
    assert invoke("run", *run_args(sets(train__steps=4, **knobs)), "--runs-dir", runs, "-q").exit_code == 0
    (whole,) = [p.name for p in runs.iterdir()]
    assert invoke("run", *run_args(sets(train__steps=2, **knobs)), "--runs-dir", runs, "-q").exit_code == 0
    (half,) = [p.name for p in runs.iterdir() if p.name != whole]
    path = store.RunDir(runs / half).config_path  # as a run made before the rename wrote it
    text = path.read_text()
    assert "rc_connectivity = 0.3\n" in text
    path.write_text(text.replace("rc_connectivity = 0.3\n", "sparsity = 0.7\n"))
    result = invoke("run", "--resume", half, "--set", "train.steps=4", "--runs-dir", runs)
    assert result.exit_code == 0, result.output
    assert "rc_connectivity = 0.3\n" in path.read_text()  # rewritten with the new key
    heads = [ckpt.load(store.RunDir(runs / r).checkpoint("last"))["model"]["head.weight"] for r in (whole, half)]
    torch.testing.assert_close(heads[0], heads[1], atol=0, rtol=0)


def test_the_old_key_reads_as_the_new_one():
    cfg = config.loads('[model]\narch = "esn"\nsparsity = 0.9\n')
    assert cfg.model.rc_connectivity == 0.1 and "rc_connectivity = 1 - sparsity" in cfg.notes[0]
    assert config.load(None, ["model.arch=esn", "model.sparsity=0.75"]).model.rc_connectivity == 0.25
    # the override wins over the file's new key; a file with both is an error
    both = config.loads('[model]\narch = "esn"\nrc_connectivity = 0.2\n', ["model.sparsity=0.5"])
    assert both.model.rc_connectivity == 0.5
    with pytest.raises(config.ConfigError, match="model.sparsity = 0.9: is the old name of model.rc_connectivity"):
        config.loads('[model]\narch = "esn"\nsparsity = 0.9\nrc_connectivity = 0.2\n')
    with pytest.raises(config.ConfigError, match="model.sparsity = 'x'"):
        config.load(None, ["model.arch=esn", "model.sparsity=x"])
    switched = config.loads('[model]\narch = "esn"\nsparsity = 0.9\n', ["model.arch=lstm"])  # dropped, said so
    assert any("model.rc_connectivity dropped" in note for note in switched.notes)


@pytest.mark.parametrize("extra,key", [
    (["task.name=parity", "task.length=5", "model.feedback_scaling=0.5"], "model.feedback_scaling"),
    (["model.layers=2", "model.layout=stacked"], "model.layout"),
    (["model.rc_connectivity=0"], "model.rc_connectivity"),
    (["model.hidden=1", "model.rc_connectivity=0.01"], "model.rc_connectivity"),
    (["model.hidden=2", "model.rc_connectivity=1", "model.input_connectivity=0.1"], "model.input_connectivity"),
    (["model.leak=0.9", "model.leak_spread=0.2"], "model.leak_spread"),
    (["model.activation=softmax"], "model.activation"),
    (["model.weights=cauchy"], "model.weights"),
], ids=["feedback-classes", "layout", "connectivity-0", "nilpotent", "no-input", "leak-range", "activation",
        "distribution"])
def test_bad_knobs_are_one_line_errors(tmp_path, extra, key):
    series = [] if any(e.startswith("task.") for e in extra) else ["task.seq_len=10"]
    texts = ["device=cpu", "model.arch=esn", "task.name=mackey_glass", "task.length=300", *series, *extra]
    result = invoke("run", *run_args(texts), "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"error: {key} = ") and result.output.count("\n") == 1, result.output
    assert not (tmp_path / "runs").exists()
