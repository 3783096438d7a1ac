"""Sweeps: the spec (grid, random, --sweep), the record, a real pool of workers, Ctrl-C and resume,
results from the trials' own events, CSV, and that `runs ls` still sees plain runs."""

from __future__ import annotations

import csv
import json
import math
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
    record["driver"] = {"pid": 2 ** 22 + 7, "pid_start": None, "host": "elsewhere"}
    moved.write(record)
    plan = resume_sweep(copy, sweep.id)
    assert plan.todo == {} and plan.record["trials"][3]["run"] == sweep.read()["trials"][3]["run"]
    assert plan.record["trials"][3]["state"] == "finished"
