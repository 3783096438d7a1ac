"""A sweep's results, computed from its trials' own events (never from a second copy): per point, the
metric of the last `eval` event of every finished trial, its mean and standard deviation over seeds."""

from __future__ import annotations

import csv
import json
import math
import statistics
from dataclasses import dataclass, field

from .. import store


@dataclass
class TrialResult:
    key: str
    point: dict
    seed: int
    run: str | None
    state: str  # the run's own state (crashed inferred), else the record's
    value: float | None  # the metric of its last eval event, when it finished
    steps: int = 0
    seconds: float | None = None


@dataclass
class PointResult:
    point: dict
    values: list[float] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)
    seconds: float = 0.0
    states: dict[str, int] = field(default_factory=dict)

    n = property(lambda self: len(self.values))
    mean = property(lambda self: statistics.fmean(self.values) if self.values else None)
    std = property(lambda self: statistics.stdev(self.values) if len(self.values) > 1
                   else 0.0 if self.values else None)
    mean_steps = property(lambda self: round(statistics.fmean(self.steps)) if self.steps else 0)


def trial_results(sweep: store.SweepDir, record: dict) -> list[TrialResult]:
    metric = record["metric"]
    found = None
    results = []
    for trial in record["trials"]:
        run_id = trial.get("run")
        if not (isinstance(run_id, str) and store.is_run_dir(sweep.runs_dir / run_id)):
            found = sweep.trial_runs() if found is None else found  # a run the driver did not get to record
            candidates = found.get(trial["key"], [])
            run_id = candidates[-1].id if candidates else None
        result = TrialResult(trial["key"], trial["point"], trial["seed"], run_id, str(trial.get("state")), None)
        if run_id is not None:
            run = store.RunDir(sweep.runs_dir / run_id)
            try:
                status = run.read_status()
                result.state = str(status.get("state"))
                elapsed = status.get("elapsed")
                result.seconds = float(elapsed) if isinstance(elapsed, (int, float)) else None
            except (OSError, ValueError):
                result.state = "corrupt"
            events = run.read_events()
            result.steps = max((e.get("step", 0) for e in events if isinstance(e.get("step"), int)), default=0)
            evals = [e for e in events if e["kind"] == "eval"]
            value = evals[-1].get(metric) if evals else None
            if (result.state == "finished" and isinstance(value, (int, float)) and not isinstance(value, bool)
                    and math.isfinite(value)):
                result.value = float(value)
        results.append(result)
    return results


def point_results(trials: list[TrialResult]) -> list[PointResult]:
    points: dict[str, PointResult] = {}
    for trial in trials:
        row = points.setdefault(json.dumps(trial.point, sort_keys=True), PointResult(trial.point))
        row.states[trial.state] = row.states.get(trial.state, 0) + 1
        if trial.value is not None:
            row.values.append(trial.value)
            row.steps.append(trial.steps)
        row.seconds += trial.seconds or 0.0
    return list(points.values())


def best(points: list[PointResult], goal: str) -> PointResult | None:
    scored = [p for p in points if p.mean is not None]
    if not scored:
        return None
    return (min if goal == "min" else max)(scored, key=lambda p: p.mean)


def swept_keys(record: dict) -> list[str]:
    from .spec import RESERVED

    return [k for k in record["spec"] if k not in RESERVED]


def write_csv(path, record: dict, points: list[PointResult]) -> None:
    keys, metric = swept_keys(record), record["metric"]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([*keys, f"{metric}_mean", f"{metric}_std", "n", "steps", "time_s", "states"])
        for p in points:
            writer.writerow([*(p.point.get(k) for k in keys),
                             "" if p.mean is None else repr(p.mean), "" if p.std is None else repr(p.std),
                             p.n, p.mean_steps, round(p.seconds, 3),
                             " ".join(f"{s}={c}" for s, c in sorted(p.states.items()))])


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def geometric(values: list[float]) -> bool:
    """Values spaced by a common ratio (1e-4, 1e-3, 1e-2; 16, 32, 64): drawn on a log axis."""
    values = sorted(set(values))
    if len(values) < 3 or values[0] <= 0:
        return len(values) == 2 and values[0] > 0 and values[1] / values[0] >= 10
    ratios = [b / a for a, b in zip(values, values[1:])]
    return min(ratios) > 1.5 and max(ratios) / min(ratios) < 1.5 or values[-1] / values[0] >= 100


def plot_series(record: dict, trials: list[TrialResult], key: str) -> dict[str, tuple[list, list, list, list]]:
    """For a numeric swept key: one series per combination of the categorical keys' values; at every
    value of `key`, the mean, min and max of the metric over seeds (and over the other numeric keys)."""
    keys = swept_keys(record)
    categorical = [k for k in keys if k != key and not all(is_number(t.point.get(k)) for t in trials)]
    groups: dict[str, dict[float, list[float]]] = {}
    for trial in trials:
        if trial.value is None or not is_number(trial.point.get(key)):
            continue
        label = ", ".join(f"{k.rsplit('.', 1)[-1]}={trial.point.get(k)}" for k in categorical) or "all"
        groups.setdefault(label, {}).setdefault(float(trial.point[key]), []).append(trial.value)
    series = {}
    for label, by_x in groups.items():
        xs = sorted(by_x)
        series[label] = (xs, [statistics.fmean(by_x[x]) for x in xs], [min(by_x[x]) for x in xs],
                         [max(by_x[x]) for x in xs])
    return series


def numeric_keys(record: dict, trials: list[TrialResult]) -> list[str]:
    return [k for k in swept_keys(record)
            if all(is_number(t.point.get(k)) for t in trials) and len({t.point.get(k) for t in trials}) > 1]
