"""Config errors through the command line: exit 2, one line on stderr, nothing written."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from rnnlab import cli, config

PRESETS = Path(__file__).resolve().parent.parent / "experiments"
TINY = ["model.hidden=8", "model.layers=1", "model.embed=4", "task.seq_len=8", "train.steps=2",
        "train.eval_every=0", "train.eval_batches=1", "train.batch_size=2", "train.checkpoint_every=0",
        "device=cpu"]


# -- through the command line ----------------------------------------------------------------
def run_main(monkeypatch, capsys, *args) -> tuple[int, str, str]:
    """`rnnlab ARGS` through cli.main(), which turns errors into one line and an exit code."""
    monkeypatch.setattr(sys, "argv", ["rnnlab", *map(str, args)])
    try:
        cli.main()
        code = 0  # main() returned: the process would exit 0
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_bad_key_in_a_real_process(tmp_path):
    """The full path: exit code 2, one 'error:' line, no traceback, nothing on disk."""
    runs = tmp_path / "runs"
    env = {**os.environ, "RNNLAB_RUNS_DIR": str(tmp_path / "elsewhere"), "COLUMNS": "40"}
    env.pop("RNNLAB_DEBUG", None)
    result = subprocess.run([sys.executable, "-m", "rnnlab", "run", "--runs-dir", str(runs),
                             "--set", "model.hiden=8"], capture_output=True, text=True, env=env,
                            cwd=tmp_path, timeout=120)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: model.hiden = 8: unknown key; allowed: ")  # not wrapped at 40
    assert "Traceback" not in result.stderr + result.stdout
    assert not runs.exists() or not any(runs.iterdir())
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize("make_args, key", [
    (lambda d: ["run", "--set", "train.optimizer=adm"], "train.optimizer"),
    (lambda d: ["run", "--set", "model.hidden"], "--set"),
    (lambda d: ["run", str(d / "nope.toml")], "config"),
    (lambda d: ["run", str(d / "bad.toml")], "config"),
    (lambda d: ["run", "--set", f"task.corpus={d / 'missing.txt'}"], "task.corpus"),
    (lambda d: ["run", "--set", f"task.corpus={d / 'empty.txt'}"], "task.corpus"),
    (lambda d: ["run", "--set", f"task.corpus={d / 'short.txt'}", *[f"--set={s}" for s in TINY]],
     "task.seq_len"),
    (lambda d: ["config", "--set", "device=gpu"], "device"),
    # the preset's model.cell is unknown to lstm only because the arch changed: the arch is the culprit
    (lambda d: ["run", str(PRESETS / "seq2seq-reverse.toml"), "--set", "model.arch=lstm"], "model.arch"),
], ids=["bad-choice", "malformed-set", "missing-config", "invalid-toml", "missing-corpus", "empty-corpus",
        "seq-len-too-long", "config-command", "arch-unfit-for-preset-task"])
def test_cli_config_errors_are_one_line_exit_2_and_leave_nothing(tmp_path, monkeypatch, capsys, make_args, key):
    (tmp_path / "bad.toml").write_text("[model\n")
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "short.txt").write_text("hello world")
    runs = tmp_path / "runs"
    before = sorted(tmp_path.iterdir())
    args = make_args(tmp_path)
    if args[0] == "run":
        args += ["--runs-dir", runs]
    code, out, err = run_main(monkeypatch, capsys, *args)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith(f"error: {key} = "), err
    assert "Traceback" not in err and out == ""
    assert sorted(tmp_path.iterdir()) == before  # no run directory, not even an empty runs dir


def test_cli_tiny_run_writes_the_resolved_config(tmp_path, monkeypatch, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the quick brown fox jumps over the lazy dog. " * 20, encoding="utf-8")
    overrides = [*TINY, f"task.corpus={corpus}", "name=tiny run"]
    args = ["run", "--quiet", "--runs-dir", tmp_path / "runs"] + [f"--set={s}" for s in overrides]
    code, out, err = run_main(monkeypatch, capsys, *args)
    assert code == 0, err
    (run_path,) = (tmp_path / "runs").iterdir()
    assert "-tiny-run-" in run_path.name
    written = tomllib.loads((run_path / "config.toml").read_text())
    assert written == config.load(None, overrides).to_dict()  # every default filled in


def test_an_arch_that_cannot_do_the_task_is_named_before_the_presets_keys():
    with pytest.raises(config.ConfigError) as info:
        config.load(PRESETS / "seq2seq-reverse.toml", ["model.arch=lstm"])
    assert str(info.value).startswith("model.arch = 'lstm': task 'reverse' maps a sequence to another")
    assert "needs an encoder-decoder; allowed: seq2seq" in str(info.value)


# -- switching the arch or the task of a preset --------------------------------------------------
SWITCHES = [("latch-lstm", "model.arch=gru", "model.forget_bias"),
            ("clockwork-latch", "model.arch=elman", "model.groups"),
            ("delay-recall", "model.arch=elman", "model.max_delay"),
            ("ntm-copy", "model.arch=lstm", "model.controller, model.memory_slots"),
            ("quickstart", "task.name=copy", "task.corpus, task.seq_len")]


@pytest.mark.parametrize("preset, switch, dropped", SWITCHES, ids=[f"{p} {s}" for p, s, _ in SWITCHES])
def test_cli_config_of_a_switched_preset_prints_one_note_and_the_config(monkeypatch, capsys, preset, switch,
                                                                         dropped):
    code, out, err = run_main(monkeypatch, capsys, "config", PRESETS / f"{preset}.toml", "--set", switch)
    assert code == 0, err
    assert err.count("\n") == 1 and err.startswith(f"note: {dropped}") and " dropped: " in err, err
    selector, _, choice = switch.partition("=")
    assert f"came from {preset}.toml and {selector} = {choice!r} has no such key" in err
    key = dropped.split(", ")[0].split(".")[1]
    assert f"\n{key} = " not in out and f'"{choice}"' in out  # the printed config: the new choice, not the key


def test_cli_a_key_set_explicitly_that_the_switched_arch_lacks_is_one_error_line(monkeypatch, capsys):
    code, out, err = run_main(monkeypatch, capsys, "config", PRESETS / "latch-lstm.toml",
                              "--set", "model.arch=gru", "--set", "model.forget_bias=1.0")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: model.forget_bias = 1.0: unknown key; allowed: "), err


def test_cli_short_run_of_latch_lstm_as_gru_writes_only_the_keys_that_apply(tmp_path, monkeypatch, capsys):
    sets = ["model.arch=gru", "train.steps=2", "train.eval_batches=1", "train.batch_size=4", "device=cpu",
            "task.length=8", "probes.every=0"]
    args = ["run", PRESETS / "latch-lstm.toml", "--json", "--runs-dir", tmp_path / "runs"]
    code, out, err = run_main(monkeypatch, capsys, *args, *[f"--set={s}" for s in sets])
    assert code == 0, err
    assert err == ("note: model.forget_bias dropped: it came from latch-lstm.toml and model.arch = 'gru' "
                   "has no such key\n")
    (run_path,) = (tmp_path / "runs").iterdir()
    written = tomllib.loads((run_path / "config.toml").read_text())
    assert written["model"]["arch"] == "gru" and "forget_bias" not in written["model"]
    assert written["model"]["hidden"] == 64 and written["train"]["steps"] == 2  # the rest of the preset holds
    assert written == config.load(run_path / "config.toml").to_dict()
