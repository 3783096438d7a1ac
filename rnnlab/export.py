"""Runs out to other tools: every scalar of every event as CSV (long form), the runs with their config keys as
a second CSV, and TensorBoard event files through torch's SummaryWriter.

A scalar is a number in an event (a bool as 0/1), nested dicts flattened to dotted keys
(`by_length.20.error_rate`); lists (spectra, attention maps, text) are not scalars and stay in events.jsonl.
The long form (run, step, t, kind, key, value) is what TensorBoard's users asked for (its issue #1232): one
`pandas.read_csv` and a pivot away from any table.
"""

from __future__ import annotations

import csv
import math
import tomllib
from collections.abc import Iterator
from pathlib import Path

from .store import RunDir

SCALAR_COLUMNS = ("run", "step", "t", "kind", "key", "value")
RUN_COLUMNS = ("run", "name", "arch", "task", "state", "step", "total_steps", "best_val", "started", "elapsed")
PLACE_KEYS = {"kind", "step", "t"}  # where an event sits, not what it measured: columns of their own


def flat_scalars(record: dict, prefix: str = "") -> Iterator[tuple[str, float]]:
    """(dotted key, value) for each number in a nested dict, in its order."""
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, bool):
            yield name, int(value)
        elif isinstance(value, (int, float)):
            yield name, value
        elif isinstance(value, dict):
            yield from flat_scalars(value, name + ".")


def event_scalars(run: RunDir) -> Iterator[tuple]:
    """One row per scalar of every event of the run (its history as resumes left it), in file order."""
    for event in run.read_events():
        kind, step, t = event.get("kind"), event.get("step"), event.get("t")
        for key, value in flat_scalars({k: v for k, v in event.items() if k not in PLACE_KEYS}):
            yield run.id, step, t, kind, key, value


def flat_config(run: RunDir) -> dict:
    """The run's config.toml as dotted keys (raw, as saved: an old run's keys stay as they were)."""
    try:
        raw = tomllib.loads(run.config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}

    def walk(table: dict, prefix: str = "") -> Iterator[tuple[str, object]]:
        for key, value in table.items():
            if isinstance(value, dict):
                yield from walk(value, f"{prefix}{key}.")
            else:
                yield f"{prefix}{key}", value if not isinstance(value, list) else " ".join(map(str, value))
    return dict(walk(raw))


def write_csv(runs: list[RunDir], path: Path) -> tuple[Path, int]:
    """The scalars to `path`, the runs table beside it (`NAME.runs.csv`); (the runs table's path, rows)."""
    rows = 0
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(SCALAR_COLUMNS)
        for run in runs:
            for row in event_scalars(run):
                writer.writerow(row)
                rows += 1
    configs = {run.id: flat_config(run) for run in runs}
    # a config key the status already names (the run's name) is one column, not two of the same name
    config_keys = sorted({key for config in configs.values() for key in config} - set(RUN_COLUMNS))
    runs_path = runs_table_path(path)
    with open(runs_path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([*RUN_COLUMNS, *config_keys])
        for run in runs:
            status = run.read_status()
            writer.writerow([run.id, *(status.get(key) for key in RUN_COLUMNS[1:]),
                             *(configs[run.id].get(key) for key in config_keys)])
    return runs_path, rows


def runs_table_path(path: Path) -> Path:
    return path.with_name(f"{path.stem}.runs{path.suffix or '.csv'}")


def write_tensorboard(runs: list[RunDir], folder: Path) -> int:
    """One SummaryWriter per run, in folder/<run id>: each scalar as `kind/key` at its step (wall time: the run's
    start plus the event's t). Returns the scalars written."""
    from torch.utils.tensorboard import SummaryWriter  # needs the tensorboard package: the caller says so

    written = 0
    for run in runs:
        started = run.read_status().get("started")
        start = started if isinstance(started, (int, float)) else None
        with SummaryWriter(log_dir=str(Path(folder) / run.id)) as writer:
            for _, step, t, kind, key, value in event_scalars(run):
                if not isinstance(step, int) or not math.isfinite(value):
                    continue  # TensorBoard plots a step axis, and drops non-finite values anyway
                walltime = start + t if start is not None and isinstance(t, (int, float)) else None
                writer.add_scalar(f"{kind}/{key}", value, global_step=step, walltime=walltime)
                written += 1
    return written
