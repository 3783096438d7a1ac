"""Real trainer processes: Ctrl-C stops cleanly, kill -9 is seen as crashed and resumes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

from rnnlab import store, worker
from rnnlab.train import checkpoint

from tiny import overrides


def start_tiny(tmp_path, **extra):
    runs_dir = tmp_path / "runs"
    runs_dir.mkdir(exist_ok=True)
    before = {p.name for p in runs_dir.iterdir()}
    process = worker.start(runs_dir, None, overrides(tmp_path, **extra), log=tmp_path / "log.txt")
    run = store.find_new_run(runs_dir, before, process)
    assert run is not None, (tmp_path / "log.txt").read_text()
    return process, run


def wait_for_step(run, step, timeout=60.0):
    deadline = time.monotonic() + timeout
    reader = run.event_reader()
    while time.monotonic() < deadline:
        for event in reader.read_new():
            if event["kind"] == "train" and event["step"] >= step:
                return event["step"]
        time.sleep(0.05)
    raise AssertionError(f"step {step} not reached")


def test_sigint_finishes_the_step_checkpoints_and_exits_130(tmp_path):
    process, run = start_tiny(tmp_path, train__steps=100000, train__checkpoint_every=0, train__eval_every=0)
    wait_for_step(run, 3)
    worker.stop(process.pid)
    assert process.wait(timeout=60) == 130
    status = run.read_status()
    assert status["state"] == "stopped"
    saved = checkpoint.load(run.checkpoint("last"))
    assert saved["step"] == status["step"] >= 3
    assert run.read_events()[-1]["kind"] == "end"


def test_kill_9_reads_as_crashed_and_resumes_from_the_last_checkpoint(tmp_path):
    process, run = start_tiny(tmp_path, train__steps=100000, train__checkpoint_every=5, train__eval_every=0)
    wait_for_step(run, 12)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert run.read_status()["state"] == "crashed"
    (summary,) = store.list_runs(tmp_path / "runs")
    assert summary.state == "crashed"
    saved_step = checkpoint.load(run.checkpoint("last"))["step"]
    assert saved_step >= 10 and saved_step % 5 == 0
    resumed = subprocess.run(
        worker.run_command(None, [f"train.steps={saved_step + 4}"], resume=run.id) + ["--runs-dir", str(tmp_path / "runs")],
        capture_output=True, text=True, timeout=120,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert run.read_status()["state"] == "finished"
    steps = [e["step"] for e in run.read_events() if e["kind"] == "train"]
    assert steps == list(range(1, saved_step + 5))  # steps after the checkpoint appear once


def test_a_config_error_in_the_child_leaves_no_run(tmp_path):
    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    process = worker.start(runs_dir, None, ["model.hidden=0"], log=tmp_path / "log.txt")
    assert store.find_new_run(runs_dir, set(), process) is None
    assert process.wait(timeout=60) == 2
    log = (tmp_path / "log.txt").read_text().strip()
    assert log == "error: model.hidden = 0: out of range; allowed: integer >= 1"
    assert list(runs_dir.iterdir()) == []


def test_json_events_on_stdout_match_the_log(tmp_path):
    command = worker.run_command(None, overrides(tmp_path, train__steps=3)) + ["--runs-dir", str(tmp_path / "r")]
    command[command.index("--quiet")] = "--json"
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    (path,) = (tmp_path / "r").iterdir()
    assert events == store.RunDir(path).read_events()
