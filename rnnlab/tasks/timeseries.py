"""Time series, one-step-ahead prediction: Mackey-Glass, NARMA-10, sums of sines.

Each series is generated once from the seed, long enough for training windows
and a held-out tail (the last 10%) for validation. The model reads the input
at t and predicts the target at t (for Mackey-Glass and sines the input is
x_t and the target x_{t+1}; for NARMA-10 the input is u_t and the target
y_{t+1}). Metrics: MSE (the loss), NRMSE = RMSE / std(target) and R^2; the
baseline is predicting the mean (R^2 = 0), and `persistence_nrmse` is what
repeating the last value scores.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..models.base import TaskSpec
from ..options import opt
from . import TASKS
from .base import Task, TaskOptions


def mackey_glass(steps: int, generator: torch.Generator, tau: int = 17, beta: float = 0.2, gamma: float = 0.1,
                 n: int = 10, dt: float = 0.1, sample: int = 10) -> torch.Tensor:
    """dx/dt = beta x(t - tau) / (1 + x(t - tau)^n) - gamma x(t), Euler with dt, sampled every `sample` steps."""
    lag = int(tau / dt)
    history = (1.2 + 0.1 * (torch.rand(lag + 1, generator=generator, dtype=torch.float64) - 0.5)).tolist()
    out = []
    for i in range((steps + 200) * sample):  # 200 samples of warm-up are dropped: the transient
        x, delayed = history[-1], history[-1 - lag]
        history.append(x + dt * (beta * delayed / (1 + delayed ** n) - gamma * x))
        if len(history) > lag + 1:
            history.pop(0)
        if i % sample == 0:
            out.append(x)
    return torch.tensor(out[200:200 + steps], dtype=torch.float32)


def narma10(steps: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """y(t+1) = tanh(0.3 y(t) + 0.05 y(t) sum_{i<10} y(t-i) + 1.5 u(t-9) u(t) + 0.1), u ~ U(0, 0.5)."""
    u = (torch.rand(steps + 100, generator=generator, dtype=torch.float64) * 0.5).tolist()
    y = [0.0] * (steps + 101)
    for t in range(9, steps + 100):
        # tanh bounds it: the original recursion diverges on rare input sequences (here after ~12k steps)
        y[t + 1] = math.tanh(0.3 * y[t] + 0.05 * y[t] * sum(y[t - 9:t + 1]) + 1.5 * u[t - 9] * u[t] + 0.1)
    return torch.tensor(u[100:], dtype=torch.float32), torch.tensor(y[101:steps + 101], dtype=torch.float32)


def sines(steps: int, generator: torch.Generator, periods=(7.0, 17.0, 43.0)) -> torch.Tensor:
    phases = torch.rand(len(periods), generator=generator, dtype=torch.float64) * 2 * math.pi
    t = torch.arange(steps, dtype=torch.float64)
    return sum(torch.sin(2 * math.pi * t / p + ph) for p, ph in zip(periods, phases)).float() / len(periods)


@dataclass
class SeriesOptions(TaskOptions):
    name: str = opt("mackey_glass", "task (`rnnlab list tasks`)")
    length: int = opt(20000, "samples generated (train + validation)", min=100)
    seq_len: int = opt(100, "steps per training window", min=2)
    horizon: int = opt(0, "free-running evaluation: read the first seq_len - horizon steps of each validation "
                       "window, then predict `horizon` steps feeding back its own outputs (0: off; series whose "
                       "input is the series itself: mackey_glass, sines)", min=0)

    def check(self, section: str) -> None:
        if self.horizon >= self.seq_len:
            raise ConfigError(f"{section}.horizon", self.horizon, f"leaves nothing of the {self.seq_len}-step "
                              "window to read first", f"an integer < task.seq_len = {self.seq_len}")


class SeriesTask(Task):
    """One-step-ahead regression over windows of a generated series."""

    Options = SeriesOptions
    loss_unit, baseline_label = "MSE", "predict the mean"

    def __init__(self, options, seed: int = 0):
        self.options = options
        inputs, targets = self.generate(options.length + 1, torch.Generator().manual_seed(seed))
        split = int(len(targets) * 0.9)
        self.train_x, self.train_y = inputs[:split], targets[:split]
        self.val_x, self.val_y = inputs[split:], targets[split:]
        if options.seq_len >= len(self.val_y):
            raise ConfigError("task.seq_len", options.seq_len, "longer than the validation part of the series",
                              f"an integer < {len(self.val_y)} (or a larger task.length)")
        self.spec = TaskSpec(input_size=1, output_size=1, causal=self.inputs_are_series)
        if options.horizon and not self.inputs_are_series:
            raise ConfigError("task.horizon", options.horizon, f"{options.name}'s input is not its own series, so "
                              "there is nothing to feed back", "0, or the task mackey_glass or sines")
        self.variance = float(self.val_y.var(unbiased=False))
        self.persistence = float(((self.val_x[1:] - self.val_y[1:]) ** 2).mean()) if self.inputs_are_series else None

    inputs_are_series = True

    def generate(self, steps: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        series = self.series(steps + 1, generator)
        return series[:-1], series[1:]  # input x_t, target x_{t+1}

    def train_batch(self, batch_size, generator):
        length = self.options.seq_len
        starts = torch.randint(0, len(self.train_y) - length, (batch_size,), generator=generator)
        index = starts[:, None] + torch.arange(length)  # (B, T)
        return self.train_x[index][..., None], self.train_y[index], None  # x (B, T, 1), y (B, T)

    def eval_batches(self, batch_size, count):
        length = self.options.seq_len
        windows = len(self.val_y) // length
        usable = min(windows, batch_size * count)
        x = self.val_x[:usable * length].view(usable, length, 1)
        y = self.val_y[:usable * length].view(usable, length)
        for start in range(0, usable, batch_size):
            yield x[start:start + batch_size], y[start:start + batch_size], None

    def loss(self, output, y, mask):
        return F.mse_loss(output[..., 0], y)

    def step_losses(self, output, y, mask):
        return (output[..., 0] - y) ** 2  # (B, T)

    @torch.no_grad()
    def free_running_stats(self, model, x, y, mask) -> dict:
        """Free-running multi-step prediction: squared errors summed over the horizon and at its last step."""
        horizon = self.options.horizon
        if not horizon:
            return {}
        warm = x.shape[1] - horizon
        out, state = model(x[:, :warm])  # (B, warm, 1): the true series read, the state built
        guess, guesses = out[:, -1:], []  # (B, 1, 1): its prediction of x[warm]
        for _ in range(horizon):
            guesses.append(guess[:, 0, 0])
            guess, state = model(guess, state)  # its own prediction is the next input
        errors = (torch.stack(guesses, 1) - x[:, warm:, 0]) ** 2  # (B, horizon); x_{t+1} is the truth
        return {"free_sq": float(errors.sum()), "free_count": float(errors.numel()),
                "free_sq_last": float(errors[:, -1].sum()), "free_rows": float(errors.shape[0])}

    def eval_summary(self, totals: dict) -> dict:
        if "free_count" not in totals:
            return {}
        return {"free_nrmse": math.sqrt(totals["free_sq"] / totals["free_count"] / self.variance),
                f"free_nrmse@{self.options.horizon}": math.sqrt(totals["free_sq_last"] / totals["free_rows"]
                                                              / self.variance)}

    def metrics(self, mean_loss):
        out = {"loss": mean_loss, "mse": mean_loss, "baseline": self.variance,
               "nrmse": math.sqrt(mean_loss / self.variance), "r2": 1 - mean_loss / self.variance}
        if self.persistence is not None:
            out["persistence_nrmse"] = math.sqrt(self.persistence / self.variance)
        return out


@TASKS.register("mackey_glass", "Mackey-Glass chaotic series (tau 17), one step ahead (NRMSE, R^2)")
class MackeyGlass(SeriesTask):
    def series(self, steps, generator):
        raw = mackey_glass(steps, generator)
        return (raw - raw.mean()) / raw.std()  # standardised: the same lr suits every series


@TASKS.register("sines", "A sum of three sines (periods 7, 17, 43), one step ahead")
class Sines(SeriesTask):
    def series(self, steps, generator):
        return sines(steps, generator)


@TASKS.register("narma10", "NARMA-10: a 10th-order nonlinear system driven by noise (NRMSE)")
class Narma10(SeriesTask):
    inputs_are_series = False

    def generate(self, steps, generator):
        u, y = narma10(steps, generator)
        return (u - 0.25) * 4, (y - y.mean()) / y.std()  # centred input, standardised target
