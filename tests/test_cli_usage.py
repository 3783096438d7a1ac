"""Usage errors are one `error:` line and exit 2, like rnnlab's own; `--runs-dir` before the command."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from rnnlab import store
from rnnlab.cli import app

from tiny import overrides

runner = CliRunner()


def invoke(*args, input=None):
    return runner.invoke(app, [str(a) for a in args], input=input)


def one_error_line(result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output  # not Typer's usage + box
    assert lines[0].startswith("error: ") and "╭" not in result.output and "Traceback" not in result.output
    return lines[0]


@pytest.mark.parametrize("args, expected", [
    (["sample", "r", "--length", "-5"], "error: --length = -5: input should be greater than or equal to 1"),
    (["sample", "r", "--length", "0"], "error: --length = 0: input should be greater than or equal to 1"),
    (["sample", "r", "--temperature", "-1"], "error: --temperature = -1: input should be greater than or equal to 0"),
    (["sample", "r", "--top-k", "-1"], "error: --top-k = -1: input should be greater than or equal to 1"),
    (["sample", "r", "--beam", "0"], "error: --beam = 0: input should be greater than or equal to 1"),
    (["translate", "r", "abc", "--beam", "0"], "error: --beam = 0: input should be greater"),
    (["sample", "r", "--length", "many"], "error: --length = many: input should be a valid integer"),
    (["list", "bogus"], "error: no such command 'bogus'; allowed: archs, tasks"),
    (["sample", "r", "--bogus"], "error: no such option: --bogus"),
    (["sample"], "error: missing argument 'RUN'"),
    (["runs", "rm"], "error: missing argument 'RUN...'"),
    (["run", "--set"], "error: option '--set' requires an argument"),
    (["--bogus"], "error: no such option: --bogus"),
])
def test_usage_errors_are_one_line_and_exit_2(args, expected):
    line = one_error_line(invoke(*args))
    assert line.startswith(expected), line


def test_a_usage_error_names_the_help_to_read():
    line = one_error_line(invoke("sample", "r", "--length", "-5"))
    assert line.endswith(" sample --help)"), line


def test_help_is_still_the_full_help():
    result = invoke("sample", "--help")
    assert result.exit_code == 0 and "--temperature" in result.output and "error" not in result.output


def test_the_console_script_says_the_same_in_a_real_process(tmp_path):
    env = {**os.environ, "COLUMNS": "40"}
    result = subprocess.run([sys.executable, "-m", "rnnlab", "sample", "r", "--length", "-5"], capture_output=True,
                            text=True, env=env, cwd=tmp_path, timeout=120)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("error: --length = -5: input should be greater than or equal to 1")
    assert len(result.stderr.splitlines()) == 1, result.stderr


# -- --runs-dir before the command ----------------------------------------------------------
def test_runs_dir_before_the_command(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNLAB_RUNS_DIR", str(tmp_path / "default"))
    runs_dir = tmp_path / "top"
    sets = [arg for text in overrides(tmp_path, train__steps=2) for arg in ("--set", text)]
    result = invoke("--runs-dir", runs_dir, "run", *sets, "-q")
    assert result.exit_code == 0, result.output
    (run_path,) = runs_dir.iterdir()
    assert not (tmp_path / "default").exists()
    listed = invoke("--runs-dir", runs_dir, "runs", "ls")
    assert listed.exit_code == 0 and run_path.name in listed.output
    # a command's own --runs-dir wins, and the top-level one does not leak into the next invocation
    assert "no runs in" in invoke("--runs-dir", runs_dir, "runs", "ls", "--runs-dir", tmp_path / "empty").output
    assert "no runs in" in invoke("runs", "ls").output


# -- runs rm of a live run ---------------------------------------------------------------------
def test_rm_refuses_a_live_run_with_exit_2(tmp_path):
    run = store.create_run(tmp_path, "live")
    run.write_status({"name": "live", "state": "running", "pid": os.getpid(), "host": socket.gethostname()})
    line = one_error_line(invoke("runs", "rm", run.id, "--yes", "--runs-dir", tmp_path))
    assert "is still running" in line and run.path.exists()
