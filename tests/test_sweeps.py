"""Sweeps: the spec (grid, random, --sweep), the record, a real pool of workers, Ctrl-C and resume,
results from the trials' own events, CSV, and that `runs ls` still sees plain runs."""

from __future__ import annotations

import csv
import json
import math
import socket
import statistics
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rnnlab import store
from rnnlab.cli import app
from rnnlab.errors import ConfigError
from rnnlab.sweeps import results
from rnnlab.sweeps.spec import build_spec, parse_sweep_option

from tiny import interrupt_sweep, sweep_file

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


GRID = '"model.arch" = ["elman", "gru"]\n"model.hidden" = [8, 16]\nseeds = [0, 1]\n'


# -- the spec ------------------------------------------------------------------------------
def test_grid_is_the_cartesian_product_times_the_seeds():
    spec = build_spec({"model.arch": ["elman", "lstm", "gru"], "task.length": [10, 20, 50, 100], "seeds": [0, 1, 2]})
    trials = spec.expand()
    assert len(trials) == 3 * 4 * 3
    assert len({t.key for t in trials}) == len(trials)
    assert trials[0].overrides() == ['model.arch="elman"', "task.length=10", "seed=0"]
    assert spec.metric == "loss" and spec.goal == "min"


def test_random_search_is_reproducible_and_in_range():
    table = {"trials": 6, "train.lr": {"log_uniform": [1e-4, 1e-2]}, "model.hidden": {"choice": [8, 16]},
             "train.clip": {"uniform": [1.0, 2.0]}, "model.layers": {"int_uniform": [1, 3]}, "seeds": [0, 1]}
    first, again = build_spec(table).expand(), build_spec(table).expand()
    assert [t.key for t in first] == [t.key for t in again] and len(first) == 12
    assert all(1e-4 <= t.point["train.lr"] <= 1e-2 and 1.0 <= t.point["train.clip"] <= 2.0 for t in first)
    assert {t.point["model.layers"] for t in first} <= {1, 2, 3}
    other = build_spec({**table, "sweep_seed": 7}).expand()
    assert [t.point for t in other] != [t.point for t in first]


def test_equal_points_are_one_trial():
    assert len(build_spec({"model.hidden": [8, 8, 16]}).expand()) == 2
    assert len(build_spec({"trials": 10, "model.hidden": {"choice": [8, 16]}, "seeds": [0, 1]}).expand()) == 4


def test_sweep_options_parse_like_set_values_and_replace_keys():
    assert parse_sweep_option("model.arch=elman,gru") == ("model.arch", ["elman", "gru"])
    assert parse_sweep_option("train.lr=1e-3, 1e-2") == ("train.lr", [1e-3, 1e-2])
    assert parse_sweep_option('model.arch="lstm"') == ("model.arch", ["lstm"])
    assert parse_sweep_option("trials=5") == ("trials", 5)
    spec = build_spec({"model.hidden": [8, 16], "seeds": [0]}, ["model.hidden=32", "train.lr=1e-3,2e-3"])
    assert spec.keys == {"model.hidden": [32], "train.lr": [1e-3, 2e-3]}


@pytest.mark.parametrize("table, key", [
    ({"model.hidden": []}, "sweep.model.hidden"),
    ({"train.lr": {"log_uniform": [1e-4, 1e-2]}}, "sweep.train.lr"),  # a distribution needs trials
    ({"trials": 3, "train.lr": {"log_uniform": [0, 1]}}, "sweep.train.lr"),
    ({"trials": 3, "train.lr": {"normal": [0, 1]}}, "sweep.train.lr"),
    ({"model.hidden": [8], "seeds": [0, 0]}, "sweep.seeds"),
    ({"model.hidden": [8], "seeds": "all"}, "sweep.seeds"),
    ({"model.hidden": [8], "goal": "up"}, "sweep.goal"),
    ({"model.hidden": [8], "trials": 0}, "sweep.trials"),
    ({"seed": [1, 2]}, "sweep.seed"),
    ({}, "sweep"),
])
def test_bad_specs_are_one_line_errors(table, key):
    with pytest.raises(ConfigError) as caught:
        build_spec(table)
    assert caught.value.key == key and "\n" not in str(caught.value)


def test_geometric_values_get_a_log_axis():
    assert results.geometric([1e-4, 1e-3, 1e-2]) and results.geometric([16, 32, 64, 128])
    assert not results.geometric([10, 20, 30, 40]) and not results.geometric([8, 16]) and results.geometric([1, 100])


def test_a_point_that_does_not_resolve_stops_before_anything_is_written(tmp_path):
    path = sweep_file(tmp_path, GRID)
    result = invoke("sweep", path, "--sweep", "model.hidden=8,0", "--runs-dir", tmp_path / "runs", "--quiet")
    assert result.exit_code == 2
    line = result.output.strip()
    assert "\n" not in line and line.startswith("error: model.hidden = 0") and "model.hidden=0" in line
    assert not (tmp_path / "runs").exists()
    result = invoke("sweep", path, "--backend", "slurm", "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 2 and "unknown backend" in result.output and not (tmp_path / "runs").exists()


def test_a_plain_run_of_a_sweep_file_ignores_the_sweep(tmp_path):
    path = sweep_file(tmp_path, GRID, steps=2, every=0)
    result = invoke("run", path, "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 0, result.output
    assert "[sweep]" in result.output  # the one note line says so
    [run] = store.list_runs(tmp_path / "runs")
    assert run.state == "finished" and run.arch == "lstm"


# -- a real sweep ------------------------------------------------------------------------------
def independent_means(runs_dir: Path, metric: str) -> dict[str, float]:
    """Per point, the mean of the last eval event's metric, read straight from the files."""
    by_point: dict[str, list[float]] = {}
    for path in Path(runs_dir).iterdir():
        if not (path / "status.json").exists():
            continue
        status = json.loads((path / "status.json").read_text())
        events = [json.loads(line) for line in (path / "events.jsonl").read_text().splitlines() if line]
        point = {k: v for k, v in status["point"].items() if k != "seed"}
        value = [e for e in events if e["kind"] == "eval"][-1][metric]
        by_point.setdefault(json.dumps(point, sort_keys=True), []).append(value)
    return {k: statistics.fmean(v) for k, v in by_point.items()}


@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("sweep")
    runs_dir = tmp_path / "runs"
    result = invoke("sweep", sweep_file(tmp_path, GRID), "--workers", 2, "--runs-dir", runs_dir, "--quiet")
    assert result.exit_code == 0, result.output
    [sweep] = store.list_sweeps(runs_dir)
    return tmp_path, runs_dir, sweep


def test_a_2x2x2_sweep_is_eight_ordinary_runs_and_its_table_is_their_events(finished_sweep):
    tmp_path, runs_dir, sweep = finished_sweep
    record = sweep.read()
    assert record["state"] == "finished" and len(record["trials"]) == 8
    runs = store.list_runs(runs_dir)
    assert len(runs) == 8 and {r.state for r in runs} == {"finished"} and not any(r.problem for r in runs)
    assert {t["run"] for t in record["trials"]} == {r.id for r in runs}
    status = store.RunDir(runs_dir / record["trials"][0]["run"]).read_status()
    assert status["sweep"] == sweep.id and status["trial"] == record["trials"][0]["key"]
    assert status["point"] == {**record["trials"][0]["point"], "seed": record["trials"][0]["seed"]}
    points = results.point_results(results.trial_results(sweep, record))
    expected = independent_means(runs_dir, "loss")
    assert len(points) == 4 and all(p.n == 2 for p in points)
    for p in points:
        assert math.isclose(p.mean, expected[json.dumps(p.point, sort_keys=True)], rel_tol=1e-12)


def test_show_prints_the_table_and_csv_round_trips(finished_sweep):
    tmp_path, runs_dir, sweep = finished_sweep
    path = tmp_path / "out.csv"
    result = invoke("sweep", "show", sweep.id[:12], "--csv", path, "--runs-dir", runs_dir)
    assert result.exit_code == 0, result.output
    assert "loss (min)" in result.output and "finished 2" in result.output and "loss by model.hidden" in result.output
    assert "\x1b" not in result.output  # piped: plotext's colour codes parsed, none left raw
    assert max(len(line) for line in result.output.splitlines()) <= 80  # and no plot line wrapped
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    points = results.point_results(results.trial_results(sweep, sweep.read()))
    assert len(rows) == len(points)
    for row, p in zip(rows, points):
        assert row["model.arch"] == p.point["model.arch"] and int(row["model.hidden"]) == p.point["model.hidden"]
        assert float(row["loss_mean"]) == p.mean and float(row["loss_std"]) == p.std and int(row["n"]) == 2
    listing = invoke("sweep", "ls", "--runs-dir", runs_dir)
    assert sweep.id in listing.output and "8/8" in listing.output
    runs = invoke("runs", "ls", "--runs-dir", runs_dir)
    assert runs.exit_code == 0 and "corrupt" not in runs.output and "sweeps" not in runs.output
    assert len([line for line in runs.output.splitlines() if "finished" in line]) == 8


def test_a_trial_is_an_ordinary_run(finished_sweep, tmp_path):
    import shutil

    _, runs_dir, sweep = finished_sweep
    trial = sweep.read()["trials"][0]
    shown = invoke("runs", "show", trial["run"], "--runs-dir", runs_dir)
    assert shown.exit_code == 0 and sweep.id in shown.output
    copy = tmp_path / "runs"
    shutil.copytree(runs_dir / trial["run"], copy / trial["run"])
    resumed = invoke("run", "--resume", trial["run"], "--set", "train.steps=16", "--runs-dir", copy, "--quiet")
    assert resumed.exit_code == 0, resumed.output
    status = store.RunDir(copy / trial["run"]).read_status()
    assert status["step"] == 16 and status["sweep"] == sweep.id and status["trial"] == trial["key"]


def test_ctrl_c_stops_every_trial_and_resume_finishes_each_exactly_once(tmp_path):
    runs_dir = tmp_path / "runs"
    path = sweep_file(tmp_path, GRID, steps=600, every=50)
    sweep, states = interrupt_sweep(path, runs_dir)
    before = {rid: (runs_dir / rid / "events.jsonl").read_bytes() for rid, s in states.items() if s == "finished"}

    resumed = invoke("sweep", "--resume", sweep.id, "--workers", 2, "--runs-dir", runs_dir, "--quiet")
    assert resumed.exit_code == 0, resumed.output
    record = sweep.read()
    assert record["state"] == "finished" and {t["state"] for t in record["trials"]} == {"finished"}
    runs = store.list_runs(runs_dir)
    assert len(runs) == 8 and {r.state for r in runs} == {"finished"}  # one run per trial, none twice
    for run in runs:
        events = store.RunDir(run.path).event_reader().read_new()
        assert sum(e["kind"] == "start" for e in events) == 1
        ends = [e for e in store.RunDir(run.path).read_events() if e["kind"] == "end"]
        assert [e["state"] for e in ends] == ["finished"]
        if run.id in before:  # finished before the stop: never touched again
            assert (run.path / "events.jsonl").read_bytes() == before[run.id]
        elif states.get(run.id) == "stopped":
            assert any(e["kind"] == "resume" for e in events)
    again = invoke("sweep", "--resume", sweep.id, "--runs-dir", runs_dir, "--quiet")
    assert again.exit_code == 0 and len(store.list_runs(runs_dir)) == 8


def test_resume_finds_a_trial_the_record_did_not_get_to_name(finished_sweep, tmp_path):
    """A driver killed between a trial's mkdir and its record write: the run's status.json links it."""
    import shutil

    from rnnlab.sweeps.driver import resume_sweep

    _, runs_dir, sweep = finished_sweep
    copy = tmp_path / "runs"
    shutil.copytree(runs_dir, copy)
    moved = store.SweepDir(copy / "sweeps" / sweep.id)
    record = moved.read()
    record["trials"][3].update(run=None, state="running")
    record["state"] = "running"  # its driver (some pid on this host) is gone
    record["driver"] = {"pid": 2 ** 22 + 7, "pid_start": "0", "host": socket.gethostname()}
    moved.write(record)
    assert moved.read()["state"] == "crashed"
    listing = invoke("sweep", "ls", "--runs-dir", copy)
    assert "crashed" in listing.output
    plan = resume_sweep(copy, sweep.id)
    assert plan.todo == {} and plan.record["trials"][3]["run"] == sweep.read()["trials"][3]["run"]
    assert plan.record["trials"][3]["state"] == "finished"


def test_the_results_table_shows_text_from_disk_literally():
    from rich.console import Console

    from rnnlab.cli_sweep import results_table

    record = {"spec": {"name": ["x"], "seeds": [0], "metric": "loss", "goal": "min"}, "metric": "[b]loss",
              "goal": "min"}
    point = results.PointResult({"name": "a\x1b[2Jb[red]"}, [1.0], [2], 1.0, {"fin\x07ished": 1})
    console = Console(record=True, width=120, force_terminal=False)
    console.print(results_table(record, [point]))
    text = console.export_text()
    assert "a\\x1b[2Jb[red]" in text and "fin\\x07ished" in text and "[b]loss" in text and "\x1b" not in text


# -- switching arch and task inside a sweep (issue 13, item 1) ------------------------------
def test_a_sweep_over_arch_on_a_preset_with_arch_keys_and_over_task_from_a_language_model(tmp_path):
    """latch-lstm.toml sets model.forget_bias (an LSTM key): sweeping model.arch over elman/lstm/gru drops
    it for elman and gru and keeps it for lstm; a charlm file swept to the copy task drops task.corpus."""
    runs = tmp_path / "runs"
    latch = Path(__file__).resolve().parents[1] / "experiments" / "latch-lstm.toml"
    small = ["model.hidden=8", "task.length=6", "train.steps=3", "train.eval_every=3", "train.eval_batches=1",
             "train.checkpoint_every=3", "train.batch_size=4", "probes.every=0", "device=cpu", "threads=1"]
    sets = [item for text in small for item in ("--set", text)]
    result = invoke("sweep", latch, "--sweep", "model.arch=elman,lstm,gru", *sets, "--workers", "2", "--quiet",
                    "--runs-dir", runs)
    assert result.exit_code == 0, result.output
    configs = {}
    for run in store.list_runs(runs):
        text = store.RunDir(run.path).config_path.read_text()
        configs[run.arch] = text
        assert run.state == "finished"
    assert sorted(configs) == ["elman", "gru", "lstm"]
    assert "forget_bias = 3.0" in configs["lstm"]
    assert "forget_bias" not in configs["elman"] and "forget_bias" not in configs["gru"]

    charlm = sweep_file(tmp_path, '"task.name" = ["charlm", "copy"]', steps=3, every=3, name="lm-to-copy")
    runs = tmp_path / "runs2"
    result = invoke("sweep", charlm, "--workers", "2", "--quiet", "--runs-dir", runs)
    assert result.exit_code == 0, result.output
    tasks = {run.task: store.RunDir(run.path).config_path.read_text() for run in store.list_runs(runs)}
    assert sorted(tasks) == ["charlm", "copy"]
    assert "corpus" in tasks["charlm"] and "corpus" not in tasks["copy"] and "seq_len" not in tasks["copy"]
