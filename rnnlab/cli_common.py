"""What every `rnnlab` command shares: the consoles, the one-line error wrapper, the common options."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from . import store
from .errors import ConfigError, RnnlabError

out = Console(highlight=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)

RunsDir = Annotated[Optional[Path], typer.Option("--runs-dir", help="Where runs live [default: $RNNLAB_RUNS_DIR or ./runs]")]
Sets = Annotated[Optional[list[str]], typer.Option("--set", "-s", help="Override a config key: section.key=value")]


def reports_errors(command):
    """Turn an RnnlabError into one line on stderr and its exit code (also under CliRunner)."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except RnnlabError as error:
            err.print(f"error: {error}", markup=False)
            raise typer.Exit(error.exit_code) from None

    return wrapper


def runs_dir_of(option: Path | None) -> Path:
    return option if option is not None else store.default_runs_dir()


def run_with_checkpoint(run_ref: str, checkpoint: str, runs_dir: Path | None) -> store.RunDir:
    """The run a checkpoint-reading command names, once --checkpoint is known to be best or last."""
    if checkpoint not in ("best", "last"):
        raise ConfigError("--checkpoint", checkpoint, "unknown checkpoint", "best, last")
    return store.find_run(runs_dir_of(runs_dir), run_ref)
