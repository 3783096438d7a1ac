"""The extended Kalman filter trainer: its Jacobians, its update formulas, and that it learns."""

from __future__ import annotations

import pytest
import torch

from rnnlab import config
from rnnlab.models import build_model
from rnnlab.tasks import build_task
from rnnlab.train.ekf import ExtendedKalmanFilter


def setup(task_sets, arch="elman", hidden=4, **filter_options):
    cfg = config.load(None, [f"model.arch={arch}", f"model.hidden={hidden}", "model.layers=1", "model.embed=3",
                             *task_sets])
    task = build_task(cfg.task, 0)
    torch.manual_seed(0)
    model = build_model(cfg.model, task.spec).double()
    options = {"noise": 1.0, "process": 1e-4, "prior": 10.0, **filter_options}
    ekf = ExtendedKalmanFilter(task, model, 4, torch.Generator().manual_seed(3), torch.device("cpu"), **options)
    return task, model, ekf


SINES = ["task.name=sines", "task.length=600", "task.seq_len=12"]


def test_the_measurement_jacobian_is_the_total_derivative():
    """H_t, built from RTRL's sensitivity, equals autograd's d o_t / d w through the whole sequence."""
    task, model, ekf = setup(SINES)
    x = torch.randn(2, 5, 1, dtype=torch.float64)
    params = dict(ekf.step_model.named_parameters())
    flat, sensitivity, _ = ekf._begin(x, torch.zeros(2, 5, dtype=torch.float64), None)
    output, _ = model(x)  # (B, T, O)
    weights = [params[n] for n in ekf.names]
    for t in range(5):
        current = {n: params[n].detach() for n in ekf.names}
        d_out_w, d_out_s, out_t = ekf._output_jacobians(current, x[:, t], flat)
        torch.testing.assert_close(out_t, output[:, t].detach(), atol=1e-12, rtol=0)
        total = d_out_w.clone()
        total[..., :ekf.state_count] += torch.bmm(d_out_s, sensitivity)
        for b in range(2):
            grads = torch.autograd.grad(output[b, t, 0], weights, retain_graph=True)
            expected = torch.cat([g.flatten() for g in grads])
            torch.testing.assert_close(total[b, 0], expected, atol=1e-10, rtol=0)
        by_param, d_state, flat = ekf._state_jacobians(current, x[:, t], flat)
        sensitivity = torch.bmm(d_state, sensitivity) + by_param


def test_one_update_follows_the_kalman_equations():
    _, model, ekf = setup(SINES)
    generator = torch.Generator().manual_seed(0)
    count = len(ekf.covariance)
    root = torch.randn(count, count, dtype=torch.float64, generator=generator)
    ekf.covariance = root @ root.T / count + torch.eye(count, dtype=torch.float64)
    prior = ekf.covariance.clone()
    jacobian = torch.randn(3, count, dtype=torch.float64, generator=generator)
    innovation = torch.randn(3, dtype=torch.float64, generator=generator)
    params = dict(ekf.step_model.named_parameters())
    weights = [params[n] for n in ekf.names]
    before = torch.cat([w.detach().flatten() for w in weights])
    ekf._update(weights, jacobian, innovation)
    gain = prior @ jacobian.T @ torch.linalg.inv(ekf.noise * torch.eye(3, dtype=torch.float64)
                                                 + jacobian @ prior @ jacobian.T)
    after = torch.cat([w.detach().flatten() for w in weights])
    torch.testing.assert_close(after - before, gain @ innovation, atol=1e-10, rtol=0)
    expected = prior - gain @ jacobian @ prior + ekf.process * torch.eye(count, dtype=torch.float64)
    torch.testing.assert_close(ekf.covariance, expected, atol=1e-10, rtol=0)


def test_unjudged_steps_update_nothing():
    task, model, ekf = setup(["task.name=adding", "task.length=6"])  # judged at the last step only
    updates = []
    ekf._update = lambda weights, jacobian, innovation: updates.append(len(innovation)) or 0.0
    ekf.step_loss(model)
    assert updates == [4]  # one update, the B = 4 answers at the end stacked


def test_it_learns_to_predict_a_sum_of_sines():
    task, model, ekf = setup(SINES, hidden=6)
    batches = list(task.eval_batches(8, 2))

    def val_loss():
        with torch.no_grad():
            return sum(float(task.loss(model(x.double())[0], y.double(), m)) for x, y, m in batches) / len(batches)

    start = val_loss()
    for _ in range(25):
        loss, _ = ekf.step_loss(model)
        assert torch.isfinite(loss)
    assert val_loss() < 0.2 * start, (start, val_loss())
