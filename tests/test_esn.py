"""Echo state network and the ridge readout: the reservoir's equation, radius and connectivity, the
closed-form fit against an independent least-squares solve, washout, bptt, and the CLI end to end."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from rnnlab import config, store
from rnnlab.cli import app
from rnnlab.models import TaskSpec, build_model, count_parameters
from rnnlab.models.unrolled import unrolled_forward
from rnnlab.tasks import build_task
from rnnlab.train import Trainer, prepare
from rnnlab.train import checkpoint as ckpt
from rnnlab.train.ridge import RidgeReadout

runner = CliRunner()
FEATURES = TaskSpec(input_size=2, output_size=3)
# tiny tasks of three kinds of judged positions: every step, masked steps, the last step only
TASKS = {
    "mackey_glass": ["task.name=mackey_glass", "task.length=600", "task.seq_len=12"],
    "delayed_recall": ["task.name=delayed_recall", "task.length=10", "task.delay=3", "task.symbols=4"],
    "parity": ["task.name=parity", "task.length=7"],
}


def esn(spec=FEATURES, hidden=8, **options):
    options.setdefault("rc_connectivity", 0.5)  # 10% of an 8 x 8 matrix can leave no cycle: radius 0
    sets = ["model.arch=esn", f"model.hidden={hidden}"] + [f"model.{k}={v}" for k, v in options.items()]
    torch.manual_seed(0)
    return build_model(config.load(None, sets).model, spec).double()


def reference_states(model, x) -> np.ndarray:
    """h_t = (1 - a) h_{t-1} + a tanh(W_in x_t + W h_{t-1} + b) in numpy, (B, T, H)."""
    cell = model.cells[0]
    w_in, w, b = (p.detach().numpy() for p in (cell.weight_ih, cell.weight_hh, cell.bias))
    inputs = np.eye(w_in.shape[1])[x.numpy()] if model.embed is not None else x.numpy()  # one-hot tokens
    a, h, out = model.options.leak, np.zeros((x.shape[0], w.shape[0])), []
    for t in range(x.shape[1]):
        h = (1 - a) * h + a * np.tanh(inputs[:, t] @ w_in.T + h @ w.T + b)
        out.append(h)
    return np.stack(out, 1)


@pytest.mark.parametrize("leak", [1.0, 0.3])
@pytest.mark.parametrize("compiled", [True, False])
def test_reservoir_follows_its_equation(leak, compiled):
    model = esn(leak=leak, bias_scaling=0.5)
    model.compiled = compiled
    x = torch.randn(3, 9, 2, dtype=torch.float64)
    y, final = model(x)
    states = reference_states(model, x)
    head = model.head.weight.detach().numpy(), model.head.bias.detach().numpy()
    np.testing.assert_allclose(y.detach().numpy(), states @ head[0].T + head[1], atol=1e-12, rtol=0)
    first, state = model(x[:, :4])
    rest, _ = model(x[:, 4:], state)  # a carried state continues the same trajectory
    torch.testing.assert_close(torch.cat([first, rest], 1), y, atol=1e-12, rtol=0)
    torch.testing.assert_close(final[0], torch.from_numpy(states[:, -1]), atol=1e-12, rtol=0)


def test_gradients_through_the_reservoir_when_asked_for():
    """The loop skips the graph only when nothing asks for one: x and h_0 still get exact gradients."""
    model = esn(hidden=4, leak=0.5)
    x = torch.randn(2, 5, 2, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(1, 2, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, h0: model(x, h0), (x, h0), eps=1e-6, atol=1e-6)


def test_tokens_enter_one_hot_and_the_probes_trace_is_the_forward():
    model = esn(TaskSpec(input_size=5, output_size=5, vocab_size=5)).eval()
    x = torch.randint(0, 5, (2, 6))
    y, _ = model(x)
    states = reference_states(model, x)
    torch.testing.assert_close(model.head(torch.from_numpy(states)), y, atol=1e-12, rtol=0)
    torch.testing.assert_close(unrolled_forward(model, x).output, y, atol=1e-12, rtol=0)


@pytest.mark.parametrize("hidden,sparsity,radius", [(10, 0.5, 0.8), (30, 0.9, 1.3), (7, 0.0, 0.5)])
def test_radius_sparsity_and_only_the_readout_trains(hidden, sparsity, radius):
    model = esn(hidden=hidden, rc_connectivity=1 - sparsity, spectral_radius=radius)
    w = model.recurrent_matrices()["layer0"]
    assert float(torch.linalg.eigvals(w).abs().max()) == pytest.approx(radius, rel=1e-6)  # float32-stored W
    assert int((w == 0).sum()) == round(sparsity * hidden * hidden)
    assert [n for n, p in model.named_parameters() if p.requires_grad] == ["head.weight", "head.bias"]
    assert count_parameters(model) == hidden * 3 + 3


def closed_form(model, task, batches, alpha, washout, seed=1):
    """The ridge solution from the full design matrix, built here: numpy states, each task's judged positions
    written out, solved as the augmented least-squares problem [X; sqrt(alpha) P] s = [Y; 0]."""
    generator = torch.Generator().manual_seed(seed)
    rows, targets = [], []
    for _ in range(batches):
        x, y, mask = task.train_batch(4, generator)
        states = reference_states(model, x)  # (B, T, H)
        steps = states.shape[1]
        if task.options.name == "mackey_glass":
            judged, target = np.ones(states.shape[:2], bool), y.numpy()[..., None]
        elif task.options.name == "delayed_recall":
            judged, target = mask.numpy().copy(), np.eye(task.spec.output_size)[y.numpy()]
        else:  # parity: one answer, at the last step
            judged = np.zeros(states.shape[:2], bool)
            judged[:, -1] = True
            target = np.repeat(np.eye(2)[y.numpy()][:, None], steps, 1)
        judged[:, :washout] = False
        rows.append(states[judged])
        targets.append(target[judged])
    design = np.concatenate(rows)
    design = np.concatenate([design, np.ones((len(design), 1))], 1)  # (N, H+1): the bias column
    penalty = np.sqrt(alpha) * np.eye(design.shape[1])[:-1]  # (H, H+1): the bias goes unpenalised
    stacked = np.concatenate([design, penalty])
    wanted = np.concatenate([np.concatenate(targets), np.zeros((len(penalty), task.spec.output_size))])
    solution = np.linalg.lstsq(stacked, wanted, rcond=None)[0]  # (H+1, O)
    return solution[:-1].T, solution[-1]


class Float64Inputs:
    """The task with float inputs in float64, for a float64 model."""

    def __init__(self, task):
        self.task = task

    def __getattr__(self, name):
        return getattr(self.task, name)

    def train_batch(self, batch_size, generator):
        x, y, mask = self.task.train_batch(batch_size, generator)
        return (x.double() if x.is_floating_point() else x), y, mask


@pytest.mark.parametrize("washout", [0, 5])
@pytest.mark.parametrize("name", list(TASKS))
def test_ridge_readout_is_the_closed_form_solution(name, washout):
    task = Float64Inputs(build_task(config.load(None, TASKS[name]).task, 0))
    model = esn(task.spec, washout=washout)
    alpha = 1e-3
    fit = RidgeReadout(task, 4, torch.Generator().manual_seed(1), torch.device("cpu"), alpha)
    for _ in range(3):
        fit.step(model)
    weight, bias = closed_form(model, task, 3, alpha, washout)
    np.testing.assert_allclose(model.head.weight.detach().numpy(), weight, atol=1e-8, rtol=0)
    np.testing.assert_allclose(model.head.bias.detach().numpy(), bias, atol=1e-8, rtol=0)
    if washout:  # the washout steps really were left out (parity judges only its last step: nothing to leave)
        other, _ = closed_form(model, task, 3, alpha, 0)
        assert (np.abs(other - weight).max() > 1e-4) == (name != "parity")


def test_washout_steps_carry_no_gradient_in_training():
    model = esn(washout=3).train()
    x = torch.randn(2, 8, 2, dtype=torch.float64)
    y, _ = model(x)
    early = torch.autograd.grad(y[:, :3].square().sum(), model.head.weight, allow_unused=True, retain_graph=True)[0]
    late = torch.autograd.grad(y[:, 3:].square().sum(), model.head.weight)[0]
    assert (early is None or not early.any()) and late.abs().sum() > 0
    torch.testing.assert_close(model.eval()(x)[0], y.detach(), atol=0, rtol=0)  # same predictions
    _, state = model(x[:, :2])
    y, _ = model.train()(x[:, 2:], state)  # a carried state is warm: no washout
    assert torch.autograd.grad(y[:, 0].sum(), model.head.weight)[0].abs().sum() > 0


def mackey_sets(**extra) -> list[str]:
    values = {"device": "cpu", "model.arch": "esn", "model.hidden": 16, "task.name": "mackey_glass",
              "task.length": 600, "task.seq_len": 12, "train.batch_size": 4, "train.eval_batches": 2,
              "probes.every": 2, "probes.jacobian_every": 2, "probes.jacobian_steps": 3}
    values.update({k.replace("__", "."): v for k, v in extra.items()})
    return [f"{k}={v}" for k, v in values.items()]


def test_bptt_trains_the_readout_and_leaves_the_reservoir(tmp_path):
    cfg = config.load(None, mackey_sets(train__steps=4, train__eval_every=2, train__lr=0.05))
    prepared = prepare(cfg)
    before = {k: v.clone() for k, v in prepared.model.state_dict().items()}
    run = store.create_run(tmp_path / "runs", "esn-bptt")
    assert Trainer(prepared, run).train().state == "finished"
    after = prepared.model.state_dict()
    for name in before:
        changed = not torch.equal(before[name], after[name])
        assert changed == name.startswith("head."), name
    events = run.read_events()
    assert {"gradnorm", "gradflow", "spectrum"} <= {e["kind"] for e in events}
    spectrum = next(e for e in events if e["kind"] == "spectrum")
    assert spectrum["matrices"]["layer0"]["radius"] == pytest.approx(0.9, rel=1e-4)


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def run_args(sets: list[str]) -> list[str]:
    return [arg for text in sets for arg in ("--set", text)]


def test_cli_ridge_run_end_to_end_and_resume(tmp_path):
    runs = tmp_path / "runs"
    sets = mackey_sets(train__algorithm="ridge", train__steps=4, train__eval_every=2, train__checkpoint_every=2)
    result = invoke("run", *run_args(sets), "--runs-dir", runs, "-q")
    assert result.exit_code == 0, result.output
    (whole,) = [store.RunDir(p) for p in runs.iterdir()]
    assert whole.read_status()["state"] == "finished"
    events = whole.read_events()
    train = [e for e in events if e["kind"] == "train"]
    assert [e["fit_samples"] for e in train] == [48, 96, 144, 192]  # 4 windows of 12 steps per batch
    assert [e["kind"] for e in events].count("eval") == 2 and events[-1]["state"] == "finished"
    assert any(e["kind"] == "spectrum" for e in events) and "nrmse_continuous" in [e for e in events if e["kind"] == "eval"][-1]
    assert whole.checkpoint("last").is_file() and whole.checkpoint("best").is_file()
    # stopped after 2 batches and resumed: the sums come back and the readout is the same
    half = mackey_sets(train__algorithm="ridge", train__steps=2, train__eval_every=2, train__checkpoint_every=2)
    assert invoke("run", *run_args(half), "--runs-dir", runs, "-q").exit_code == 0
    (resumed,) = [p.name for p in runs.iterdir() if p.name != whole.id]
    assert invoke("run", "--resume", resumed, "--set", "train.steps=4", "--runs-dir", runs, "-q").exit_code == 0
    heads = [ckpt.load(store.RunDir(runs / r).checkpoint("last"))["model"]["head.weight"] for r in (whole.id, resumed)]
    torch.testing.assert_close(heads[0], heads[1], atol=0, rtol=0)


@pytest.mark.parametrize("extra,key", [
    (["model.arch=lstm", "train.algorithm=ridge"], "train.algorithm"),
    (["model.arch=esn", "model.layers=17"], "model.layers"),
    (["model.arch=esn", "model.leak=0"], "model.leak"),
    (["model.arch=esn", "model.leak=1.5"], "model.leak"),
    (["model.arch=esn", "model.hidden=1", "model.rc_connectivity=0.01"], "model.rc_connectivity"),
    (["model.arch=esn", "model.dropout=0.1"], "model.dropout"),
    (["model.arch=esn", "model.washout=5", "train.algorithm=ridge"], "model.washout"),
], ids=["ridge-lstm", "layers", "leak-0", "leak-big", "empty-reservoir", "dropout", "washout-all"])
def test_bad_combinations_are_one_line_errors(tmp_path, extra, key):
    sets = ["device=cpu", "task.name=parity", "task.length=5", *extra]  # parity judges step 4 only
    result = invoke("run", *run_args(sets), "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"error: {key} = ") and result.output.count("\n") == 1, result.output
    assert not (tmp_path / "runs").exists()
