"""The command line through CliRunner: run, runs ls/show/rm, sample, list, config."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from rnnlab import store
from rnnlab.cli import app
from rnnlab.tasks.tokenizers import pretokenize

from tiny import TEXT, overrides

runner = CliRunner()


def invoke(*args, input=None):
    return runner.invoke(app, [str(a) for a in args], input=input)


def sets(tmp_path, **extra):
    out = []
    for text in overrides(tmp_path, **extra):
        out += ["--set", text]
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two finished tiny runs (lstm, gru) in one runs directory."""
    tmp_path = tmp_path_factory.mktemp("cli")
    runs_dir = tmp_path / "runs"
    for arch in ("lstm", "gru"):
        result = invoke("run", *sets(tmp_path, model__arch=arch, name=f"tiny-{arch}"), "--runs-dir", runs_dir, "--quiet")
        assert result.exit_code == 0, result.output
        assert result.output == ""
    return runs_dir


def test_run_prints_a_summary_with_the_baseline(tmp_path):
    result = invoke("run", *sets(tmp_path), "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 0, result.output
    assert "finished" in result.output and "baseline" in result.output and "val bits/char" in result.output
    (run_path,) = (tmp_path / "runs").iterdir()
    assert run_path.name in result.output


def test_run_json_streams_events(tmp_path):
    result = invoke("run", *sets(tmp_path, train__steps=4), "--runs-dir", tmp_path / "runs", "--json")
    assert result.exit_code == 0
    events = [json.loads(line) for line in result.stdout.splitlines()]
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "end" and kinds.count("train") == 4
    (run_path,) = (tmp_path / "runs").iterdir()
    assert events == store.RunDir(run_path).read_events()


def test_runs_ls_lists_and_filters(runs):
    result = invoke("runs", "ls", "--runs-dir", runs)
    assert result.exit_code == 0
    assert "tiny-lstm" in result.output and "tiny-gru" in result.output and "finished" in result.output
    lines = [line for line in result.output.splitlines() if "tiny-" in line]
    assert "tiny-gru" in lines[0]  # newest first
    only_gru = invoke("runs", "ls", "--arch", "gru", "--runs-dir", runs).output
    assert "tiny-gru" in only_gru and "tiny-lstm" not in only_gru
    assert "no runs" in invoke("runs", "ls", "--state", "crashed", "--runs-dir", runs).output
    bad = invoke("runs", "ls", "--state", "sleeping", "--runs-dir", runs)
    assert bad.exit_code == 2 and "allowed: running, finished" in bad.output


def test_runs_show_by_prefix(runs):
    run_id = sorted(p.name for p in runs.iterdir() if "lstm" in p.name)[0]
    result = invoke("runs", "show", run_id[:-2], "--runs-dir", runs)
    assert result.exit_code == 0, result.output
    assert run_id in result.output and "validation at step" in result.output
    assert 'arch = "lstm"' in result.output and "loss (nats/char)" in result.output


def test_unknown_and_ambiguous_runs_exit_2(runs):
    result = invoke("runs", "show", "nope", "--runs-dir", runs)
    assert result.exit_code == 2 and "no run matches 'nope'" in result.output
    result = invoke("sample", "2", "--runs-dir", runs)
    assert result.exit_code == 2 and "matches 2 runs" in result.output


def test_sample_streams_the_requested_length(runs):
    run_id = next(p.name for p in runs.iterdir() if "lstm" in p.name)
    args = ("sample", run_id, "--prompt", "the ", "--length", 50, "--seed", 3, "--runs-dir", runs)
    first, second = invoke(*args), invoke(*args)
    assert first.exit_code == 0, first.output
    assert first.output == second.output
    assert first.output.startswith("the ") and len(first.output) == len("the ") + 50 + 1
    greedy = invoke("sample", run_id, "--prompt", "the ", "--length", 10, "--greedy", "--runs-dir", runs)
    assert greedy.exit_code == 0 and len(greedy.output) == 15
    bad = invoke("sample", run_id, "--prompt", "ZQ", "--runs-dir", runs)
    assert bad.exit_code == 2 and "not in the vocabulary" in bad.output


def test_sample_with_nucleus_and_beam(runs):
    run_id = next(p.name for p in runs.iterdir() if "lstm" in p.name)
    nucleus = invoke("sample", run_id, "--prompt", "the ", "--length", 20, "--top-p", 0.9, "--seed", 1,
                     "--runs-dir", runs)
    assert nucleus.exit_code == 0 and len(nucleus.output) == len("the ") + 20 + 1
    greedy = invoke("sample", run_id, "--prompt", "the ", "--length", 12, "--greedy", "--runs-dir", runs)
    beam_one = invoke("sample", run_id, "--prompt", "the ", "--length", 12, "--beam", 1, "--runs-dir", runs)
    assert beam_one.exit_code == 0 and greedy.output in beam_one.output  # beside the log p line (stderr)
    assert "beam 1: log p = " in beam_one.output
    beam = invoke("sample", run_id, "--prompt", "the ", "--length", 12, "--beam", 4, "--runs-dir", runs)
    assert beam.exit_code == 0 and "beam 4: log p = " in beam.output
    for flag, value in (("--top-p", 1.5), ("--length-penalty", -1)):
        bad = invoke("sample", run_id, "--prompt", "the ", flag, value, "--beam", 2, "--runs-dir", runs)
        assert bad.exit_code == 2 and len(bad.output.strip().splitlines()) == 1, bad.output


def test_resume_refuses_changed_model_and_keeps_the_run(runs):
    run_id = next(p.name for p in runs.iterdir() if "gru" in p.name)
    config_before = (runs / run_id / "config.toml").read_text()
    result = invoke("run", "--resume", run_id, "--set", "model.hidden=99", "--runs-dir", runs)
    assert result.exit_code == 2 and "cannot change when resuming" in result.output
    result = invoke("run", "--resume", run_id, "--runs-dir", runs)
    assert result.exit_code == 2 and "already reached step 12" in result.output
    assert (runs / run_id / "config.toml").read_text() == config_before


def test_resume_a_finished_run_with_more_steps(tmp_path):
    runs_dir = tmp_path / "runs"
    assert invoke("run", *sets(tmp_path, train__steps=6), "--runs-dir", runs_dir, "-q").exit_code == 0
    (run_path,) = runs_dir.iterdir()
    result = invoke("run", "--resume", run_path.name, "--set", "train.steps=9", "--runs-dir", runs_dir, "-q")
    assert result.exit_code == 0, result.output
    run = store.RunDir(run_path)
    steps = [e["step"] for e in run.read_events() if e["kind"] == "train"]
    assert steps == list(range(1, 10))
    assert run.read_status()["state"] == "finished" and "steps = 9" in run.config_path.read_text()


def test_rm_asks_unless_yes(tmp_path):
    runs_dir = tmp_path / "runs"
    assert invoke("run", *sets(tmp_path, train__steps=2), "--runs-dir", runs_dir, "-q").exit_code == 0
    (run_path,) = runs_dir.iterdir()
    kept = invoke("runs", "rm", run_path.name, "--runs-dir", runs_dir, input="n\n")
    assert kept.exit_code == 1 and run_path.exists()
    gone = invoke("runs", "rm", run_path.name, "--yes", "--runs-dir", runs_dir)
    assert gone.exit_code == 0 and not run_path.exists()


def test_runs_dir_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNLAB_RUNS_DIR", str(tmp_path / "elsewhere"))
    assert invoke("run", *sets(tmp_path, train__steps=2), "-q").exit_code == 0
    assert len(list((tmp_path / "elsewhere").iterdir())) == 1


def test_list_and_config():
    archs = invoke("list", "archs")
    assert archs.exit_code == 0 and all(name in archs.output for name in ("elman", "lstm", "gru"))
    assert "charlm" in invoke("list", "tasks").output
    shown = invoke("config", "--set", "model.hidden=77")
    assert shown.exit_code == 0 and "hidden = 77" in shown.output


def test_runs_show_draws_the_probe_plots_and_activations_colour_a_text(tmp_path):
    runs_dir = tmp_path / "runs"
    extra = dict(train__steps=8, probes__every=4, probes__jacobian_every=8, probes__jacobian_steps=4)
    assert invoke("run", *sets(tmp_path, **extra), "--runs-dir", runs_dir, "-q").exit_code == 0
    (run_path,) = runs_dir.iterdir()
    shown = invoke("runs", "show", run_path.name, "--runs-dir", runs_dir)
    assert shown.exit_code == 0, shown.output
    for title in ("gradient norm before clipping", "||dL/dh_t||", "eigenvalues of the recurrent matrices",
                  "spectral radius over training", "log ||J_t ... J_t0||"):
        assert title in shown.output
    result = invoke("activations", run_path.name, "--text", "the quick fox", "--unit", 3, "--runs-dir", runs_dir)
    assert result.exit_code == 0, result.output
    assert "unit 3" in result.output and "the quick fox" in result.output
    assert (run_path / "activations" / "best-step8.pt").is_file()
    event = store.RunDir(run_path).read_events()[-1]
    assert event["kind"] == "activations" and event["file"] == "activations/best-step8.pt"
    bad = invoke("activations", run_path.name, "--unit", 999, "--runs-dir", runs_dir)
    assert bad.exit_code == 2 and "--unit = 999: no such unit; allowed: 0 .. 15" in bad.output


def test_activations_of_a_word_model_read_the_validation_words_not_unk(tmp_path):
    runs_dir = tmp_path / "runs"
    extra = dict(train__steps=4, task__tokenizer="word", task__vocab_size=6)  # most words become <unk>
    assert invoke("run", *sets(tmp_path, **extra), "--runs-dir", runs_dir, "-q").exit_code == 0
    (run_path,) = runs_dir.iterdir()
    result = invoke("activations", run_path.name, "--length", 12, "--runs-dir", runs_dir)
    assert result.exit_code == 0, result.output
    record = torch.load(next((run_path / "activations").iterdir()), weights_only=True)
    val_text = TEXT[int(len(TEXT) * 0.9):]
    assert "".join(record["tokens"]) == "".join(pretokenize(val_text)[:12]) and "<unk>" not in result.output
