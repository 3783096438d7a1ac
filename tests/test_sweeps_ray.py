"""The Ray backend on a real local Ray (started small, once for the module): the same trials and numbers
as the local pool, run directories shipped back where the filesystem is not shared, a clean stop
(every running trial `stopped`, checkpointed) and a resume that ships stopped trials out and back."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rnnlab import store
from rnnlab.cli import app
from rnnlab.errors import CorruptRun

from tiny import interrupt_sweep, sweep_file

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install \"rnnlab[ray]\")")

runner = CliRunner()
GRID = '"model.arch" = ["elman", "gru"]\n"model.hidden" = [8, 16]\nseeds = [0, 1]\n'


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def local_ray():
    """One small Ray for the module (the backend joins it and leaves it running); its address for subprocesses."""
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=200_000_000, log_to_driver=False,
             configure_logging=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


def final_metrics(runs_dir: Path) -> dict[str, dict]:
    """trial key -> the last eval event of its run, read straight from the files."""
    out = {}
    for path in Path(runs_dir).iterdir():
        if (path / "status.json").exists():
            status = json.loads((path / "status.json").read_text())
            events = [json.loads(line) for line in (path / "events.jsonl").read_text().splitlines() if line]
            out[status["trial"]] = [e for e in events if e["kind"] == "eval"][-1]
    return out


def run_sweep(tmp_path: Path, runs: str, *extra) -> tuple[Path, store.SweepDir]:
    runs_dir = tmp_path / runs
    result = invoke("sweep", tmp_path / "swp.toml", "--workers", 2, "--runs-dir", runs_dir, "--quiet", *extra)
    assert result.exit_code == 0, result.output
    [sweep] = store.list_sweeps(runs_dir)
    return runs_dir, sweep


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("sweeps")
    sweep_file(tmp_path, GRID)
    return tmp_path, *run_sweep(tmp_path, "local")


def test_ray_gives_the_local_pools_numbers_trial_for_trial(local_ray, local_sweep):
    tmp_path, local_runs, _ = local_sweep
    runs_dir, sweep = run_sweep(tmp_path, "ray", "--backend", "ray")
    record = sweep.read()
    assert record["state"] == "finished" and {t["state"] for t in record["trials"]} == {"finished"}
    assert {t["run"] for t in record["trials"]} == {r.id for r in store.list_runs(runs_dir)}
    expected, got = final_metrics(local_runs), final_metrics(runs_dir)
    assert len(got) == 8 and got.keys() == expected.keys()
    for key in expected:  # same seeds on CPU: the same numbers exactly
        assert {k: v for k, v in got[key].items() if k != "t"} == {k: v for k, v in expected[key].items() if k != "t"}
    assert not list(runs_dir.glob(".rnnlab-probe-*"))  # the shared-filesystem marker is gone again
    table = invoke("sweep", "show", sweep.id, "--no-plot", "--runs-dir", runs_dir)
    local_table = invoke("sweep", "show", store.list_sweeps(local_runs)[0].id, "--no-plot", "--runs-dir", local_runs)
    # all but the title line and the wall-time column (a busy machine makes one trial's 0s another's 1s)
    assert without_time(table.output)[1:] == without_time(local_table.output)[1:]


def without_time(table: str) -> list[list[str]]:
    """The table's rows as cells, its `time` column left out."""
    rows = [[cell.strip() for cell in re.split("[│┃]", line)] for line in table.splitlines()]
    header = next(row for row in rows if "time" in row)
    column = header.index("time")
    return [row[:column] + row[column + 1:] if len(row) == len(header) else row for row in rows]


def test_without_a_shared_filesystem_every_run_directory_comes_back(local_ray, local_sweep, monkeypatch):
    tmp_path, local_runs, _ = local_sweep
    monkeypatch.setenv("RNNLAB_RAY_SHARED_FS", "0")
    runs_dir, sweep = run_sweep(tmp_path, "shipped", "--backend", "ray")
    record = sweep.read()
    assert {t["state"] for t in record["trials"]} == {"finished"}
    runs = store.list_runs(runs_dir)
    assert len(runs) == 8 and {r.state for r in runs} == {"finished"} and not any(r.problem for r in runs)
    assert {t["run"] for t in record["trials"]} == {r.id for r in runs}
    for run in runs:
        assert store.RunDir(run.path).checkpoint("last").is_file()
    expected, got = final_metrics(local_runs), final_metrics(runs_dir)
    assert {k: v["loss"] for k, v in got.items()} == {k: v["loss"] for k, v in expected.items()}
    shown = invoke("runs", "show", runs[0].id, "--runs-dir", runs_dir)
    assert shown.exit_code == 0 and runs[0].id in shown.output and "finished" in shown.output


def test_unpacking_a_shipped_run_refuses_what_is_not_one_plain_new_run(tmp_path, local_sweep):
    import io
    import tarfile

    _, local_runs, _ = local_sweep
    run = store.RunDir(store.list_runs(local_runs)[0].path)
    data = store.pack_run(run)
    with pytest.raises(CorruptRun, match="already exists"):
        store.unpack_run(local_runs, data)
    assert store.unpack_run(tmp_path / "runs", data).read_status()["state"] == "finished"

    def tar_of(*members):
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            for name, kind in members:
                info = tarfile.TarInfo(name)
                info.type = kind
                if kind == tarfile.SYMTYPE:
                    info.linkname = "/etc/passwd"
                tar.addfile(info, io.BytesIO(b"") if kind == tarfile.REGTYPE else None)
        return buffer.getvalue()

    rid = "20261202-000000-x-abcd"
    for bad in (tar_of((f"{rid}/../evil", tarfile.REGTYPE)), tar_of(("/abs/evil", tarfile.REGTYPE)),
                tar_of((f"{rid}/link", tarfile.SYMTYPE)), tar_of(("a/f", tarfile.REGTYPE), ("b/f", tarfile.REGTYPE)),
                tar_of(("not-a-run-id/f", tarfile.REGTYPE))):
        with pytest.raises(CorruptRun):
            store.unpack_run(tmp_path / "other", bad)
    assert not (tmp_path / "other").exists() or not any(p for p in (tmp_path / "other").iterdir())


def test_ctrl_c_stops_every_trial_and_a_shipped_resume_finishes_them(local_ray, tmp_path, monkeypatch):
    """The driver in a subprocess joins the module's Ray by its address (the --address path); SIGINT ->
    every running trial `stopped` with its checkpoint; the resume ships them out and back."""
    runs_dir = tmp_path / "runs"
    path = sweep_file(tmp_path, GRID.replace("[8, 16]", "[8]"), steps=800, every=50)  # 4 trials: time
    sweep, states = interrupt_sweep(path, runs_dir, "--backend", "ray", "--address", local_ray)
    runs = store.list_runs(runs_dir)
    for run in runs:
        if run.state == "stopped":
            events = store.RunDir(run.path).read_events()
            assert events[-1]["kind"] == "end" and events[-1]["error"] is None  # a clean stop, not "interrupted twice"
            assert store.RunDir(run.path).checkpoint("last").is_file()

    monkeypatch.setenv("RNNLAB_RAY_SHARED_FS", "0")
    resumed = invoke("sweep", "--resume", sweep.id, "--backend", "ray", "--runs-dir", runs_dir, "--quiet")
    assert resumed.exit_code == 0, resumed.output
    record = sweep.read()
    assert record["state"] == "finished" and {t["state"] for t in record["trials"]} == {"finished"}
    runs = store.list_runs(runs_dir)
    assert len(runs) == 4 and {r.state for r in runs} == {"finished"}  # one run per trial, none twice
    for run in runs:
        events = store.RunDir(run.path).event_reader().read_new()
        assert sum(e["kind"] == "start" for e in events) == 1
        if states.get(run.id) == "stopped":
            assert any(e["kind"] == "resume" for e in events)
    assert not list(runs_dir.glob(".*"))  # no half-unpacked or replaced copies left


def test_without_ray_the_backend_is_a_one_line_error(tmp_path):
    code = ("import sys; sys.modules['ray'] = None; sys.argv[0] = 'rnnlab'; "  # `import ray` fails as if not installed
            "from rnnlab.cli import main; main()")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", code, "sweep", str(sweep_file(tmp_path, GRID)), "--backend", "ray",
                           "--runs-dir", str(tmp_path / "runs")], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and 'pip install "rnnlab[ray]"' in done.stderr + done.stdout
    assert len((done.stderr + done.stdout).strip().splitlines()) == 1 and not (tmp_path / "runs").exists()


def test_an_address_with_no_cluster_is_a_one_line_error_at_once(tmp_path, monkeypatch):
    monkeypatch.setattr(ray, "is_initialized", lambda: False)  # as in a fresh driver, even beside the module's Ray
    path = sweep_file(tmp_path, GRID)
    result = invoke("sweep", path, "--backend", "ray", "--address", "127.0.0.1:1", "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 2 and "no Ray cluster to join" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "runs").exists()
    result = invoke("sweep", path, "--address", "auto", "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 2 and "--backend ray" in result.output
