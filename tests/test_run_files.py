"""The files of a run directory and the runs dir beyond config/status/events (store.status, store.launches,
RunDir.write_activations), and the process rules they lean on (rnnlab.worker)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from rnnlab import store, worker
from rnnlab.train import Trainer, prepare

from tiny import tiny_config

# status.json's keys, in the order main wrote them before the Status type (a fresh run, to its end)
MAIN_KEYS = ["id", "name", "arch", "task", "state", "pid", "pid_start", "host", "device", "total_steps",
             "versions", "params", "error", "ended", "started", "step", "best_val", "last_val", "elapsed",
             "updated", "clipped_share"]


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


class Exited:
    """A child process (as find_new_run sees one) that has already exited."""

    def poll(self):
        return 2


# -- status.json -------------------------------------------------------------------------------------------
def test_a_finished_run_writes_the_keys_main_wrote_in_the_same_order(tmp_path):
    cfg = tiny_config(tmp_path, train__steps=2, train__eval_every=0, train__checkpoint_every=0, probes__every=0)
    run = store.create_run(tmp_path / "runs", cfg.name, config_text=cfg.to_toml())
    Trainer(prepare(cfg), run).train()
    status = json.loads(run.status_path.read_text())
    assert list(status) == MAIN_KEYS
    assert set(status) <= set(store.Status.__annotations__)
    assert (status["pid"], status["host"]) == (os.getpid(), socket.gethostname())
    assert status["pid_start"] == store.process_start_time(os.getpid())
    assert status["state"] == "finished" and status["step"] == 2 and status["ended"] >= status["started"]


def test_a_trials_fields_come_before_started_and_a_resume_keeps_started(tmp_path):
    trial = {"sweep": "20261202-000000-s-abcd", "trial": '{"point":{},"seed":0}', "point": {"seed": 0}}
    first = store.status.running(run_id="r", name="n", arch="lstm", task="copy", device="cpu", total_steps=9,
                                 params=7, torch_version="2.x", trial=trial)
    assert list(first)[-3:] == ["sweep", "trial", "point"] and first["error"] is None
    assert first["versions"]["torch"] == "2.x" and first["state"] == "running"
    run = store.create_run(tmp_path, "n")
    run.write_status({**first, "started": 5.0})
    run.update_status(**store.status.progress(step=3, best_val=None, last_val=1.5, elapsed=2.00049))
    run.update_status(**store.status.running(run_id="r", name="n", arch="lstm", task="copy", device="cpu",
                                             total_steps=20, params=7, torch_version="2.x"))
    status = run.read_status_raw()
    assert status["started"] == 5.0 and status["sweep"] == trial["sweep"]  # a resume never rewrites them
    assert status["total_steps"] == 20 and status["elapsed"] == 2.0 and status["last_val"] == 1.5
    ended = store.status.ended(state="stopped", error=None, clipped_share=0.25)
    assert set(ended) == {"state", "error", "ended", "clipped_share"}


# -- the process rules the store leans on -----------------------------------------------------------------------
def test_exit_codes_have_one_table():
    assert worker.EXIT_CODES == {"finished": 0, "stopped": 130, "diverged": 3, "failed": 1}
    assert (worker.FINISHED, worker.STOPPED) == (0, 130)
    assert [code for code in (0, 1, 2, 3, 130, None) if worker.ended_cleanly(code)] == [0, 130]


def test_is_gone_only_for_a_dead_process_on_this_host():
    me = worker.identity()
    assert me == {"pid": os.getpid(), "pid_start": store.process_start_time(os.getpid()),
                  "host": socket.gethostname()}
    assert not worker.is_gone(me)
    assert worker.is_gone({**me, "pid": dead_pid(), "pid_start": None})
    assert worker.is_gone({**me, "pid": None})
    assert not worker.is_gone({**me, "pid": dead_pid(), "host": "elsewhere"})  # its pid means nothing here
    assert worker.on_this_host(socket.gethostname()) and not worker.on_this_host(None)


def test_a_sweep_whose_driver_is_gone_reads_as_crashed(tmp_path):
    sweep = store.create_sweep(tmp_path, "s", {"trials": [], "state": "running"})
    sweep.write({"trials": [], "state": "running", "driver": {**worker.identity(), "pid": dead_pid()}})
    assert sweep.read()["state"] == "crashed"
    sweep.write({"trials": [], "state": "running", "driver": worker.identity()})
    assert sweep.read()["state"] == "running"


# -- files in a run directory -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name, file", [("best-step8", "best-step8.pt"), ("Last Step 3", "last-step-3.pt"),
                                        ("../../escape", "escape.pt"), ("", "run.pt")])
def test_activations_are_named_path_safe_inside_the_run(tmp_path, name, file):
    run = store.create_run(tmp_path, "a")
    path = run.write_activations(name, b"data")
    assert path == run.path / store.ACTIVATIONS / file and path.read_bytes() == b"data"
    assert [p.name for p in (run.path / store.ACTIVATIONS).iterdir()] == [file]  # no temp file left


def test_the_resume_log_is_in_the_run_directory(tmp_path):
    run = store.create_run(tmp_path, "a")
    assert run.resume_log_path == run.path / "resume.log"


# -- files in the runs dir --------------------------------------------------------------------------------------
def test_launch_files_are_dot_names_in_the_runs_dir_and_never_runs(tmp_path):
    runs = tmp_path / "runs"  # not there yet: each helper makes it
    preset = store.write_launch_preset(runs, 'name = "x"\n')
    assert preset.parent == runs and preset.name.startswith(".launch-") and preset.suffix == ".toml"
    assert preset.read_text() == 'name = "x"\n'
    run_log, sweep_log = store.launch_log(runs), store.launch_log(runs, sweep=True)
    assert run_log.name.startswith(".launch-") and run_log.suffix == ".log"
    assert sweep_log.name.endswith("-sweep.log") and sweep_log.parent == runs
    assert store.reproduce_log(runs, "vanishing", "quick") == runs / ".reproduce-vanishing-quick.log"
    for path in (run_log, sweep_log):
        path.write_text("output\n")  # what the child writes
    assert store.list_runs(runs) == [] and store.list_sweeps(runs) == []


def test_find_new_run_waits_for_a_status_and_tolerates_a_missing_runs_dir(tmp_path):
    runs = tmp_path / "runs"
    assert store.entry_names(runs) == set()
    assert store.find_new_run(runs, set(), Exited(), timeout=1) is None
    old = store.create_run(runs, "old")
    old.write_status({"state": "finished"})
    before = store.entry_names(runs)
    new = store.create_run(runs, "new")
    assert store.find_new_run(runs, before, Exited(), timeout=1) is None  # no status.json yet
    new.write_status({"state": "running"})
    assert store.find_new_run(runs, before, Exited(), timeout=1).path == new.path
    assert store.find_new_sweep(runs, set(), Exited(), timeout=1) is None
    sweep = store.create_sweep(runs, "s", {"trials": []})
    assert store.find_new_sweep(runs, set(), Exited(), timeout=1).id == sweep.id
