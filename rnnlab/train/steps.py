"""One training step, whatever the algorithm: the part that differs, ending in a StepResult.

The Trainer knows nothing of BPTT, RTRL, the Kalman filter or the ridge readout: it calls the
step kind algorithms.py's table chose once, then runs one shared tail on the result (Trainer.
finish_step: the non-finite and divergence checks, `apply`, the train event, the probes). A kind
writes only what its algorithm does differently:

  Backprop        BPTT, full or truncated: the loss backpropagated, clipped, an optimizer step
  GivenGradients  RTRL: the algorithm has set .grad itself; clipped and stepped as for BPTT
  Filter          the extended Kalman filter: the weights are updated inside; no optimizer step
  Readout         the ridge readout: one batch into its normal equations, re-solved; no gradient

Nothing of a gradient step is applied before the tail's checks pass (`apply` runs after them):
a run that has blown up ends with the weights of the step before. The filter and the readout
change the weights as they go; a run they end diverged saves no checkpoint of those (the loop
saves `last` only for finished and stopped runs).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from typing import Callable

import torch

from ..config import TrainConfig
from ..probes import Prober
from .optim import Schedule, set_lr
from .scheduled import set_teacher_forcing


@dataclass
class StepResult:
    """What one step did, before the tail checks it; the train event is built from it."""

    loss: float
    tokens: int  # judged positions this step: tokens_per_s
    lr: float = 0.0  # 0 for the kinds that take no optimizer step
    grad_norm: float = 0.0  # pre-clip ||g|| (the filter: ||delta w||; the readout: 0)
    clipped: bool = False
    extras: dict = field(default_factory=dict)  # the train event's keys after the common ones, in order
    gradnorm: dict | None = None  # the gradnorm event's groups and clip, taken pre-clip when the probes are due
    apply: Callable[[], None] | None = None  # what makes the step real once the checks pass (optimizer.step)


@dataclass
class StepContext:
    """What every step kind may use; the Trainer builds it once."""

    model: torch.nn.Module
    algorithm: object  # bptt.FullBPTT, bptt.TruncatedBPTT, rtrl.RTRL, ekf.ExtendedKalmanFilter, ridge.RidgeReadout
    optimizer: torch.optim.Optimizer
    schedule: Schedule
    train: TrainConfig
    prober: Prober
    autocast: contextlib.AbstractContextManager


class Step:
    """One kind of step. `take` does the work; the rest tells the shared tail how to judge it."""

    advice = ""  # the end of a diverged run's error: what to change
    watched = True  # the divergence watch (divergence.py) follows the loss

    def __init__(self, context: StepContext):
        self.ctx = context

    def take(self, step: int) -> StepResult:
        """Training step number `step` (1-based), not yet applied."""
        raise NotImplementedError

    def non_finite(self, result: StepResult) -> str | None:
        """'loss became nan', or what else went non-finite; None when all is finite."""
        return None if math.isfinite(result.loss) else f"loss became {result.loss}"

    def where(self, result: StepResult) -> str:
        """What a diverged run's error adds after 'at step N'."""
        return ""

    def _begin(self, step: int) -> tuple[float, dict]:
        """The lr of this step set on the optimizer, training mode, scheduled sampling's probability:
        (lr, the train event's extras so far)."""
        lr = self.ctx.schedule.lr(step)
        set_lr(self.ctx.optimizer, lr)
        self.ctx.model.train()
        return lr, set_teacher_forcing(self.ctx.train, self.ctx.model, self.ctx.algorithm, step)


class Backprop(Step):
    """BPTT (full, truncated): the algorithm's loss backpropagated, clipped, then an optimizer step."""

    advice = "lower train.lr or clip the gradients"
    backward = True  # False: the algorithm has set .grad itself (GivenGradients)

    def take(self, step: int) -> StepResult:
        c, tc = self.ctx, self.ctx.train
        lr, extras = self._begin(step)
        if self.backward:
            c.optimizer.zero_grad(set_to_none=True)
        with c.autocast:
            loss, tokens = c.algorithm.step_loss(c.model)
        if self.backward:
            loss.backward()
        extras.update(c.algorithm.extras)
        params = [p for p in c.model.parameters() if p.grad is not None]
        groups = c.prober.gradnorms(c.model) if c.prober.due(step) else None  # pre-clip
        if tc.clip_mode == "norm":  # clipping keeps one exploding gradient from wrecking the weights
            norm = float(torch.nn.utils.clip_grad_norm_(params, tc.clip))
            clipped = norm > tc.clip
        else:
            norm = float(torch.nn.utils.get_total_norm([p.grad for p in params]))
            clipped = False
            if tc.clip_mode == "value":
                clipped = any(bool((p.grad.abs() > tc.clip).any()) for p in params)
                torch.nn.utils.clip_grad_value_(params, tc.clip)
        gradnorm = None if groups is None else {**groups, "clip": tc.clip if tc.clip_mode == "norm" else None}
        return StepResult(loss.item(), tokens, lr, norm, clipped, extras, gradnorm, c.optimizer.step)

    def non_finite(self, result: StepResult) -> str | None:
        if not math.isfinite(result.grad_norm) and math.isfinite(result.loss):
            return f"gradient norm became {result.grad_norm}"
        return super().non_finite(result)

    def where(self, result: StepResult) -> str:
        return f" (lr {result.lr:.3g})"


class GivenGradients(Backprop):
    """RTRL: the algorithm has computed the gradient forward in time and set .grad; the rest is BPTT's."""

    backward = False


class Filter(Step):
    """The extended Kalman filter: the weights are updated inside the algorithm; grad_norm is ||delta w||.
    The lr is still set (a resumed run's optimizer state is as before), but no optimizer step is taken."""

    advice = "raise train.ekf_noise"

    def take(self, step: int) -> StepResult:
        _, extras = self._begin(step)
        loss, tokens = self.ctx.algorithm.step_loss(self.ctx.model)
        return StepResult(float(loss), tokens, 0.0, self.ctx.algorithm.last_update_norm, False, extras)


class Readout(Step):
    """One batch into the ridge readout's normal equations, re-solved: no gradient, no optimizer.
    Not watched for divergence: a closed-form solve has no step size to blow up, and its loss falls as
    batches come in."""

    advice = "lower model.spectral_radius or raise train.ridge_alpha"
    watched = False

    def take(self, step: int) -> StepResult:
        self.ctx.model.eval()  # the features are the fixed part's deterministic output
        fit = self.ctx.algorithm.step(self.ctx.model)
        # lr and grad_norm stay 0: no gradient step is taken. samples: judged positions this batch added
        return StepResult(fit["loss"], fit["tokens"], extras={
            "samples": fit["samples"], "fit_samples": fit["fit_samples"], "fit_mse": fit["fit_mse"]})
