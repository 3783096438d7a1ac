"""What the machine does to a run: a full disk, a runs dir that is a file, a device name that is not one,
a corpus without new lines. One clean line each, and nothing half-made left behind."""

from __future__ import annotations

import errno

import pytest
from typer.testing import CliRunner

from rnnlab import store
from rnnlab.cli import app
from rnnlab.errors import ConfigError, describe_os_error
from rnnlab.train.device import resolve_device

from tiny import overrides

runner = CliRunner()


def test_a_full_disk_is_named_with_what_stays_intact():
    message = describe_os_error(OSError(errno.ENOSPC, "No space left on device", "/runs/x/status.json"))
    assert message.startswith("disk full writing /runs/x/status.json: No space left on device")
    assert "resume" in message and "\n" not in message
    assert describe_os_error(PermissionError(errno.EACCES, "Permission denied", "/runs")) == \
        "cannot use /runs: Permission denied"


def test_a_new_run_whose_config_cannot_be_written_leaves_no_directory(tmp_path, monkeypatch):
    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store.runs, "atomic_write", full)  # create_run's own name for it
    with pytest.raises(OSError):
        store.create_run(tmp_path, "full", config_text="x = 1\n")
    assert list(tmp_path.iterdir()) == []  # no empty folder to be listed as a broken run


def test_a_command_on_a_full_disk_says_so_in_one_line(tmp_path, monkeypatch):
    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store.runs, "atomic_write", full)  # create_run's own name for it
    sets = [arg for text in overrides(tmp_path) for arg in ("--set", text)]
    result = runner.invoke(app, ["run", *sets, "--runs-dir", str(tmp_path / "runs"), "--quiet"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: disk full: No space left on device") and result.stderr.count("\n") == 1
    assert list((tmp_path / "runs").iterdir()) == []


def test_a_runs_dir_that_is_a_file_is_bad_input(tmp_path):
    (tmp_path / "file").write_text("x")
    result = runner.invoke(app, ["runs", "ls", "--runs-dir", str(tmp_path / "file")])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: --runs-dir = ") and "not a folder" in result.stderr


@pytest.mark.parametrize("name", ["bogus", "cuda:x", "cuda0", "cpu:zero"])
def test_a_device_name_that_is_not_one_is_a_config_error(name):
    with pytest.raises(ConfigError, match="device = "):
        resolve_device(name)


def test_sample_without_a_prompt_starts_where_the_text_allows(tmp_path):
    # tiny.TEXT has no new line: the default prompt must not be one the vocabulary refuses
    sets = [arg for text in overrides(tmp_path, train__steps=2) for arg in ("--set", text)]
    runs = tmp_path / "runs"
    assert runner.invoke(app, ["run", *sets, "--runs-dir", str(runs), "--quiet"]).exit_code == 0
    (run,) = runs.iterdir()
    result = runner.invoke(app, ["sample", run.name, "--length", "5", "--seed", "0", "--runs-dir", str(runs)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(" ") and len(result.stdout) == 1 + 5 + 1
