"""A tiny study file (a charlm sweep of two widths, one seed) and a saved result, for the studies' tests."""

from __future__ import annotations

from pathlib import Path

from rnnlab import store
from tiny import experiment_tables


def study_text(tmp_path: Path, checks: str, head: str = "", extra: str = "") -> str:
    return f"""name = "tiny-study"
device = "cpu"
threads = 1
[study]
number = 1
claim = "A wider tiny net fits the tiny corpus no worse."
watch = "Two widths, one seed: the loss column."
anchor = "none: a test"
{head}
{experiment_tables(tmp_path, steps=40, every=4)}[sweep]
"model.hidden" = [8, 16]
seeds = [0]
[quick]
set = ["train.steps=4"]
[full]
set = ["train.steps=40"]
{extra}
{checks}
"""


PASSING = """[[check]]
kind = "threshold"
metric = "loss"
op = "<"
value = 100.0
"""
FAILING = """[[check]]
kind = "threshold"
where = { "model.hidden" = 16 }
metric = "bpc"
op = "<"
value = 0.001
label = "tiny loss"
"""


def saved_result(runs_dir: Path, name: str, size: str = "quick", verdict: str = "not reproduced") -> dict:
    """A result.json as runner.evaluate writes it (fixed numbers and times, for snapshots)."""
    result = {
        "format": 1, "study": name, "number": 1, "size": size, "claim": "c", "anchor": "a", "anchor_value": "",
        "command": f"rnnlab reproduce {name} --{size}", "sweep": "20261118-140000-tiny-study-eeee",
        "sweep_state": "finished", "metric": "loss", "goal": "min", "keys": ["model.hidden"],
        "points": [{"point": {"model.hidden": 8}, "mean": 3.1, "std": 0.0, "n": 1, "states": {"finished": 1}},
                   {"point": {"model.hidden": 16}, "mean": 2.9, "std": 0.0, "n": 1, "states": {"finished": 1}}],
        "metrics": ["bpc"],
        "by_metric": [{"point": {"model.hidden": 8}, "metrics": {"bpc": {"mean": 4.47, "std": 0.0, "n": 1}}},
                      {"point": {"model.hidden": 16}, "metrics": {"bpc": {"mean": 4.18, "std": 0.0, "n": 1}}}],
        "checks": [{"label": "loss at every point", "kind": "threshold", "metric": "loss", "expected": "each < 100",
                    "outcome": "pass", "measured": 3.1, "per_seed": {"0": 3.1}, "reason": ""},
                   {"label": "tiny loss", "kind": "threshold", "metric": "bpc", "expected": "each < 0.001",
                    "outcome": "fail", "measured": 4.18, "per_seed": {"0": 4.18}, "reason": ""}],
        "verdict": verdict, "trial_seconds": 4.0, "seconds": 9.0,
        "machine": {"host": "fixture-host", "cpus": 2, "platform": "Linux", "python": "3", "torch": "test",
                    "workers": 1, "threads": "1"}, "evaluated": 1_795_000_000.0,
    }
    store.StudyDir(runs_dir, name, size).write_result(result)
    return result
