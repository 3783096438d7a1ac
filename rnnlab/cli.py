"""The `rnnlab` command line: thin typer commands over the library.

This file: the app, training (`run`), and reading a trained model (`sample`,
`translate`, `caption`, `activations`, `tui`); cli_runs.py: `runs ...` and `list ...`;
cli_serve.py: `serve` (the app in a browser); cli_common.py: what they share.

Every user error is one line on stderr and a non-zero exit (2 for bad input),
never a traceback; RNNLAB_DEBUG=1 shows the traceback of an unexpected error.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.syntax import Syntax

from . import config as config_mod
from . import store
from .cli_common import (Commands, RunsDir, Sets, err, fail, notes, out, reports_errors, run_with_checkpoint,
                         runs_dir_of, set_top_runs_dir)
from .cli_runs import list_app, runs_app
from .cli_reproduce import reproduce
from .cli_serve import serve
from .cli_sweep import sweep_app
from .errors import ConfigError
from .literal import visible

app = typer.Typer(help="rnnlab: a terminal lab for recurrent neural networks. With no command, in a "
                  "terminal, opens the app (`rnnlab tui`).", pretty_exceptions_enable=False, add_completion=False,
                  cls=Commands)
app.add_typer(runs_app, name="runs")
app.add_typer(list_app, name="list")
app.add_typer(sweep_app, name="sweep")
app.command("reproduce")(reproduce)
app.command("serve")(serve)

TEXT_KEEPS = "\n\t"  # generated text keeps its lines and tabs; every other control character is made visible
# what a resume may change: how long and how often, and what evaluation scores (never the training stream:
# task.protocol lets a run from before continuous series scoring keep its windowed metrics)
RESUMABLE_KEYS = {"train.steps", "train.eval_every", "train.eval_batches", "train.checkpoint_every",
                  "train.time_limit", "device", "task.eval_lengths", "task.length_batches", "task.protocol"}


@app.callback(invoke_without_command=True)
def front_door(ctx: typer.Context, runs_dir: RunsDir = None) -> None:
    set_top_runs_dir(runs_dir)  # `rnnlab --runs-dir D COMMAND`: a command's own --runs-dir still wins
    if ctx.invoked_subcommand is not None:
        return
    if sys.stdin.isatty() and sys.stdout.isatty():
        tui(None, None, None)
    else:  # a script or a pipe: an app would wait forever; say what there is instead
        out.print(ctx.get_help())


@app.command()
@reports_errors
def tui(
    run_ref: Annotated[Optional[str], typer.Argument(metavar="[RUN]", help="Open this run's live view")] = None,
    runs_dir: RunsDir = None,
    experiments: Annotated[Optional[Path], typer.Option(help="Folder of preset TOML files for new runs")] = None,
) -> None:
    """Open the app: launch runs, watch them live, browse, compare, sample."""
    from .tui import make_app

    runs_dir = runs_dir_of(runs_dir)
    if run_ref is not None:
        store.find_run(runs_dir, run_ref)  # a bad RUN is a one-line error before the screen opens
    if experiments is not None and not experiments.is_dir():
        raise ConfigError("--experiments", str(experiments), "not a folder", "a folder of .toml presets")
    make_app(runs_dir, run_ref, experiments).run()


# -- run ------------------------------------------------------------------------------
@app.command()
@reports_errors
def run(
    config: Annotated[Optional[Path], typer.Argument(help="Experiment TOML (defaults when omitted)")] = None,
    set_: Sets = None,
    resume: Annotated[Optional[str], typer.Option("--resume", help="Continue RUN from its last checkpoint")] = None,
    runs_dir: RunsDir = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors")] = False,
    json_: Annotated[bool, typer.Option("--json", help="Print every event as a JSON line on stdout")] = False,
) -> None:
    """Train a model headless (the same command the TUI starts)."""
    from .train import Trainer, prepare, resume_trainer

    runs_dir = runs_dir_of(runs_dir)
    overrides = list(set_ or [])
    if resume is not None:
        if config is not None:
            raise ConfigError("config", str(config), "give either a config file or --resume, not both")
        run_dir = store.find_run(runs_dir, resume)
        run_dir.checked_status()  # a corrupt status is one line before the overrides are judged
        for text in overrides:
            path, _ = config_mod.parse_override(text)
            if ".".join(path) not in RESUMABLE_KEYS:
                raise ConfigError(".".join(path), text, "cannot change when resuming", ", ".join(sorted(RESUMABLE_KEYS)))
        trainer = resume_trainer(run_dir, overrides)
        cfg = trainer.cfg
    else:
        cfg = config_mod.load(config, overrides)
        if not quiet:
            notes(cfg)  # before prepare: a later error may be about a key that now has its default
        prepared = prepare(cfg)  # every config error is raised before anything is written
        run_dir = store.create_run(runs_dir, cfg.name, config_text=cfg.to_toml())
        trainer = Trainer(prepared, run_dir)

    from .console import RunProgress, summary_table

    mode = "json" if json_ else "quiet" if quiet else "bar"
    with RunProgress(mode, cfg.train.steps, run_dir.id, trainer.step) as progress:
        tokens = Throughput()
        trainer.on_event = lambda e: (tokens(e), progress(e))
        outcome = trainer.train()
    if mode == "bar":
        out.print(summary_table(run_dir.id, run_dir.read_status(), outcome, outcome.final, tokens.rate(),
                                trainer.task))
        out.print(visible(f"run directory: {run_dir.path}"), markup=False)
        if outcome.state == "stopped":
            out.print(visible(f"resume with: rnnlab run --resume {run_dir.id}"), markup=False)
    if outcome.error and mode != "bar":
        fail(f"run {run_dir.id} {outcome.state}: {outcome.error}")
    raise typer.Exit(outcome.exit_code)


class Throughput:
    """Mean training tokens/s over the run's steps (evaluation time excluded).

    Every step of a run has the same token count N, so the mean rate is
    steps / sum(1 / rate_i): total tokens over total step time.
    """

    def __init__(self):
        self.steps, self.inverse_sum = 0, 0.0

    def __call__(self, event: dict) -> None:
        if event["kind"] == "train" and event["tokens_per_s"] > 0:
            self.steps += 1
            self.inverse_sum += 1.0 / event["tokens_per_s"]

    def rate(self) -> float | None:
        return self.steps / self.inverse_sum if self.inverse_sum else None


# -- sample ---------------------------------------------------------------------------
@app.command()
@reports_errors
def sample(
    run_ref: Annotated[str, typer.Argument(metavar="RUN", help="Run id, unique id prefix, or path")],
    prompt: Annotated[Optional[str], typer.Option(help="Text to start from [default: a new line, or a space "
                                                  "where the text had no new lines]")] = None,
    length: Annotated[int, typer.Option(min=1, help="Tokens to generate (characters for a character model)")] = 400,
    temperature: Annotated[float, typer.Option(min=0.0, help="Softmax temperature (0: greedy)")] = 0.8,
    top_k: Annotated[Optional[int], typer.Option("--top-k", min=1, help="Sample among the k most likely")] = None,
    top_p: Annotated[Optional[float], typer.Option("--top-p", help="Nucleus: sample among the most likely "
                                                   "characters that together reach probability p")] = None,
    greedy: Annotated[bool, typer.Option("--greedy", help="Always take the most likely character")] = False,
    beam: Annotated[Optional[int], typer.Option(min=1, help="Beam search with this many hypotheses: the most "
                                                "likely continuation it finds (printed at the end)")] = None,
    length_penalty: Annotated[float, typer.Option(help="Beam search: GNMT length penalty alpha")] = 0.0,
    seed: Annotated[Optional[int], typer.Option(help="Seed for reproducible samples")] = None,
    checkpoint: Annotated[str, typer.Option(help="best or last")] = "best",
    device: Annotated[str, typer.Option(help="cpu, cuda, mps or auto")] = "cpu",
    runs_dir: RunsDir = None,
) -> None:
    """Stream generated text from a trained language model."""
    from .sampling import beam_generate, default_prompt, generate, load_language_model
    from .train.device import resolve_device

    run_dir = run_with_checkpoint(run_ref, checkpoint, runs_dir)
    model, vocab, _, _ = load_language_model(run_dir, checkpoint, str(resolve_device(device)))
    prompt = default_prompt(vocab) if prompt is None else prompt
    if beam is not None:
        from .decoding import Sampling, describe_score

        Sampling(temperature, top_k, top_p, greedy).check()  # a bad flag is an error even where beams ignore it
        text, best = beam_generate(model, vocab, prompt, length, beam, length_penalty)
        sys.stdout.write(visible(prompt + text, keep=TEXT_KEEPS) + "\n")
        sys.stdout.flush()
        err.print(f"[dim]beam {beam}: {describe_score(best)}")
        return
    stream = generate(model, vocab, prompt, length, temperature, top_k, greedy, seed, top_p)
    first = next(stream)  # errors in the prompt surface before anything is printed
    sys.stdout.write(visible(prompt + first, keep=TEXT_KEEPS))  # the model's text, shown, never obeyed
    for char in stream:
        sys.stdout.write(visible(char, keep=TEXT_KEEPS))
        sys.stdout.flush()
    sys.stdout.write("\n")


@app.command()
@reports_errors
def translate(
    run_ref: Annotated[str, typer.Argument(metavar="RUN", help="Run id, unique id prefix, or path of a seq2seq run")],
    text: Annotated[str, typer.Argument(metavar="INPUT", help="The source, e.g. \"3 March 2021\" for dates")],
    beam: Annotated[int, typer.Option(min=1, help="Beam width (1: greedy)")] = 1,
    length_penalty: Annotated[float, typer.Option(min=0.0, help="Beam search: GNMT length penalty alpha")] = 0.0,
    max_len: Annotated[int, typer.Option(min=1, help="Longest output, in tokens")] = 64,
    checkpoint: Annotated[str, typer.Option(help="best or last")] = "best",
    runs_dir: RunsDir = None,
) -> None:
    """Decode an input with a seq2seq run: its output and the attention over the input."""
    from .console import attention_heatmap
    from .decoding import translate as decode_one
    from .translating import load_seq2seq

    run_dir = run_with_checkpoint(run_ref, checkpoint, runs_dir)
    loaded = load_seq2seq(run_dir, checkpoint)
    result = decode_one(loaded.model, loaded.vocab, loaded.vocab.encode(text), max_len, beam, length_penalty)
    out.print(visible(loaded.vocab.joiner.join(result.output)), highlight=False, markup=False)
    if result.attention is not None:
        out.print(attention_heatmap(result.source, result.output, result.attention))


@app.command()
@reports_errors
def caption(
    run_ref: Annotated[str, typer.Argument(metavar="RUN", help="Run id, unique id prefix, or path of a captioning run")],
    index: Annotated[int, typer.Option(min=0, help="Which held-out scene of the run's evaluation")] = 0,
    beam: Annotated[int, typer.Option(min=1, help="Beam width (1: greedy)")] = 1,
    score: Annotated[Optional[int], typer.Option(min=1, help="Instead: caption scenes 0..N-1, print the exact "
                                                 "match and where the attention falls while naming each thing")] = None,
    checkpoint: Annotated[str, typer.Option(help="best or last")] = "best",
    runs_dir: RunsDir = None,
) -> None:
    """Caption a held-out scene with a captioning run: the image, the caption, each word's attention."""
    from .captioning import attention_shares, caption as caption_one, load_captioner
    from .console import caption_maps, image_cells, literal, shares_table

    run_dir = run_with_checkpoint(run_ref, checkpoint, runs_dir)
    loaded = load_captioner(run_dir, checkpoint)
    if score is not None:
        out.print(shares_table(attention_shares(loaded, score, beam)))
        return
    result = caption_one(loaded, index, beam)
    out.print(image_cells(result.image))
    right = "right" if result.words == result.truth else "truth: " + " ".join(result.truth)
    out.print(literal(f"scene {index}: {' '.join(result.words)}  ({right})"), highlight=False)
    if result.attention is not None:
        out.print(caption_maps(result.image, result.words, result.attention, result.grid))
    else:
        out.print("(a fixed image context, model.attention = none: no attention maps)", highlight=False)


@app.command()
@reports_errors
def activations(
    run_ref: Annotated[str, typer.Argument(metavar="RUN", help="Run id, unique id prefix, or path")],
    text: Annotated[Optional[str], typer.Option(help="Text to read [default: the start of the validation text]")] = None,
    length: Annotated[int, typer.Option(min=1, help="Tokens of validation text when --text is not given")] = 400,
    unit: Annotated[Optional[int], typer.Option(min=0, help="Unit to colour by [default: the most variable one]")] = None,
    layer: Annotated[int, typer.Option(help="Layer (negative counts from the top)")] = -1,
    cell: Annotated[bool, typer.Option("--cell", help="Colour by the LSTM cell state instead of h")] = False,
    checkpoint: Annotated[str, typer.Option(help="best or last")] = "best",
    runs_dir: RunsDir = None,
) -> None:
    """Colour a text by one hidden unit's activation; saves every unit's activations in the run."""
    from .console import colour_by_values
    from .probes.activations import most_variable_unit, save_activations, unit_activations
    from .sampling import load_language_model

    run_dir = run_with_checkpoint(run_ref, checkpoint, runs_dir)
    model, vocab, cfg, step = load_language_model(run_dir, checkpoint)
    if text is None:
        from .tasks import build_task

        task = build_task(cfg.task, cfg.seed)
        text = "".join(task.vocab.split(task.val_text)[:length])  # the text itself: an <unk> keeps its word
    record = unit_activations(model, vocab, text)
    values = record["cells"] if cell else record["hidden"]
    if values is None:
        raise ConfigError("--cell", True, f"{cfg.model.arch} has no cell state", "--cell only for lstm")
    layers, _, hidden = values.shape
    if not -layers <= layer < layers:
        raise ConfigError("--layer", layer, "no such layer", f"-{layers} .. {layers - 1}")
    if unit is None:
        unit = most_variable_unit({"hidden": values}, layer)
    if unit >= hidden:
        raise ConfigError("--unit", unit, "no such unit", f"0 .. {hidden - 1}")
    path = save_activations(run_dir, f"{checkpoint}-step{step}", record)
    writer = run_dir.event_writer()
    writer.write({"kind": "activations", "step": step, "t": None,
                  "file": str(path.relative_to(run_dir.path)), "checkpoint": checkpoint, "chars": len(text)})
    writer.close()
    out.print(visible(f"layer {layer % layers}, unit {unit} ({'cell' if cell else 'hidden'}): blue > 0 > red; "
                      f"all {hidden} units saved in {path}"), markup=False)
    out.print(colour_by_values(record["tokens"], values[layer, :, unit].float().tolist()))


@app.command("config")
@reports_errors
def show_config(
    config: Annotated[Optional[Path], typer.Argument(help="Experiment TOML (defaults when omitted)")] = None,
    set_: Sets = None,
) -> None:
    """Print the resolved config (every default filled in) without running it."""
    cfg = config_mod.load(config, list(set_ or []))
    notes(cfg)
    out.print(Syntax(cfg.to_toml(), "toml", background_color="default"))


def main() -> None:
    """Console-script entry point. The root group (`Commands`) turns usage errors
    into one line and exit 2; the commands turn rnnlab's own errors into one line
    (`reports_errors`); anything unexpected is one line too, unless RNNLAB_DEBUG=1
    asks for the traceback."""
    try:
        app()
    except Exception as error:
        if os.environ.get("RNNLAB_DEBUG"):
            raise
        fail(f"unexpected {error.__class__.__name__}: {error} (RNNLAB_DEBUG=1 shows the traceback)")
        sys.exit(1)
