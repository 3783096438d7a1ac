"""Attention of seq2seq runs: the probe event, `rnnlab translate`, beam search, and the TUI's heatmap screen."""

from __future__ import annotations

import asyncio
import io

import pytest
import torch
from rich.console import Console
from typer.testing import CliRunner

from rnnlab import store
from rnnlab.cli import app as cli_app
from rnnlab.decoding import Seq2SeqStepper, beam_search, sequence_logprob, translate
from rnnlab.train import Trainer, prepare
from rnnlab.translating import load_seq2seq
from rnnlab.tui.app import make_app
from rnnlab.tui.screens.attention import AttentionScreen

from test_seq2seq import seq2seq_config
from test_tui_launch_sample import text_of
from tui_fixtures import wait_for


def rendered(renderable) -> str:
    console = Console(width=100, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


@pytest.fixture(scope="module")
def seq2seq_run(tmp_path_factory):
    runs = tmp_path_factory.mktemp("attention") / "runs"
    cfg = seq2seq_config(**{"train.steps": 40, "train.lr": 0.01, "probes.every": 20, "train.eval_every": 20})
    prepared = prepare(cfg)
    run = store.create_run(runs, "s2s")
    store.atomic_write(run.config_path, cfg.to_toml().encode())
    assert Trainer(prepared, run).train().state == "finished"
    return run


def test_the_probe_writes_the_decoded_example_with_its_attention(seq2seq_run):
    events = [e for e in seq2seq_run.read_events() if e["kind"] == "attention"]
    assert [e["step"] for e in events] == [20, 40]
    for event in events:
        weights = torch.tensor(event["weights"])  # (U + 1, S): a row per output token and one for the EOS
        assert weights.shape == (len(event["output"]) + 1, len(event["source"]))
        torch.testing.assert_close(weights.sum(1), torch.ones(len(weights)), atol=1e-3, rtol=0)
        assert event["truth"] == event["source"][::-1]  # the reversal task's answer


def test_greedy_translation_is_beam_one_and_wider_beams_are_never_less_likely(seq2seq_run):
    loaded = load_seq2seq(seq2seq_run)
    for text in ("abc", "dacb", "ebbad"):
        source = loaded.vocab.encode(text)
        greedy = translate(loaded.model, loaded.vocab, source, 12)
        one = beam_search(Seq2SeqStepper(loaded.model, source), 1, 12, eos=1)
        assert loaded.vocab.output_tokens(one.tokens) == greedy.output
        stepper = Seq2SeqStepper(loaded.model, source)
        assert one.logprob == pytest.approx(sequence_logprob(stepper, one.tokens), abs=1e-4)
        wide = beam_search(Seq2SeqStepper(loaded.model, source), 5, 12, eos=1)
        assert wide.logprob >= one.logprob - 1e-6


def test_translate_command(seq2seq_run):
    runner = CliRunner()
    runs_dir = str(seq2seq_run.path.parent)
    result = runner.invoke(cli_app, ["translate", seq2seq_run.id, "abcd", "--runs-dir", runs_dir])
    assert result.exit_code == 0, result.output
    first, *table = result.output.splitlines()
    loaded = load_seq2seq(seq2seq_run)
    assert first == "".join(translate(loaded.model, loaded.vocab, loaded.vocab.encode("abcd"), 64).output)
    assert "<eos>" in result.output and table[0].split() == ["%", *"abcd"]  # the source heads the columns
    beam = runner.invoke(cli_app, ["translate", seq2seq_run.id, "abcd", "--beam", "3", "--runs-dir", runs_dir])
    assert beam.exit_code == 0
    bad = runner.invoke(cli_app, ["translate", seq2seq_run.id, "ABZ", "--runs-dir", runs_dir])
    assert bad.exit_code == 2 and bad.output.count("\n") == 1 and "not in the source vocabulary" in bad.output


def test_the_attention_screen_follows_the_probe_and_decodes_typed_input(seq2seq_run):
    app = make_app(runs_dir=seq2seq_run.path.parent)

    async def scenario():
        async with app.run_test(size=(100, 30)) as pilot:
            app.open_attention(seq2seq_run)
            screen = app.screen
            assert isinstance(screen, AttentionScreen)
            await wait_for(pilot, lambda: screen.probe is not None, what="the probe event")
            assert text_of(screen, "#title").startswith("probe example at step 40: ")
            assert "<eos>" in rendered(screen.query_one("#heatmap").content)
            assert screen.focused is screen.query_one("#source")  # typed text is not lost
            await pilot.press(*"abcd")
            assert screen.query_one("#source").value == "abcd"
            await pilot.press("enter")
            await wait_for(pilot, lambda: text_of(screen, "#title").startswith("abcd → "), what="the decoding")
            await pilot.press("ctrl+e")  # back to the probe example, from inside the input
            assert screen.showing == "probe" and text_of(screen, "#title").startswith("probe example at step 40: ")
            screen.query_one("#source").value = "abQ"
            await pilot.press("enter")
            await wait_for(pilot, lambda: "not in the source vocabulary" in text_of(screen, "#title"),
                             what="the error line")
            await pilot.press("escape")
            await pilot.press("ctrl+e")  # nothing: back on the runs screen, no crash

    asyncio.run(scenario())
