"""What every `rnnlab` command shares: the consoles, the one-line errors, the common options."""

from __future__ import annotations

import functools
import os
import sys
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from typer.core import TyperGroup

from . import store
from .errors import ConfigError, RnnlabError, describe_os_error
from .literal import visible

out = Console(highlight=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)

RunsDir = Annotated[Optional[Path], typer.Option("--runs-dir", help="Where runs live [default: $RNNLAB_RUNS_DIR or ./runs]")]
Sets = Annotated[Optional[list[str]], typer.Option("--set", "-s", help="Override a config key: section.key=value")]


# `rnnlab --runs-dir DIR COMMAND`: set by the app's callback for this invocation, read by runs_dir_of
_top_runs_dir: ContextVar[Path | None] = ContextVar("rnnlab_top_runs_dir", default=None)


def fail(message: str) -> None:
    """The one error line: `error: ...` on stderr, its control characters visible, never markup."""
    err.print(f"error: {visible(message)}", markup=False)


def notes(cfg) -> None:
    """What resolving the config changed on its own (keys a switched arch/task dropped): `note: ...` lines
    on stderr, not errors."""
    for line in cfg.notes:
        err.print(f"note: {visible(line)}", markup=False)


def reports_errors(command):
    """Turn an RnnlabError into one line on stderr and its exit code (also under CliRunner)."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except RnnlabError as error:
            fail(str(error))
            raise typer.Exit(error.exit_code) from None
        except OSError as error:  # a full disk, a read-only or unreadable folder: the machine's, not ours
            if os.environ.get("RNNLAB_DEBUG"):
                raise
            fail(describe_os_error(error))
            raise typer.Exit(1) from None

    return wrapper


class Commands(TyperGroup):
    """The root command group. Every usage error that click finds before a command runs (a bad or
    out-of-range value, an unknown option or command, a missing argument) is one `error:` line and
    exit 2, like rnnlab's own errors, instead of Typer's boxed usage; `--help` stays as it is.

    It runs under the console script and CliRunner alike: both call `main()` in standalone mode."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        token = _top_runs_dir.set(None)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except typer.Abort:
            fail("aborted")
            sys.exit(1)
        except RnnlabError as error:  # raised outside a command body (a callback)
            fail(str(error))
            sys.exit(error.exit_code)
        except typer.TyperException as error:  # click's ClickException: UsageError, BadParameter, ...
            if type(error).__name__ != "NoArgsIsHelpError":  # that one has printed the help already
                fail(usage_message(error))
            sys.exit(getattr(error, "exit_code", 1))
        finally:
            _top_runs_dir.reset(token)
        sys.exit(code if isinstance(code, int) else 0)


def usage_message(error: typer.TyperException) -> str:
    """A click usage error in the shape of ConfigError's: `--length = -5: input should be ...`."""
    param, ctx = getattr(error, "param", None), getattr(error, "ctx", None)
    message = error.format_message()
    if isinstance(error, typer.BadParameter) and param is not None and error.message:
        key = "/".join(param.opts) if getattr(param, "opts", None) else str(param.human_readable_name)
        value = _bad_value(error)
        problem = error.message[:1].lower() + error.message[1:]
        message = f"{key}{'' if value is None else f' = {value}'}: {problem}"
    message = message.strip().rstrip(".")
    message = message[:1].lower() + message[1:]
    if ctx is not None and message.startswith("no such command") and hasattr(ctx.command, "list_commands"):
        message += f"; allowed: {', '.join(ctx.command.list_commands(ctx))}"
    if ctx is not None:
        message += f" (see {ctx.command_path} --help)"
    return " ".join(message.split())  # one line


def _bad_value(error) -> str | None:
    """The value typed for a rejected parameter, where Typer's validation kept it (pydantic's `input`)."""
    cause = error.__cause__
    problems = cause.errors() if hasattr(cause, "errors") else None
    if problems and "input" in problems[0]:
        return str(problems[0]["input"])
    return None


def set_top_runs_dir(option: Path | None) -> None:
    _top_runs_dir.set(option)


def runs_dir_of(option: Path | None) -> Path:
    """A command's --runs-dir, else the one before the command (`rnnlab --runs-dir D ...`), else the default."""
    chosen = option if option is not None else _top_runs_dir.get()
    chosen = chosen if chosen is not None else store.default_runs_dir()
    if chosen.exists() and not chosen.is_dir():
        raise ConfigError("--runs-dir", str(chosen), "not a folder", "a folder (made when missing)")
    return chosen


def run_with_checkpoint(run_ref: str, checkpoint: str, runs_dir: Path | None) -> store.RunDir:
    """The run a checkpoint-reading command names, once --checkpoint is known to be best or last."""
    if checkpoint not in ("best", "last"):
        raise ConfigError("--checkpoint", checkpoint, "unknown checkpoint", "best, last")
    return store.find_run(runs_dir_of(runs_dir), run_ref)
