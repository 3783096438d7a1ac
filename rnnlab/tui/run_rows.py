"""The rows of the runs browser, apart from their screen: the columns and how each sorts, a sweep's
trials folded into one row (its state a summary of theirs), the filter and the sort. Plain data from
`store` (RunSummary, SweepDir), no widgets, so the screen (screens/runs.py) only lays them out."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CorruptRun
from ..run_filter import RunFilter
from ..store import RunSummary, SweepDir


def as_number(value) -> float | None:
    # status.json may be hand-edited: a non-number must sort (and show) as missing, not raise.
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


# (column key, header, sort key); the marker column before them is not sortable. The order puts
# what tells runs apart first: at 80 columns the table scrolls sideways after "best val".
COLUMNS = (
    ("id", "id", lambda s: s.id),
    ("arch", "arch", lambda s: s.arch),
    ("task", "task", lambda s: s.task),
    ("state", "state", lambda s: s.state),
    ("steps", "steps", lambda s: as_number(s.step)),
    ("best", "best val", lambda s: as_number(s.best_val)),
    ("duration", "duration", lambda s: as_number(s.duration)),
    ("started", "started", lambda s: as_number(s.started)),
)
SORT_KEYS = {key: sort_key for key, _, sort_key in COLUMNS}
RIGHT = {"steps", "best", "duration"}  # numbers line up on the right


def state_styles(variables: dict[str, str]) -> dict[str, str]:
    """Colours from the app's theme variables, so every theme (and theme switch) stays readable."""
    error = variables["error"]
    return {"running": variables["accent"], "finished": variables["success"], "stopped": variables["warning"],
            "diverged": error, "failed": error, "crashed": f"bold {error}", "corrupt": f"reverse {error}"}


@dataclass
class SweepInfo:
    """What the browser shows of a sweep record (runs/sweeps/<id>/sweep.json), read through store."""

    id: str
    path: Path
    state: str = "corrupt"
    trials: int = 0  # the record's trials, started or not
    metric: str = "?"
    created: float | None = None
    ended: float | None = None
    problem: str | None = None


def read_sweep_info(sweep: SweepDir) -> SweepInfo:
    info = SweepInfo(sweep.id, sweep.path)
    try:
        record = sweep.read()
    except CorruptRun as error:
        info.problem = str(error)
        return info
    info.state, info.trials, info.metric = str(record.get("state")), len(record["trials"]), str(record.get("metric"))
    info.created, info.ended = as_number(record.get("created")), as_number(record.get("ended"))
    return info


@dataclass
class SweepGroup(RunSummary):
    """A sweep's row: a RunSummary whose fields are its trials' (so the same columns sort it)."""

    info: SweepInfo | None = None
    trials: list[RunSummary] = field(default_factory=list)


def row_key(row: RunSummary) -> str:
    # A run id is a directory name, so it never holds "/": a sweep's key cannot be a run's.
    return f"sweeps/{row.id}" if isinstance(row, SweepGroup) else row.id


def states_summary(info: SweepInfo, trials: list[RunSummary]) -> str:
    """`3/8 done, 2 running, 1 failed`: done is finished or diverged (the trial ran to its end)."""
    counts: dict[str, int] = {}
    for trial in trials:
        counts[trial.state] = counts.get(trial.state, 0) + 1
    done = counts.pop("finished", 0) + counts.pop("diverged", 0)
    queued = max(info.trials - len(trials), 0)  # trials whose run directory does not exist yet
    parts = [f"{done}/{max(info.trials, len(trials))} done"] + [f"{c} {s}" for s, c in sorted(counts.items())]
    return ", ".join(parts + [f"{queued} queued"] * bool(queued and info.state == "running"))


def make_group(info: SweepInfo, trials: list[RunSummary]) -> SweepGroup:
    def common(values: set[str]) -> str:
        return values.pop() if len(values) == 1 else "mixed" if values else "-"

    bests = [b for b in (as_number(t.best_val) for t in trials) if b is not None]
    end = info.ended or (time.time() if info.state == "running" else None)
    return SweepGroup(
        id=info.id, path=info.path, arch=common({t.arch for t in trials}), task=common({t.task for t in trials}),
        state=info.problem and "corrupt" or states_summary(info, trials), step=max(info.trials, len(trials)),
        best_val=min(bests) if bests else None, started=info.created,
        duration=end - info.created if end and info.created else None, problem=info.problem,
        info=info, trials=trials)


def matches(summary: RunSummary, query: RunFilter) -> bool:
    """Does the row pass the filter (rnnlab.run_filter)? A sweep's row has no arch or tags of its own: only
    text finds it ("sweep", its id, its state); its trials are matched one by one."""
    if isinstance(summary, SweepGroup):
        if query.fields or query.comparisons or query.problems:
            return False
        haystack = " ".join(("sweep", summary.id, summary.info.state if summary.info else "")).lower()
        return all(word in haystack for word in query.words)
    return query.matches(summary)


def sort_runs(rows: list[RunSummary], column: str, reverse: bool) -> list[RunSummary]:
    """Sort by one column; runs without a value go last in both directions (they are rarely wanted)."""
    key = SORT_KEYS[column]
    present = [row for row in rows if key(row) is not None]
    missing = [row for row in rows if key(row) is None]
    return sorted(present, key=key, reverse=reverse) + missing
