"""Contract 2: the run directory. The only package that reads or writes one:
files.py (names, states, atomic writes, pids), runs.py (a run's files and events; creating, finding,
listing), sweeps.py (sweep and study records), shipping.py (a run packed for another machine).

    runs/<run-id>/
      config.toml      the resolved config
      status.json      state, pid, host, device, versions, step, times, error
      events.jsonl     append-only, one JSON object per line
      checkpoints/     last.pt, best.pt (written by rnnlab.train.checkpoint
                       through `atomic_write`)
    runs/sweeps/<sweep-id>/sweep.json   a sweep's record: its spec and trials
                       (no status.json or config.toml there: never a run dir)
    runs/studies/<study>-<size>/        study.json (its sweep's id), experiment.toml, result.json

A run id is `YYYYMMDD-HHMMSS-<name>-<4 hex>`, created with an exclusive
mkdir so concurrent starts never share a directory. See docs/run-directory.md.
"""

from __future__ import annotations

from .files import (  # noqa: F401 (the package's interface)
    CHECKPOINTS, CONFIG, EVENTS, STATES, STATUS, STATUS_TYPES, atomic_write, default_runs_dir,
    pid_alive, process_start_time, safe_name,
)
from .runs import (  # noqa: F401 (the package's interface)
    EventReader, EventWriter, RunDir, RunSummary, create_run, find_run, history, is_run_dir, list_runs,
    remove_run, summarize,
)
from .sweeps import (  # noqa: F401 (the package's interface)
    STUDIES, STUDY_FILE, STUDY_RECORD, STUDY_RESULT, SWEEPS, SWEEP_RECORD, StudyDir, SweepDir,
    create_sweep, find_sweep, list_sweeps,
)
from .shipping import (  # noqa: F401 (the package's interface)
    pack_run, remove_probe, unpack_run, write_probe,
)
