"""Everything read from a run directory reaches the terminal as literal text: no escape sequence is
obeyed, no `[markup]` is parsed (issue 12, item 2)."""

from __future__ import annotations

import io
import json
import shutil

import pytest
import torch
from rich.console import Console
from typer.testing import CliRunner

from rnnlab import cli_runs, store
from rnnlab.cli import app
from rnnlab.console import attention_heatmap, colour_by_values

from tiny import overrides

runner = CliRunner()
EVIL = "evil\x1b[2J\x1b]0;pwned\x07"  # clear the screen, retitle the window
RUN_ID = f"20261201-000000-{EVIL}-abcd"
CORPUS = "ab\x1b[2J\tcd\n" * 300  # a model of it writes ESC, tabs and newlines


def invoke(*args, input=None):
    return runner.invoke(app, [str(a) for a in args], input=input)


def assert_literal(output: str) -> None:
    assert "\x1b" not in output and "\x07" not in output, repr(output)  # no raw control byte
    assert "\\x1b" in output  # shown, escaped


@pytest.fixture(scope="module")
def evil(tmp_path_factory):
    """A real trained run in a directory whose name holds escape sequences, with hostile status fields."""
    tmp_path = tmp_path_factory.mktemp("literal")
    corpus = tmp_path / "evil.txt"
    corpus.write_text(CORPUS, encoding="utf-8")
    runs = tmp_path / "runs"
    sets = [arg for text in overrides(tmp_path, **{"task.corpus": corpus}) for arg in ("--set", text)]
    result = invoke("run", *sets, "--runs-dir", runs, "-q")
    assert result.exit_code == 0, result.output
    (trained,) = runs.iterdir()
    path = trained.rename(runs / RUN_ID)
    run = store.RunDir(path)
    status = run.read_status_raw()
    status.update(arch="[blink]lstm", task="charlm\x1b[5m", state="failed", error="boom \x1b[2J [red]no[/red]",
                  best_val=5184705528587072045056.0)
    run.write_status(status)
    with open(run.events_path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"kind": "eval", "step": 12, "t": 1.0, "loss": 1.0, "[blink]acc\x1b[5m": 0.5}) + "\n")
    return runs


def wide(monkeypatch, width=200):
    """`runs ...` print on a console this wide (CliRunner's stdout is no terminal: 80 columns by default)."""
    monkeypatch.setattr(cli_runs, "out", Console(width=width, highlight=False))


def test_runs_ls_shows_ids_and_fields_literally(evil, monkeypatch):
    wide(monkeypatch)
    result = invoke("runs", "ls", "--runs-dir", evil)
    assert result.exit_code == 0, result.output
    assert_literal(result.output)
    assert "evil\\x1b[2J\\x1b]0;pwned\\x07" in result.output and "[blink]lstm" in result.output
    assert "charlm\\x1b[5m" in result.output and "5.18e+21" in result.output


def test_runs_show_status_config_and_validation_literally(evil, tmp_path):
    runs = tmp_path / "runs"
    shutil.copytree(evil, runs)
    with open(runs / RUN_ID / "config.toml", "a", encoding="utf-8") as handle:
        handle.write("# \x1b]0;pwned\x07\n")  # not even valid TOML: shown as it is all the same
    result = invoke("runs", "show", "20261201-000000-evil", "--runs-dir", runs)
    assert result.exit_code == 0, result.output
    assert_literal(result.output)
    assert "[blink]lstm" in result.output  # the status table's arch, not a blinking "lstm"
    assert "boom \\x1b[2J [red]no[/red]" in result.output  # the error
    assert "# \\x1b]0;pwned\\x07" in result.output  # the config dump
    assert "[blink]acc\\x1b[5m 0.5" in result.output  # the validation line


def test_messages_that_name_runs_show_them_literally(evil, tmp_path):
    twin = evil.parent / "twin"
    shutil.copytree(evil, twin)
    second = twin / RUN_ID.replace("abcd", "abce")
    shutil.copytree(twin / RUN_ID, second)
    ambiguous = invoke("runs", "show", "20261201", "--runs-dir", twin)
    assert ambiguous.exit_code == 2 and "matches 2 runs" in ambiguous.output
    assert_literal(ambiguous.output)
    assert "(failed)" in ambiguous.output  # candidates with their state
    missing = invoke("runs", "show", "zz\x1b[2J", "--runs-dir", twin)
    assert missing.exit_code == 2 and "no run matches" in missing.output
    assert_literal(missing.output)
    asked = invoke("runs", "rm", second.name, "--runs-dir", twin, input="n\n")
    assert asked.exit_code == 1 and second.exists()
    assert_literal(asked.output)
    assert "delete 1 run(s): 20261201-000000-evil\\x1b[2J" in asked.output


def test_sample_escapes_control_characters_but_keeps_lines_and_tabs(evil):
    result = invoke("sample", RUN_ID, "--prompt", "ab\x1b", "--length", 60, "--seed", 1, "--runs-dir", evil)
    assert result.exit_code == 0, result.output
    assert_literal(result.output)
    assert result.output.startswith("ab\\x1b")
    assert "\t" in result.output and "\n" in result.output[:-1]  # the text's own layout survives
    beam = invoke("sample", RUN_ID, "--prompt", "ab\x1b", "--length", 8, "--beam", 2, "--runs-dir", evil)
    assert beam.exit_code == 0, beam.output
    assert_literal(beam.output)


def test_activations_show_the_text_and_the_saved_path_literally(evil):
    result = invoke("activations", RUN_ID, "--text", "ab\x1b[2J\tcd", "--runs-dir", evil)
    assert result.exit_code == 0, result.output
    assert_literal(result.output)
    assert "ab\\x1b[2J" in result.output and "evil\\x1b[2J" in result.output  # the text; the path


def render(renderable) -> str:
    console = Console(file=io.StringIO(), width=80, color_system=None)
    console.print(renderable)
    return console.file.getvalue()


def test_attention_heatmap_tokens_are_literal():
    shown = render(attention_heatmap(["\x1b[2J", "[blink]a"], ["[b]x\x07"], [[0.5, 0.5], [0.2, 0.8]]))
    assert_literal(shown)
    assert "[blink]a" in shown and "[b]x\\x07" in shown


def test_colour_by_values_keeps_newlines_and_escapes_the_rest():
    text = colour_by_values(["a\x1b[2J", "\n", "[blink]b"], [0.1, -0.2, 0.3])
    assert "\x1b" not in text.plain and "a\\x1b[2J" in text.plain and "↵\n" in text.plain
    assert "[blink]b" in render(text)


def test_translate_shows_the_checkpoints_tokens_literally(tmp_path):
    """A seq2seq checkpoint's vocabularies are read from disk too: output and heatmap show them as text."""
    runs = tmp_path / "runs"
    sets = ["device=cpu", "task.name=reverse", "task.symbols=3", "task.min_len=2", "task.max_len=4",
            "model.arch=seq2seq", "model.cell=gru", "model.hidden=8", "model.layers=1", "model.embed=4",
            "train.steps=2", "train.batch_size=4", "train.eval_every=0", "train.eval_batches=1",
            "train.checkpoint_every=0", "probes.every=0"]
    result = invoke("run", *[arg for text in sets for arg in ("--set", text)], "--runs-dir", runs, "-q")
    assert result.exit_code == 0, result.output
    (run_path,) = runs.iterdir()
    for which in ("best", "last"):
        path = run_path / "checkpoints" / f"{which}.pt"
        if path.is_file():
            saved = torch.load(path, weights_only=False)
            saved["source_vocab"][1] = "\x1b"
            saved["target_vocab"][2:] = [f"[blink]\x1b[{i}m" for i in range(2, len(saved["target_vocab"]))]
            targets = len(saved["target_vocab"])
            (bias,) = [k for k, v in saved["model"].items() if k.endswith("bias") and v.shape == (targets,)]
            saved["model"][bias][:] = -1e3
            saved["model"][bias][2] = 1e3  # the decoder always says token 2, never <eos>: an output to show
            torch.save(saved, path)
    shown = invoke("translate", run_path.name, "\x1b\x1b", "--max-len", 4, "--runs-dir", runs)
    assert shown.exit_code == 0, shown.output
    assert_literal(shown.output)  # the source tokens head the heatmap's columns
    assert "[blink]\\x1b[" in shown.output  # the output tokens: the decoded line and the heatmap's rows
