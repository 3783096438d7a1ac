"""Corrupt or hostile files in a run directory: one line naming the file, exit 2, the run untouched.

A run directory may come from someone else, be edited by hand, or be cut by a
crash. Resuming or sampling it must never run code from it, never print a
traceback or torch's advice to load unsafely, and never change the run when it
refuses.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import socket

import pytest
import torch
from typer.testing import CliRunner

from rnnlab import store
from rnnlab.cli import app

from tiny import overrides

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One finished tiny run, copied fresh by each test."""
    tmp_path = tmp_path_factory.mktemp("bad")
    sets = [item for text in overrides(tmp_path, train__steps=8) for item in ("--set", text)]
    result = invoke("run", *sets, "--runs-dir", tmp_path / "runs", "-q")
    assert result.exit_code == 0, result.output
    (path,) = (tmp_path / "runs").iterdir()
    return path


@pytest.fixture
def run(finished, tmp_path):
    return store.RunDir(shutil.copytree(finished, tmp_path / "runs" / finished.name))


def snapshot(run: store.RunDir) -> dict:
    return {p.relative_to(run.path): p.read_bytes() for p in sorted(run.path.rglob("*")) if p.is_file()}


def refused(run: store.RunDir, *args, names: str) -> str:
    """Resume (or `args`) must exit 2 with one clean line naming `names`, and leave every byte as it was."""
    before = snapshot(run)
    result = invoke(*(args or ("run", "--resume", run.id, "--set", "train.steps=12")), "--runs-dir", run.path.parent)
    assert result.exit_code == 2, result.output
    message = result.output.strip()
    assert "\n" not in message and message.startswith("error: ") and names in message, message
    assert "error: unexpected" not in message and "Traceback" not in message
    assert "weights_only" not in message and "False" not in message  # never advise unsafe loading
    assert snapshot(run) == before
    return message


class Hostile:
    """Unpickled by a plain pickle.load, this would create the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("content", [b'{"state": "fin\x01ished"}', b"{", b"[]", b"\xff\xfe"],
                         ids=["control-char", "truncated", "list", "not-utf8"])
def test_a_corrupt_status_is_named_and_nothing_is_written(run, content):
    run.status_path.write_bytes(content)
    assert "status.json: unreadable" in refused(run, names=str(run.status_path))


@pytest.mark.parametrize("field, value", [("state", ["finished"]), ("pid", "12"), ("step", "many"),
                                          ("started", {"at": 1}), ("state", "paused")])
def test_status_fields_of_the_wrong_type_are_named(run, field, value):
    status = json.loads(run.status_path.read_text())
    status[field] = value
    run.status_path.write_text(json.dumps(status))
    assert field in refused(run, names="status.json")


def test_a_live_run_is_refused_with_exit_2(run):
    run.update_status(state="running", host=socket.gethostname(), pid=os.getpid(),
                      pid_start=store.process_start_time(os.getpid()))
    assert "still running" in refused(run, names=run.id)


@pytest.mark.parametrize("content, says", [(b"", "empty"), (os.urandom(3000), "not a PyTorch checkpoint"),
                                           (b"PK\x03\x04 cut short", "not a PyTorch checkpoint")],
                         ids=["zero-bytes", "random", "truncated-zip"])
def test_unreadable_checkpoints_are_named(run, content, says):
    run.checkpoint("last").write_bytes(content)
    assert says in refused(run, names="last.pt")
    run.checkpoint("best").write_bytes(content)
    assert says in refused(run, "sample", run.id, "--length", "5", names="best.pt")


@pytest.mark.parametrize("saver", [torch.save, lambda obj, path: pickle.dump(obj, open(path, "wb"))],
                         ids=["torch.save", "pickle"])
def test_a_hostile_pickle_never_runs(run, tmp_path, saver):
    marker = tmp_path / "pwned"
    for which in ("last", "best"):
        saver({"step": Hostile(marker), "model": {}}, run.checkpoint(which))
    message = refused(run, names="last.pt")
    assert "holds objects rnnlab does not load" in message or "not a PyTorch checkpoint" in message
    refused(run, "sample", run.id, "--length", "5", names="best.pt")
    assert not marker.exists()


def edit_checkpoint(run, change) -> None:
    saved = torch.load(run.checkpoint("last"), weights_only=True)
    change(saved)
    torch.save(saved, run.checkpoint("last"))


@pytest.mark.parametrize("change, says", [
    (lambda saved: saved.pop("step"), "lacks step"),
    (lambda saved: saved.update(step="8"), "step is '8' of type str"),
    (lambda saved: saved.update(model=[1, 2]), "model is [1, 2] of type list"),
    (lambda saved: saved["model"].update({"rnn.weight_hh_l0": torch.zeros(3, 3)}), "rnn.weight_hh_l0 is 3x3"),
    (lambda saved: saved["model"].pop("head.bias"), "lacks head.bias"),
    (lambda saved: saved["optimizer"].update(param_groups=[]), "optimizer"),
    (lambda saved: saved["rng"].update(torch=torch.zeros(3)), "RNG"),
], ids=["no-step", "step-str", "model-list", "shape", "missing-tensor", "optimizer", "rng"])
def test_a_checkpoint_that_does_not_fit_is_named(run, change, says):
    edit_checkpoint(run, change)
    assert says in refused(run, names="last.pt")


def test_a_checkpoint_whose_model_differs_from_the_config_is_named_by_sample(run):
    saved = torch.load(run.checkpoint("best"), weights_only=True)
    saved["model"]["head.weight"] = torch.zeros(2, 2)
    torch.save(saved, run.checkpoint("best"))
    assert "head.weight is 2x2" in refused(run, "sample", run.id, "--length", "5", names="best.pt")


def test_a_vocabulary_of_the_wrong_type_is_named_by_sample(run):
    saved = torch.load(run.checkpoint("best"), weights_only=True)
    saved["vocab"] = 7
    torch.save(saved, run.checkpoint("best"))
    assert "vocab is 7 of type int" in refused(run, "sample", run.id, "--length", "5", names="best.pt")
