"""Contract 2: the run directory. The only package that reads or writes one (or the runs directory):
files.py (names, states, atomic writes), labels.py (a run's tags and note), status.py (status.json's keys: Status), runs.py (a run's files
and events; creating, finding, listing), sweeps.py (sweep and study records), launches.py (the TUI's
launch files, and waiting for what a started child creates), shipping.py (a run packed for another machine).

    runs/<run-id>/
      config.toml      the resolved config
      status.json      state, pid, host, device, versions, step, times, error (store.status)
      events.jsonl     append-only, one JSON object per line
      checkpoints/     last.pt, best.pt (written by rnnlab.train.checkpoint
                       through `atomic_write`)
      activations/     <name>.pt, from `rnnlab activations` (RunDir.write_activations)
      resume.log       the output of a trainer the TUI's continue key started
      labels.json      the user's tags and note (labels.py: locked read-modify-write; .labels.lock)
    runs/sweeps/<sweep-id>/sweep.json   a sweep's record: its spec and trials
                       (no status.json or config.toml there: never a run dir)
    runs/studies/<study>-<size>/        study.json (its sweep's id), experiment.toml, result.json
    runs/.launch-*.toml, .launch-*.log, .reproduce-*.log, .rnnlab-probe-*   dot-names, never listed

A run id is `YYYYMMDD-HHMMSS-<name>-<4 hex>`, created with an exclusive
mkdir so concurrent starts never share a directory. See docs/run-directory.md.
"""

from __future__ import annotations

from ..worker import pid_alive, process_start_time  # noqa: F401 (the process rules, kept importable here)
from .files import (  # noqa: F401 (the package's interface)
    ACTIVATIONS, CHECKPOINTS, CONFIG, EVENTS, RESUME_LOG, STATES, STATUS, atomic_write, default_runs_dir,
    safe_name,
)
from .labels import LABELS, Labels, check_tag, parse_tag_changes, read_labels, update_labels  # noqa: F401 (the package's interface)
from .status import STATUS_TYPES, Status  # noqa: F401 (the package's interface)
from . import status  # noqa: F401 (store.status.running / progress / ended)
from .runs import (  # noqa: F401 (the package's interface)
    EventReader, EventWriter, RunDir, RunSummary, create_run, find_run, history, is_run_dir, list_runs,
    remove_run, summarize,
)
from .sweeps import (  # noqa: F401 (the package's interface)
    STUDIES, STUDY_FILE, STUDY_RECORD, STUDY_RESULT, SWEEPS, SWEEP_RECORD, StudyDir, SweepDir,
    create_sweep, find_sweep, list_sweeps,
)
from .launches import (  # noqa: F401 (the package's interface)
    entry_names, find_new_run, find_new_sweep, launch_log, reproduce_log, write_launch_preset,
)
from .shipping import (  # noqa: F401 (the package's interface)
    pack_run, remove_probe, unpack_run, write_probe,
)
