"""When a finite loss means a run has blown up.

A NaN/inf loss is caught where it appears (loop.py). A learning rate far too
high can instead throw the weights to where the loss is huge but finite
(a char LM at lr 1e4 sits at ~10^4 nats/char): the run would end `finished`.
The rule: the training loss is *far above where it started* for
`diverge_patience` consecutive steps, where

    reference = max(the first step's loss, the task's no-memory baseline)
    far above = more than diverge_factor x reference

Why this shape:
- relative to the run's own start, so it holds for every unit (nats, MSE)
  and scale of task; the baseline (where a task has one) keeps a lucky tiny
  first loss from making the bar low;
- a factor of 10 by default: a healthy run's loss goes down, and an early
  spike of a noisy loss (a time series, a first Adam step) stays within a
  few times its start;
- consecutive steps: one bad batch, or a spike that training recovers from,
  never ends a run.
A loss at or below 0 (none of the tasks) gives no reference: the rule is off.
"""

from __future__ import annotations

import math


class DivergenceWatch:
    def __init__(self, factor: float, patience: int, baseline: float | None, reference: float | None = None):
        self.factor, self.patience = factor, patience
        self.baseline = baseline if baseline is not None and math.isfinite(baseline) else None
        self.reference = reference  # None until the first loss is seen (a checkpoint carries it over a resume)
        self.above = 0  # consecutive steps above the bar

    @property
    def bar(self) -> float | None:
        if not self.factor or self.reference is None or self.reference <= 0:
            return None
        return self.factor * self.reference

    def observe(self, loss: float) -> str | None:
        """Feed one step's (finite) training loss; a one-line reason once the run has diverged."""
        if self.reference is None:
            self.reference = max(loss, self.baseline) if self.baseline is not None else loss
        bar = self.bar
        if bar is None:
            return None
        self.above = self.above + 1 if loss > bar else 0
        if self.above < self.patience:
            return None
        return (f"loss {loss:.4g} stayed above {bar:.4g} ({self.factor:g} x its starting level {self.reference:.4g}) "
                f"for {self.patience} steps")
