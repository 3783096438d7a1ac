"""Time series, one-step-ahead prediction: Mackey-Glass, NARMA-10, sums of sines (and a user's file:
series_file.py).

The series is split once: the last `task.eval_steps` pairs (default: the last 10%) are held out, the rest
is the training part, from which training draws random `seq_len` windows. The model reads the input at t
and predicts the target at t (Mackey-Glass and sines: input x_t, target x_{t+1}; NARMA-10: input u_t,
target y_{t+1}).

Evaluation protocols (`task.protocol`):
  continuous  (default; the field's: ReservoirPy, Jaeger): one batch of one sequence, the last `task.warmup`
              steps of the training part followed by the whole held-out stretch, run from a zero state.
              The warm-up is run but not scored (the mask leaves it out), so the state is warm, exactly as
              if it had been carried on from training. Metric names end in `_continuous`.
  windows     (the older one): the held-out part cut into `seq_len` windows, each from a zero state, every
              step scored, its transient included. Metric names carry no suffix (nrmse, r2, ...).
Metrics: MSE (the loss, mean over the scored steps), NRMSE = RMSE / std of the target over the scored
steps (population std; several target columns: sqrt(MSE / mean of their variances)), R^2 = 1 - MSE / var;
the baseline is predicting the mean (R^2 = 0), and `persistence_nrmse` what repeating the last value scores.

Free running (`task.horizon` = H > 0, series whose input is the series itself): the model reads the true
series, then is fed back its own outputs for H steps. Continuous: the scored stretch is cut into blocks of
H; for each, the model has read the true inputs up to the block's first scored step, with the state carried
from the warm-up on (teacher forced), and then predicts the block's H targets closed-loop. The first block
starts at the end of the warm-up (ReservoirPy's generative setting); the others give more starts to average.
`free_nrmse_continuous` is over all fed-back steps, `free_nrmse_continuous@H` over each block's H-th.
Windows: each window reads seq_len - H steps, then predicts H (`free_nrmse`, `free_nrmse@H`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..errors import ConfigError
from ..models.base import TaskSpec
from ..options import opt
from .registry import TASKS
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
    length: int = opt(20000, "input/target pairs generated (training part + held-out part)", min=100)
    seq_len: int = opt(100, "steps per training window (and per evaluation window of protocol = windows)", min=2)
    eval_steps: int = opt(0, "held-out pairs at the end of the series, scored by evaluation (0: the last 10%); "
                          "the training part is everything before them", min=0)
    protocol: str = opt("continuous", "evaluation: continuous = the held-out stretch as one sequence after a "
                        "warm-up that is run but not scored (metrics named *_continuous); windows = seq_len "
                        "windows of it, each from a zero state, every step scored", choices=["continuous", "windows"])
    warmup: int = opt(100, "protocol = continuous: steps just before the held-out stretch (the end of the "
                      "training part) run from a zero state but not scored, so scoring starts from a warm state",
                      min=0)
    horizon: int = opt(0, "free-running evaluation: after reading the true series, predict `horizon` steps "
                       "feeding back its own outputs (continuous: each horizon-step block of the held-out "
                       "stretch, the state carried from the warm-up; windows: the last `horizon` steps of each "
                       "window); 0: off; series whose input is the series itself", min=0)

    def check(self, section: str) -> None:
        if self.protocol == "windows" and self.horizon >= self.seq_len:
            raise ConfigError(f"{section}.horizon", self.horizon, f"leaves nothing of the {self.seq_len}-step "
                              "window to read first", f"an integer < task.seq_len = {self.seq_len}")
        if self.protocol == "continuous" and self.eval_steps and self.horizon > self.eval_steps:
            raise ConfigError(f"{section}.horizon", self.horizon, "is longer than the held-out stretch",
                              f"an integer <= task.eval_steps = {self.eval_steps}")


class SeriesTask(Task):
    """One-step-ahead regression on a series: training windows, a held-out stretch scored by `protocol`."""

    Options = SeriesOptions
    loss_unit, baseline_label = "MSE", "predict the mean"
    inputs_are_series = True  # the input is the series itself: free running can feed outputs back
    source = "task.length"  # the key to blame when the series is too short

    def __init__(self, options, seed: int = 0):
        self.options = options
        inputs, targets = self.generate(options.length, torch.Generator().manual_seed(seed))
        self.split_series(inputs[:, None], targets[:, None])

    def generate(self, steps: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        series = self.series(steps + 1, generator)
        return series[:-1], series[1:]  # input x_t, target x_{t+1}

    def split_series(self, inputs: torch.Tensor, targets: torch.Tensor) -> None:
        """Inputs (N, I) and targets (N, O) into the training part and the held-out stretch; checks their sizes."""
        o, total = self.options, len(targets)
        held = o.eval_steps or total // 10
        if held >= total:
            raise ConfigError("task.eval_steps", o.eval_steps, f"leaves nothing of the {total} pairs to train on",
                              f"an integer < {total}")
        split = total - held
        if o.seq_len > split:
            raise ConfigError("task.seq_len", o.seq_len, f"longer than the training part of the series ({split} "
                              "pairs)", f"an integer <= {split} (or a longer series: {self.source})")
        if o.protocol == "windows" and o.seq_len > held:
            raise ConfigError("task.seq_len", o.seq_len, f"longer than the held-out part of the series ({held} "
                              "pairs), which protocol = windows cuts into seq_len windows",
                              f"an integer <= {held} (or a larger task.eval_steps, or protocol = continuous)")
        if o.protocol == "continuous" and o.warmup > split:
            raise ConfigError("task.warmup", o.warmup, f"longer than the training part it is taken from ({split} "
                              "pairs)", f"an integer <= {split}")
        if o.protocol == "continuous" and o.horizon > held:
            raise ConfigError("task.horizon", o.horizon, f"longer than the held-out stretch ({held} pairs)",
                              f"an integer <= {held}")
        if o.horizon and not self.inputs_are_series:
            raise ConfigError("task.horizon", o.horizon, f"{o.name}'s input is not its own series, so there is "
                              "nothing to feed back", "0, or a task whose input is the series it predicts")
        self.outputs = targets.shape[1]
        self.spec = TaskSpec(input_size=inputs.shape[1], output_size=self.outputs, causal=self.inputs_are_series)
        self.train_x, self.train_y = inputs[:split], self.squeeze(targets[:split])  # (N, I), (N,) or (N, O)
        self.val_x, self.val_y = inputs[split:], self.squeeze(targets[split:])
        if o.protocol == "continuous":
            self.eval_x, self.eval_y = inputs[split - o.warmup:], self.squeeze(targets[split - o.warmup:])
            self.scored = torch.arange(len(self.eval_y)) >= o.warmup  # (W + E,): the warm-up is not scored
            scored_x, scored_y = self.val_x, self.val_y
        else:
            usable = held // o.seq_len * o.seq_len  # whole windows
            scored_x, scored_y = self.val_x[:usable], self.val_y[:usable]
        self.variance = float(scored_y.reshape(len(scored_y), -1).var(0, unbiased=False).mean())
        if self.variance == 0:  # NRMSE and R^2 divide by it
            raise ConfigError(self.source, getattr(o, self.source.split(".")[1]), "the target is constant over "
                              "the scored held-out steps, so NRMSE is undefined", "a series that varies there")
        self.persistence = float(((scored_x[:, :self.outputs] - scored_y.reshape(len(scored_y), -1)) ** 2).mean()
                                 ) if self.inputs_are_series else None

    def squeeze(self, targets: torch.Tensor) -> torch.Tensor:
        return targets[:, 0] if self.outputs == 1 else targets  # one target column: y is (B, T), as elsewhere

    @property
    def suffix(self) -> str:
        return "_continuous" if self.options.protocol == "continuous" else ""

    def train_batch(self, batch_size, generator):
        length = self.options.seq_len
        starts = torch.randint(0, len(self.train_y) - length + 1, (batch_size,), generator=generator)
        index = starts[:, None] + torch.arange(length)  # (B, T)
        return self.train_x[index], self.train_y[index], None  # x (B, T, I), y (B, T) or (B, T, O)

    def eval_batches(self, batch_size, count):
        """continuous: one batch of the one stretch (batch_size and count do not apply); windows: count batches."""
        if self.options.protocol == "continuous":
            yield self.eval_x[None], self.eval_y[None], self.scored[None]  # (1, W+E, I), (1, W+E[, O]), (1, W+E)
            return
        yield from self.windows(batch_size, count)

    def windows(self, batch_size, count, length=None):
        length = length or self.options.seq_len
        usable = min(len(self.val_y) // length, batch_size * count)
        x = self.val_x[:usable * length].view(usable, length, -1)  # (N, T, I)
        y = self.val_y[:usable * length].view(usable, length, *self.val_y.shape[1:])  # (N, T[, O])
        for start in range(0, usable, batch_size):
            yield x[start:start + batch_size], y[start:start + batch_size], None

    def probe_batch(self, batch_size):
        """The probes' fixed batch: held-out windows of the training length (or all of it, if shorter),
        whatever the protocol."""
        return next(self.windows(batch_size, 1, min(self.options.seq_len, len(self.val_y))))

    def loss(self, output, y, mask):
        errors = self.step_losses(output, y, mask)  # (B, T)
        return errors.mean() if mask is None else errors.sum() / mask.sum()

    def step_losses(self, output, y, mask):
        errors = (output[..., 0] - y) ** 2 if y.dim() == 2 else ((output - y) ** 2).mean(-1)  # (B, T)
        return errors * mask if mask is not None else errors

    @torch.no_grad()
    def free_running_stats(self, model, x, y, mask) -> dict:
        """Squared errors of the fed-back predictions: summed over the horizon, and at its last step."""
        if not self.options.horizon:
            return {}
        errors = self.free_continuous(model, x, y) if self.options.protocol == "continuous" else \
            self.free_windows(model, x)
        return {"free_sq": float(errors.sum()), "free_count": float(errors.numel()),
                "free_sq_last": float(errors[:, -1].sum()), "free_rows": float(errors.shape[0])}

    def free_continuous(self, model, x, y) -> torch.Tensor:
        """(blocks, H) squared errors; x (1, W+E, I), y (1, W+E[, O]) the one stretch."""
        horizon, warm = self.options.horizon, self.options.warmup
        y = y if y.dim() == 3 else y[..., None]  # (1, W+E, O)
        out, state = model(x[:, :warm + 1])  # the warm-up and the first scored input read: out[:, -1] guesses y[warm]
        starts, rows = range(warm, x.shape[1] - horizon + 1, horizon), []
        for start in starts:
            guess, free, guesses = out[:, -1:], state, []  # (1, 1, O)
            for step in range(horizon):
                guesses.append(guess)
                if step < horizon - 1:
                    guess, free = model(guess, free)  # its own prediction of x_{t+1} is its next input
            rows.append(((torch.cat(guesses, 1) - y[:, start:start + horizon]) ** 2).mean(-1)[0])  # (H,)
            if start != starts[-1]:  # teacher forced on to the next block's first scored input
                out, state = model(x[:, start + 1:start + horizon + 1], state)
        return torch.stack(rows)  # (blocks, H)

    def free_windows(self, model, x) -> torch.Tensor:
        """(B, H) squared errors: each window reads seq_len - H true steps from a zero state, then runs free."""
        horizon = self.options.horizon
        warm = x.shape[1] - horizon
        out, state = model(x[:, :warm])  # (B, warm, O): the true series read, the state built
        guess, guesses = out[:, -1:], []  # (B, 1, O): its prediction of x[warm]
        for _ in range(horizon):
            guesses.append(guess)
            guess, state = model(guess, state)  # its own prediction is the next input
        return ((torch.cat(guesses, 1) - x[:, warm:, :self.outputs]) ** 2).mean(-1)  # (B, H); x_{t+1} is the truth

    def eval_summary(self, totals: dict) -> dict:
        if "free_count" not in totals:
            return {}
        name = f"free_nrmse{self.suffix}"
        return {name: math.sqrt(totals["free_sq"] / totals["free_count"] / self.variance),
                f"{name}@{self.options.horizon}": math.sqrt(totals["free_sq_last"] / totals["free_rows"]
                                                            / self.variance)}

    def metrics(self, mean_loss):
        s = self.suffix
        out = {"loss": mean_loss, f"mse{s}": mean_loss, "baseline": self.variance,
               f"nrmse{s}": math.sqrt(mean_loss / self.variance), f"r2{s}": 1 - mean_loss / self.variance}
        if self.persistence is not None:
            out[f"persistence_nrmse{s}"] = math.sqrt(self.persistence / self.variance)
        return out


@dataclass
class MackeyGlassOptions(SeriesOptions):
    scale: str = opt("standard", "how the series is normalised: standard = zero mean, unit std; minmax = "
                     "mapped onto [-1, 1] (ReservoirPy's tutorials)", choices=["standard", "minmax"])


@TASKS.register("mackey_glass", "Mackey-Glass chaotic series (tau 17), one step ahead (NRMSE, R^2)")
class MackeyGlass(SeriesTask):
    Options = MackeyGlassOptions

    def series(self, steps, generator):
        raw = mackey_glass(steps, generator)
        if self.options.scale == "minmax":
            return 2 * (raw - raw.min()) / (raw.max() - raw.min()) - 1
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
