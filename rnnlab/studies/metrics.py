"""The values a study's checks read from a trial's own events (as sweeps/results.py reads its metric):

    NAME        the last eval event's NAME (loss, error_rate, nrmse_continuous, ...)
    NAME@N      the last eval event's by_length[N][NAME] (task.eval_lengths: scored at length N)
    grad_h0     the last gradflow event's ||dL_T/dh_0||, layer 0: the gradient of the last step's loss
                that reaches the first state (probes.gradflow; rnnlab/probes/flow.py)
    grad_ratio  that norm over ||dL_T/dh_T||: how much of the gradient survives the way back (< 1 vanishes,
                > 1 explodes)

    step_seconds  one training step's seconds: the mean gap between consecutive train events' t, leaving
                out gaps over twice the median plus 2 ms (t's rounding): the evaluations, probes and
                checkpoints between some steps
    rtrl_gap    the largest rtrl_gap of the train events (train.rtrl_check_every): how far RTRL's gradient
                is from BPTT's on the same batch, relative to BPTT's norm

    diverged    1 for a trial that diverged (a NaN/inf or blown-up loss, or an inf gradient norm), 0 for
                one that finished: explosions counted (a diverged trial has no other value)
    loss_spikes the steps whose training loss jumps above SPIKE_FACTOR x the median of the SPIKE_WINDOW
                steps before it (the train events; for a diverged trial too, its curve up to the blow-up)

    A - B       the difference of two of the above in the same trial (loss_free_running - loss: the
                exposure-bias gap; bpc - ngram_bpc: a model against its own eval's baseline). The spaces
                around the minus are required: eval keys themselves may hold a hyphen (exact@1-10)

A trial that did not finish (diverged aside, for `diverged`) has no values (None), like a sweep's table.
"""

from __future__ import annotations

import math
import re
import statistics

from .. import store
from ..errors import ConfigError
from ..sweeps import results
from .checks import Observation

GRADIENT = ("grad_h0", "grad_ratio")
TRAIN = ("step_seconds", "rtrl_gap")
ROUNDING = 0.002  # seconds: two units of t's rounding (events write t to the millisecond)
DIVERGED = "diverged"
SPIKES = "loss_spikes"
# A spike: a step whose loss is a quarter above the recent level. The median of the 20 steps before it is that
# level, unmoved by the spikes themselves. In the clipped char-LM runs explored for experiments/studies/
# clipping.toml a step's loss sat a median 3% (95% within 11%, at most 17%) from that level, so 1.25x is an
# update that undid learning, not a noisy batch. Meant for losses well above 0 (nats/char): near 0, relative
# jumps are noise.
SPIKE_WINDOW, SPIKE_FACTOR = 20, 1.25
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(@[0-9]+)?$")
DIFFERENCE = re.compile(r"^(\S+) - (\S+)$")  # "A - B": one space each side, so a hyphen in a key stays a key's


def check_metric_name(name: str, key: str) -> None:
    parts = difference(name)
    if parts is not None and all(NAME.match(part) and part != DIVERGED for part in parts):
        return
    if not NAME.match(name):
        raise ConfigError(key, name, "not a metric name", "an eval key (error_rate), NAME@LENGTH (error_rate@40), "
                          + ", ".join((*GRADIENT, *TRAIN, DIVERGED, SPIKES))
                          + ", or A - B (the difference of two of them)")


def difference(name: str) -> tuple[str, str] | None:
    """("A", "B") for a metric "A - B" (the two values of the same trial, subtracted); None otherwise."""
    found = DIFFERENCE.match(name)
    return (found.group(1), found.group(2)) if found else None


def value(events: list[dict], name: str) -> float | None:
    """One metric from a run's events, or None (absent, not a finite number)."""
    parts = difference(name)
    if parts is not None:  # A - B: None when either side is missing
        a, b = (value(events, part) for part in parts)
        return None if a is None or b is None else a - b
    if name == SPIKES:
        return loss_spikes(events)
    if name in TRAIN:
        found = train_value(events, name)
    elif name in GRADIENT:
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


def train_value(events: list[dict], name: str) -> float | None:
    """step_seconds or rtrl_gap from the train events (None: fewer than two steps, or no rtrl_gap)."""
    train = [e for e in events if e.get("kind") == "train"]
    try:
        if name == "step_seconds":
            times = [float(e["t"]) for e in train]
            if len(times) < 2:
                return None
            gaps = [b - a for a, b in zip(times, times[1:])]
            bar = 2 * statistics.median(gaps) + ROUNDING
            return statistics.fmean(g for g in gaps if g <= bar)
        gaps = [e["rtrl_gap"] for e in train if "rtrl_gap" in e]
        return max(gaps) if gaps else None
    except (KeyError, TypeError, ValueError, statistics.StatisticsError):
        return None


def loss_spikes(events: list[dict]) -> float | None:
    """How many train steps spiked (SPIKE_FACTOR x the running median); None for a curve too short to judge."""
    losses = [e.get("loss") for e in events if e.get("kind") == "train"]
    losses = [v for v in losses if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]
    if len(losses) <= SPIKE_WINDOW:
        return None
    return float(sum(losses[t] > SPIKE_FACTOR * statistics.median(losses[t - SPIKE_WINDOW:t])
                     for t in range(SPIKE_WINDOW, len(losses))))


def observe(sweep: store.SweepDir, record: dict, names: list[str]) -> list[Observation]:
    """Every trial of the sweep as an Observation holding the named metrics (finished trials only)."""
    out = []
    for trial in results.trial_results(sweep, record):
        values = dict.fromkeys(names)
        if trial.state == "finished" and trial.run is not None:
            events = store.RunDir(sweep.runs_dir / trial.run).read_events()
            values = {name: value(events, name) for name in names}
        if SPIKES in values and trial.state == "diverged" and trial.run is not None:  # its curve until it blew up
            values[SPIKES] = loss_spikes(store.RunDir(sweep.runs_dir / trial.run).read_events())
        if DIVERGED in values and trial.state in ("finished", "diverged"):
            values[DIVERGED] = float(trial.state == "diverged")
        out.append(Observation(trial.point, trial.seed, values, trial.state))
    return out
