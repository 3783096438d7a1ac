"""Series scored as the field scores them: the continuous held-out stretch against an ESN run by hand in
numpy, the warm-up left out, free running from the carried state, and a user's series file (CSV, NPY)."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest
import torch

from rnnlab import config, store
from rnnlab.errors import ConfigError
from rnnlab.tasks import build_task
from rnnlab.train import Trainer, prepare

ESN = ["model.arch=esn", "model.hidden=40", "model.spectral_radius=0.9", "model.leak=0.5", "model.sparsity=0.8",
       "model.washout=20", "task.name=mackey_glass", "task.length=700", "task.eval_steps=300", "task.seq_len=400",
       "task.warmup=30", "train.algorithm=ridge", "train.ridge_alpha=1e-4", "train.steps=1", "train.batch_size=1",
       "train.eval_every=1", "train.checkpoint_every=0", "probes.every=0", "device=cpu"]


def train(sets, tmp_path, name="series"):
    cfg = config.load(None, sets)
    prepared = prepare(cfg)
    run = store.create_run(tmp_path, name, config_text=cfg.to_toml())
    assert Trainer(prepared, run).train().state == "finished"
    return prepared, run, [e for e in run.read_events() if e["kind"] == "eval"][-1]


def numpy_states(model, x: np.ndarray) -> np.ndarray:
    """h_t = (1 - a) h_{t-1} + a tanh(W_in x_t + W h_{t-1} + b) from h_0 = 0, float64: (T, H)."""
    cell = model.cells[0]
    w_in, w, b = (p.detach().double().numpy() for p in (cell.weight_ih, cell.weight_hh, cell.bias))
    a, h, out = model.options.leak, np.zeros(w.shape[0]), []
    for x_t in x:  # (I,)
        h = (1 - a) * h + a * np.tanh(w_in @ x_t + w @ h + b)
        out.append(h)
    return np.stack(out)


def test_continuous_score_is_the_reservoir_scored_by_hand(tmp_path):
    prepared, _, event = train(ESN, tmp_path)
    task, model = prepared.task, prepared.model
    series = np.concatenate([task.train_x[:, 0].double().numpy(), task.val_x[:, 0].double().numpy(),
                             task.val_y[-1:].double().numpy()])  # x_0 .. x_700: inputs, and the last target
    split = 700 - 300
    # the fit: the first 400 steps (one window from a zero state), the first 20 left out
    states = numpy_states(model, series[:split, None])
    design = np.hstack([states[20:], np.ones((split - 20, 1))])
    penalty = np.diag([1e-4] * 40 + [0.0])
    solution = np.linalg.solve(design.T @ design + penalty, design.T @ series[21:split + 1])  # (H + 1,)
    np.testing.assert_allclose(model.head.weight.detach().double().numpy()[0], solution[:-1], rtol=1e-3, atol=1e-4)
    # the score: from a zero state 30 steps before the held-out stretch, those 30 run but not scored
    states = numpy_states(model, series[split - 30:700, None])[30:]  # (300, H)
    head_w, head_b = model.head.weight.detach().double().numpy()[0], float(model.head.bias.detach())
    errors = states @ head_w + head_b - series[split + 1:]
    nrmse = math.sqrt(np.mean(errors ** 2)) / np.std(series[split + 1:])
    # a float32 reservoir against float64 over 330 steps: they differ by ~3e-8 (NRMSE ~0.009)
    assert abs(event["nrmse_continuous"] - nrmse) < 1e-6
    assert "nrmse" not in event and event["nrmse_continuous"] < 0.05  # the name says the protocol


def test_the_warm_up_is_run_but_not_scored():
    t = build_task(config.load(None, ["task.name=sines", "task.length=1000", "task.eval_steps=200",
                                      "task.warmup=50", "task.seq_len=20"]).task, 0)
    (x, y, mask), = list(t.eval_batches(8, 5))  # one stretch, whatever the batch size and count
    assert x.shape == (1, 250, 1) and y.shape == (1, 250) and int(mask.sum()) == 200 and not mask[0, :50].any()
    torch.testing.assert_close(x[0, 50:, 0], t.val_x[:, 0])  # the warm-up is the training part's end
    wild = torch.zeros(1, 250, 1)
    wild[0, :50] = 1e6  # however wrong the warm-up's outputs, they do not count
    assert float(t.loss(wild, y, mask)) == pytest.approx(float((y[0, 50:] ** 2).mean()), rel=1e-6)
    assert t.variance == pytest.approx(float(t.val_y.var(unbiased=False)), rel=1e-6)
    metrics = t.metrics(t.variance)
    assert metrics["nrmse_continuous"] == pytest.approx(1.0) and metrics["r2_continuous"] == pytest.approx(0.0)
    windows = build_task(config.load(None, ["task.name=sines", "task.length=1000", "task.eval_steps=200",
                                            "task.protocol=windows", "task.seq_len=20"]).task, 0)
    assert sum(b[0].shape[0] for b in windows.eval_batches(4, 100)) == 10 and "nrmse" in windows.metrics(1.0)
    assert t.probe_batch(4)[0].shape == (4, 20, 1)  # the probes keep training-length windows


class Persistence(torch.nn.Module):
    """Predicts that the next value is the current one; counts the steps it is run."""

    def forward(self, x, state=None):
        steps = (state or 0) + x.shape[1]
        return x.clone(), steps


def test_free_running_starts_from_the_carried_state_after_the_warm_up():
    horizon, warm = 8, 10
    t = build_task(config.load(None, ["task.name=sines", "task.length=600", "task.eval_steps=40",
                                      f"task.warmup={warm}", f"task.horizon={horizon}", "task.seq_len=20"]).task, 0)
    (x, y, mask), = list(t.eval_batches(1, 1))
    stats = t.free_running_stats(Persistence(), x, y, mask)
    # block k: the true inputs read up to its first scored step s = warm + 8k, then x_s repeated for 8 steps
    expected = torch.stack([(x[0, s, 0] - y[0, s:s + horizon]) ** 2 for s in range(warm, warm + 40, horizon)])
    assert stats["free_rows"] == 5 and stats["free_count"] == 40
    assert stats["free_sq"] == pytest.approx(float(expected.sum()), rel=1e-6)
    assert stats["free_sq_last"] == pytest.approx(float(expected[:, -1].sum()), rel=1e-6)
    summary = t.eval_summary(stats)
    assert summary["free_nrmse_continuous"] == pytest.approx(math.sqrt(float(expected.mean()) / t.variance))
    assert f"free_nrmse_continuous@{horizon}" in summary


def test_the_esn_runs_free_in_a_run(tmp_path):
    _, _, event = train(ESN + ["task.horizon=50"], tmp_path)
    assert 0 < event["free_nrmse_continuous"] < event["free_nrmse_continuous@50"] * 2
    assert event["nrmse_continuous"] < event["free_nrmse_continuous"]  # feeding back compounds the errors


@pytest.mark.parametrize("sets, key", [
    (["task.warmup=500"], "task.warmup"),  # more than the 400-step training part
    (["task.horizon=301"], "task.horizon"),  # more than the held-out stretch
    (["task.eval_steps=700"], "task.eval_steps"),
    (["task.seq_len=401"], "task.seq_len"),
    (["task.name=narma10", "task.horizon=5"], "task.horizon"),
], ids=["warmup", "horizon", "eval_steps", "seq_len", "horizon-narma"])
def test_protocol_sizes_that_do_not_fit_are_config_errors(sets, key):
    with pytest.raises(ConfigError, match=key):
        prepare(config.load(None, ESN + sets))


# -- a user's file ------------------------------------------------------------------------------------


def file_sets(path, *extra):
    return ["task.name=series_file", f"task.path={path}", "task.eval_steps=50", "task.seq_len=20",
            "task.warmup=10", *extra]


def file_task(path, *extra):
    return build_task(config.load(None, file_sets(path, *extra)).task, 0)


def write_csv(path, rows, header="u,y"):
    path.write_text("\n".join([header] + [",".join(map(str, r)) for r in rows]) + "\n")
    return path


def test_a_csv_series_predicts_its_columns_one_step_ahead(tmp_path):
    rng = np.random.default_rng(0)
    table = rng.normal(size=(300, 2)) * [2.0, 0.5] + [1.0, -3.0]  # (rows, columns)
    t = file_task(write_csv(tmp_path / "s.csv", table.tolist()))
    train = table[:250]  # 299 pairs, the last 50 held out: the 249 training pairs read rows 0..249
    standard = (table - train.mean(0)) / train.std(0)
    assert t.spec.input_size == 2 and t.spec.output_size == 2 and t.inputs_are_series
    np.testing.assert_allclose(t.train_x.numpy(), standard[:249], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(t.val_y.numpy(), standard[250:], rtol=1e-5, atol=1e-6)  # target: the next row
    x, y, _ = t.train_batch(3, torch.Generator().manual_seed(0))
    assert x.shape == (3, 20, 2) and y.shape == (3, 20, 2)
    assert t.variance == pytest.approx(float(standard[250:].var(0).mean()), rel=1e-5)
    driven = file_task(tmp_path / "s.csv", "task.columns=['u']", "task.targets=['y']", "task.standardize=false")
    assert driven.spec.output_size == 1 and not driven.inputs_are_series and driven.val_y.shape == (50,)
    np.testing.assert_allclose(driven.val_y.numpy(), table[250:, 1], rtol=1e-6)


def test_a_npy_series_runs_and_its_hash_is_recorded(tmp_path):
    path = tmp_path / "s.npy"
    np.save(path, np.sin(np.arange(400) * 0.3))  # 1-D: one column, "0"
    sets = file_sets(path, "model.arch=esn", "model.hidden=20", "model.sparsity=0.5", "train.algorithm=ridge",
                     "train.steps=2", "train.batch_size=4", "train.eval_every=2", "train.checkpoint_every=0",
                     "probes.every=0", "device=cpu", "task.horizon=10")
    _, run, event = train(sets, tmp_path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    saved = config.load(run.path / "config.toml", [])
    assert saved.task.sha256 == digest and saved.task.path == str(path)
    assert event["nrmse_continuous"] < 0.1 and "free_nrmse_continuous" in event
    np.save(path, np.cos(np.arange(400) * 0.3))  # the file changed under the run's config
    with pytest.raises(ConfigError, match="task.sha256"):
        build_task(saved.task, 0)


@pytest.mark.parametrize("content, extra, message", [
    (None, [], "no such file"),
    ("u,y\n1,2\n3\n", [], "row 3 has 1 fields"),
    ("u,y\n1,2\n3,abc\n", [], "'abc' is not a number"),
    ("u,y\n" + "1,2\n" * 40 + "nan,1\n" + "1,2\n" * 100, [], "is nan"),
    ("u,y\n" + "1,2\n" * 30, ["task.standardize=false"], "too few"),
    ("u,y\n" + "1,2\n" * 200, ["task.columns=['v']"], "'v' is not a column"),
    ("u,y\n" + "1,2\n" * 200, ["task.targets=['u','u']"], "twice"),
    ("u,u\n" + "1,2\n" * 200, [], "repeated name"),
    (b"\xff\xfe\x00bad", [], "not a readable CSV"),
    ("u,y\n" + "1,2\n" * 200, [], "constant"),
    ("u,y\n" + "1,2\n" * 30 + "3,4\n" * 60, ["task.standardize=false"], "constant over the scored"),
], ids=["missing", "ragged", "text", "nan", "short", "column", "twice", "header", "bytes", "constant", "flat-held-out"])
def test_a_bad_csv_file_is_one_config_error(tmp_path, content, extra, message):
    path = tmp_path / "bad.csv"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=message) as error:
        file_task(path, *extra)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("array, message", [
    (np.array([{"a": 1}] * 200, dtype=object), "not a readable .npy"),  # a pickle: refused, never run
    (np.zeros((10, 10, 10)), "3-D"),
    (np.array(["a"] * 200), "not real numbers"),
    (np.concatenate([np.arange(200.0), [np.inf]]), "is inf"),
], ids=["pickle", "3d", "strings", "inf"])
def test_a_bad_npy_file_is_one_config_error(tmp_path, array, message):
    path = tmp_path / "bad.npy"
    np.save(path, array, allow_pickle=True)
    with pytest.raises(ConfigError, match=message):
        file_task(path)
    (tmp_path / "cut.npy").write_bytes(path.read_bytes()[:20])
    with pytest.raises(ConfigError, match="not a readable .npy"):
        file_task(tmp_path / "cut.npy")
