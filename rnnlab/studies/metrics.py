"""The values a study's checks read from a trial's own events (as sweeps/results.py reads its metric):

    NAME        the last eval event's NAME (loss, error_rate, nrmse_continuous, ...)
    NAME@N      the last eval event's by_length[N][NAME] (task.eval_lengths: scored at length N)
    grad_h0     the last gradflow event's ||dL_T/dh_0||, layer 0: the gradient of the last step's loss
                that reaches the first state (probes.gradflow; rnnlab/probes/flow.py)
    grad_ratio  that norm over ||dL_T/dh_T||: how much of the gradient survives the way back (< 1 vanishes,
                > 1 explodes)

    diverged    1 for a trial that diverged (a NaN/inf or blown-up loss, or an inf gradient norm), 0 for
                one that finished: explosions counted (a diverged trial has no other value)

    A - B       the difference of two of the above in the same trial, e.g. "exact@3 - exact@12": how
                much exact match falls from 3 to 12 symbols (a change within each run, which a check can
                then compare across the sweep's points; one value absent: absent)

A trial that did not finish (diverged aside, for `diverged`) has no values (None), like a sweep's table.
"""

from __future__ import annotations

import math
import re

from .. import store
from ..errors import ConfigError
from ..sweeps import results
from .checks import Observation

GRADIENT = ("grad_h0", "grad_ratio")
DIVERGED = "diverged"
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(@[0-9]+)?$")
MINUS = " - "  # spaces required: a name like exact@3-6 (a seq2seq length bucket) is not a difference


def check_metric_name(name: str, key: str) -> None:
    parts = name.split(MINUS, 1)
    if not all(NAME.match(part) for part in parts) or (len(parts) == 2 and DIVERGED in parts):  # a trial's state
        raise ConfigError(key, name, "not a metric name", "an eval key (error_rate), NAME@LENGTH (error_rate@40), "
                          + ", ".join((*GRADIENT, DIVERGED)) + ", or A - B (exact@3 - exact@12)")


def value(events: list[dict], name: str) -> float | None:
    """One metric from a run's events, or None (absent, not a finite number)."""
    if MINUS in name:
        return difference(events, name)
    if name in GRADIENT:
        flows = [e for e in events if e.get("kind") == "gradflow"]
        try:
            last = flows[-1]["layers"]["layer0"]["last"]
            found = last[0] if name == "grad_h0" else last[0] / last[-1]
        except (IndexError, KeyError, TypeError, ZeroDivisionError):
            return None
    else:
        evals = [e for e in events if e.get("kind") == "eval"]
        if not evals:
            return None
        base, _, length = name.partition("@")
        source = evals[-1]
        if length:
            by_length = source.get("by_length")
            source = by_length.get(length) if isinstance(by_length, dict) else None
            if not isinstance(source, dict):
                return None
        found = source.get(base)
    if isinstance(found, bool) or not isinstance(found, (int, float)) or not math.isfinite(found):
        return None
    return float(found)


def difference(events: list[dict], name: str) -> float | None:
    """value(A) - value(B) for the name "A - B" (None when either is absent)."""
    first, second = (value(events, part) for part in name.split(MINUS, 1))
    if first is None or second is None:
        return None
    return first - second


def observe(sweep: store.SweepDir, record: dict, names: list[str]) -> list[Observation]:
    """Every trial of the sweep as an Observation holding the named metrics (finished trials only)."""
    out = []
    for trial in results.trial_results(sweep, record):
        values = dict.fromkeys(names)
        if trial.state == "finished" and trial.run is not None:
            events = store.RunDir(sweep.runs_dir / trial.run).read_events()
            values = {name: value(events, name) for name in names}
        if DIVERGED in values and trial.state in ("finished", "diverged"):
            values[DIVERGED] = float(trial.state == "diverged")
        out.append(Observation(trial.point, trial.seed, values, trial.state))
    return out
