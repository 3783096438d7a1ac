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


# -- RUN by name -------------------------------------------------------------------------------
def named_run(runs_dir, name, state="finished", now=None):
    run = store.create_run(runs_dir, name, now=now)
    run.write_status({"name": name, "state": state, "step": 1, "total_steps": 1})
    return run


def test_a_run_is_found_by_its_name_and_an_ambiguous_name_lists_the_candidates(tmp_path):
    reverse = named_run(tmp_path, "seq2seq", now=1_700_000_000)
    shown = invoke("runs", "show", "seq2seq", "--runs-dir", tmp_path)
    assert shown.exit_code == 0 and reverse.id in shown.output, shown.output
    spaced = named_run(tmp_path, "my run", now=1_700_000_100)  # id part my-run, config name "my run"
    for ref in ("my run", "my-run"):
        result = invoke("runs", "show", ref, "--runs-dir", tmp_path)
        assert result.exit_code == 0 and spaced.id in result.output, result.output
    again = named_run(tmp_path, "seq2seq", state="stopped", now=1_700_000_200)
    line = one_error_line(invoke("runs", "show", "seq2seq", "--runs-dir", tmp_path))
    assert "'seq2seq' names 2 runs" in line and "give its id" in line
    assert f"{reverse.id} (finished)" in line and f"{again.id} (stopped)" in line
    assert invoke("runs", "show", again.id[:-1], "--runs-dir", tmp_path).exit_code == 0  # a prefix still works


# -- numbers and widths --------------------------------------------------------------------------
def test_numbers_of_any_size_print_sanely():
    from rnnlab.console import fmt_metric, fmt_num

    assert fmt_num(5184705528587072045056.0, 3) == "5.18e+21"  # a perplexity, not 22 digits
    assert fmt_num(0.00001234) == "1.23e-05" and fmt_num(1.5) == "1.5000" and fmt_num(0.0) == "0.0000"
    assert fmt_num(None) == "-" and fmt_num(float("nan")) == "-" and fmt_num(float("inf")) == "inf"
    assert fmt_metric(0.25) == "0.25" and fmt_metric(True) == "True" and fmt_metric(3) == "3"
    assert fmt_metric(10 ** 22) == "1.00e+22"


def test_the_run_summary_prints_a_huge_perplexity_in_e_notation():
    from types import SimpleNamespace

    from rich.console import Console

    from rnnlab.console import summary_table

    outcome = SimpleNamespace(state="finished", step=3, error=None)
    final = {"loss": 50.0, "bpc": 72.1, "ppl": 5184705528587072045056.0}
    console = Console(width=80, color_system=None, file=__import__("io").StringIO())
    console.print(summary_table("r", {"total_steps": 3}, outcome, final, None))
    shown = console.file.getvalue()
    assert "5.18e+21" in shown and "5184705528" not in shown


def test_runs_ls_at_80_columns_keeps_a_long_id_and_the_state_whole(tmp_path, monkeypatch):
    from rich.console import Console

    from rnnlab import cli_runs

    monkeypatch.setattr(cli_runs, "out", Console(width=80, highlight=False))
    short = named_run(tmp_path, "short", now=1_700_000_000)
    long_id = "20261201-000000-" + "x" * 39 + "-abcd"  # 60 characters
    (tmp_path / long_id).mkdir()
    store.RunDir(tmp_path / long_id).write_status({"name": "x", "state": "finished", "arch": "lstm",
                                                   "task": "charlm", "step": 5, "total_steps": 9})
    result = invoke("runs", "ls", "--runs-dir", tmp_path)
    assert result.exit_code == 0, result.output
    assert "…" not in result.output
    lines = result.output.splitlines()
    assert all(len(line) <= 80 for line in lines), result.output
    row = next(line for line in lines if long_id in line)
    assert "finished" in row and "lstm" in row  # whole columns dropped, least needed first
    assert short.id in result.output


def test_runs_ls_narrower_than_an_id_still_prints_id_and_state_whole(tmp_path, monkeypatch):
    from rich.console import Console

    from rnnlab import cli_runs

    monkeypatch.setattr(cli_runs, "out", Console(width=40, highlight=False))
    long_id = "20261201-000000-" + "y" * 39 + "-abcd"  # 60 characters: no 40-column row can hold it
    (tmp_path / long_id).mkdir()
    store.RunDir(tmp_path / long_id).write_status({"name": "y", "state": "stopped", "arch": "gru",
                                                   "task": "charlm", "step": 5, "total_steps": 9})
    result = invoke("runs", "ls", "--runs-dir", tmp_path)
    row = next(line for line in result.output.splitlines() if line.startswith("2026"))
    assert row.split() == [long_id, "stopped"], result.output  # the terminal may wrap it; it is never cut


def test_runs_ls_at_80_columns_shows_every_column_for_ordinary_ids(tmp_path, monkeypatch):
    from rich.console import Console

    from rnnlab import cli_runs

    monkeypatch.setattr(cli_runs, "out", Console(width=80, highlight=False))
    run = named_run(tmp_path, "experiment")  # an ordinary id: 31 characters
    header = invoke("runs", "ls", "--runs-dir", tmp_path).output.splitlines()[0].split()
    assert header == ["id", "arch", "task", "state", "steps", "best", "val", "time"] and run.id
