"""Running a study: its sweep (found again through runs/studies/<study>-<size>/study.json, so a second
`rnnlab reproduce` continues the same sweep), then its checks on the sweep's results, saved as
result.json beside the record (what `--list`, the report and the TUI read)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import time

import tomli_w

from .. import store
from ..errors import CorruptRun, SweepNotFound
from ..sweeps import driver, results
from . import checks as checks_mod
from .metrics import observe
from .spec import Study


def fingerprint(study: Study, size: str) -> str:
    """What a size runs: a study file edited in its config, sweep or sets starts a new sweep."""
    return json.dumps({"experiment": study.experiment(size), "set": study.sets(size)}, sort_keys=True)


def result_fingerprint(study: Study, size: str) -> str:
    """What a saved result answers: the size's sweep and sets and the checks read on it (sha256). A result
    whose fingerprint differs from the study file's is stale: its study changed since it ran."""
    checks = [dataclasses.asdict(check) for check in study.checks]
    text = json.dumps({"run": fingerprint(study, size), "checks": checks}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def plan(study: Study, size: str, runs_dir) -> tuple[driver.Plan, str]:
    """(the sweep's plan, what happened: "new", "resumed" or "done"); a new sweep's record is written
    only after every point has resolved (driver.new_sweep)."""
    home = store.StudyDir(runs_dir, study.name, size)
    record = home.read_record()
    if record is not None and record.get("fingerprint") == fingerprint(study, size):
        try:
            found = driver.resume_sweep(runs_dir, str(record.get("sweep")))
        except SweepNotFound:
            found = None  # its sweep was removed: start again
        if found is not None:
            return found, "resumed" if found.todo else "done"
    path = home.write_experiment(tomli_w.dumps(study.experiment(size)))
    new = driver.new_sweep(path, [], study.sets(size), runs_dir)
    home.write_record({"format": 1, "study": study.name, "size": size, "sweep": new.sweep.id,
                       "fingerprint": fingerprint(study, size), "created": time.time(), "seconds": 0.0})
    return new, "new"


def add_seconds(study: Study, size: str, runs_dir, seconds: float) -> None:
    """The wall-clock time the sweep took, summed over the invocations that ran it."""
    home = store.StudyDir(runs_dir, study.name, size)
    record = home.read_record() or {}
    record["seconds"] = float(record.get("seconds") or 0.0) + seconds
    home.write_record(record)


def evaluate(study: Study, size: str, sweep: store.SweepDir, workers: int | None = None) -> dict:
    """Every check on the sweep's results, the verdict, and what the report shows: saved as result.json."""
    record = sweep.read()
    names = sorted({record["metric"], *(c.metric for c in study.checks)})
    observations = observe(sweep, record, names)
    outcomes = []
    for check in study.checks:
        result = checks_mod.evaluate(check, observations)
        outcomes.append({"label": check.label, "kind": check.kind, "metric": check.metric,
                         "expected": check.expected(), "outcome": result.outcome, "measured": result.measured,
                         "per_seed": {str(s): v for s, v in result.per_seed.items()}, "reason": result.reason})
    trials = results.trial_results(sweep, record)
    points = results.point_results(trials)
    home = store.StudyDir(sweep.runs_dir, study.name, size)
    saved = {
        "format": 1, "study": study.name, "number": study.number, "size": size, "claim": study.claim,
        "anchor": study.anchor, "anchor_value": study.anchor_value, "command": study.command(size),
        "sweep": sweep.id, "sweep_state": record.get("state"), "metric": record["metric"], "goal": record["goal"],
        "keys": results.swept_keys(record),
        "points": [{"point": p.point, "mean": p.mean, "std": p.std, "n": p.n, "states": p.states} for p in points],
        "metrics": [m for m in names if m != record["metric"]],  # what the checks read besides the sweep's
        "by_metric": metric_table(observations, [m for m in names if m != record["metric"]]),
        "checks": outcomes, "verdict": checks_mod.verdict([o["outcome"] for o in outcomes]),
        "trial_seconds": sum(t.seconds or 0.0 for t in trials),
        "seconds": float((home.read_record() or {}).get("seconds") or 0.0),
        "machine": machine(workers), "evaluated": time.time(), "fingerprint": result_fingerprint(study, size),
    }
    if study.sample:  # text from the checkpoints: what a metric cannot show
        from .samples import collect

        saved["samples"] = collect(sweep, record, study.sample)
    home.write_result(saved)
    return saved


def metric_table(observations, names: list[str]) -> list[dict]:
    """Per point, each metric's mean and std over the seeds that have it (the table's extra columns)."""
    import statistics

    rows: dict[str, dict] = {}
    for o in observations:
        row = rows.setdefault(json.dumps(o.point, sort_keys=True), {"point": o.point, "values": {}})
        for name in names:
            if o.values.get(name) is not None:
                row["values"].setdefault(name, []).append(o.values[name])
    out = []
    for row in rows.values():
        stats = {name: {"mean": statistics.fmean(v), "std": statistics.stdev(v) if len(v) > 1 else 0.0, "n": len(v)}
                 for name, v in row["values"].items()}
        out.append({"point": row["point"], "metrics": stats})
    return out


def machine(workers: int | None) -> dict:
    import torch

    return {"host": platform.node(), "cpus": os.cpu_count(), "platform": platform.platform(terse=True),
            "python": platform.python_version(), "torch": torch.__version__, "workers": workers,
            "threads": os.environ.get("OMP_NUM_THREADS")}


def saved_result(study: Study, size: str, runs_dir) -> dict | None:
    try:
        return store.StudyDir(runs_dir, study.name, size).read_result()
    except CorruptRun:  # a corrupt result reads as none: --list and the TUI still list the study
        return None
