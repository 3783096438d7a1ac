"""`rnnlab runs export`: two real tiny runs out to CSV (read back with the csv module to the exact values of
their events) and to TensorBoard (read back with tensorboard's own event reader), and its refusals."""

from __future__ import annotations

import csv
import math

import pytest
from typer.testing import CliRunner

from rnnlab import export, store
from rnnlab.cli import app
from rnnlab.train import Trainer, prepare

from tiny import tiny_config

runner = CliRunner()


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("export")
    runs_dir = tmp / "runs"
    made = []
    for arch, hidden in (("lstm", 16), ("gru", 8)):
        cfg = tiny_config(tmp, name=f"tiny-{arch}", model__arch=arch, model__hidden=hidden, train__steps=6,
                          probes__every=3, probes__jacobian_every=6, probes__jacobian_steps=4)
        run = store.create_run(runs_dir, cfg.name)
        store.atomic_write(run.config_path, cfg.to_toml().encode())
        Trainer(prepare(cfg), run).train()
        made.append(run)
    return runs_dir, made


def expected_rows(run: store.RunDir) -> list[tuple]:
    """What the CSV must hold for a run, straight from its events: every number, nested keys dotted."""
    rows = []
    for event in run.read_events():
        def walk(record, prefix=""):
            for key, value in record.items():
                if key in ("kind", "step", "t") and not prefix:
                    continue
                if isinstance(value, dict):
                    walk(value, f"{prefix}{key}.")
                elif isinstance(value, (int, float)):
                    rows.append((run.id, event.get("step"), event.get("t"), event["kind"], prefix + key,
                                 int(value) if isinstance(value, bool) else value))
        walk(event)
    return rows


def parse(value: str):
    if value == "":
        return None
    number = float(value)
    return int(number) if value.lstrip("-").isdigit() else number


def test_csv_holds_every_scalar_exactly_and_a_runs_table_with_config_keys(two_runs, tmp_path):
    runs_dir, runs = two_runs
    target = tmp_path / "scalars.csv"
    result = runner.invoke(app, ["runs", "export", runs[0].id, runs[1].id, "--csv", str(target),
                                 "--runs-dir", str(runs_dir)])
    assert result.exit_code == 0, result.output
    with open(target, newline="") as handle:
        reader = csv.reader(handle)
        assert next(reader) == list(export.SCALAR_COLUMNS)
        got = [(row[0], parse(row[1]), parse(row[2]), row[3], row[4], parse(row[5])) for row in reader]
    want = expected_rows(runs[0]) + expected_rows(runs[1])
    assert got == want  # floats written as repr: read back bit for bit
    kinds = {row[3] for row in got}
    assert {"start", "train", "eval"} <= kinds and any(key == "grad_norm" for *_, key, _ in got)
    assert any(row[3] == "gradnorm" and row[4].startswith("groups.") for row in got)  # nested probe values, dotted

    with open(export.runs_table_path(target), newline="") as handle:
        table = list(csv.DictReader(handle))
    assert [row["run"] for row in table] == [runs[0].id, runs[1].id]
    assert [row["model.arch"] for row in table] == ["lstm", "gru"]
    assert [row["model.hidden"] for row in table] == ["16", "8"]
    assert [row["state"] for row in table] == ["finished", "finished"]
    assert list(table[0]).count("name") == 1  # the config's name is the status's: one column


def test_tensorboard_export_reads_back_with_tensorboards_reader(two_runs, tmp_path):
    pytest.importorskip("tensorboard", reason="the tensorboard package (rnnlab[dev]) reads the event files")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    runs_dir, runs = two_runs
    folder = tmp_path / "tb"
    result = runner.invoke(app, ["runs", "export", "--all", "--tensorboard", str(folder), "--runs-dir",
                                 str(runs_dir)])
    assert result.exit_code == 0, result.output
    for run in runs:
        events = EventAccumulator(str(folder / run.id), size_guidance={"scalars": 0})
        events.Reload()
        train = [(e["step"], e["loss"]) for e in run.read_events() if e["kind"] == "train"]
        read = [(s.step, s.value) for s in events.Scalars("train/loss")]
        assert [step for step, _ in read] == [step for step, _ in train]
        assert all(math.isclose(a, b, rel_tol=1e-6) for (_, a), (_, b) in zip(read, train))  # float32 in TB
        assert "eval/loss" in events.Tags()["scalars"]


def test_export_refusals_are_one_line_and_never_touch_a_run(two_runs, tmp_path):
    runs_dir, runs = two_runs
    events_before = runs[0].events_path.read_bytes()

    def refused(*args) -> str:
        result = runner.invoke(app, ["runs", "export", *args, "--runs-dir", str(runs_dir)])
        assert result.exit_code == 2, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.output
        return lines[0]

    assert "inside the run directory" in refused(runs[0].id, "--csv", str(runs[0].events_path))
    assert "inside the run directory" in refused(runs[0].id, "--tensorboard", str(runs[0].path / "tb"))
    assert "its folder does not exist" in refused(runs[0].id, "--csv", str(tmp_path / "no" / "x.csv"))
    assert "say where to" in refused(runs[0].id)
    assert "not both" in refused(runs[0].id, "--all", "--csv", str(tmp_path / "x.csv"))
    assert "not both" in refused("--csv", str(tmp_path / "x.csv"))
    assert "no run" in refused("nosuchrun", "--csv", str(tmp_path / "x.csv")).lower()
    assert runs[0].events_path.read_bytes() == events_before
