"""`rnnlab runs ...` and `rnnlab list ...`: what is there, saved runs and the registries."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.syntax import Syntax
from rich.text import Text

from . import store
from .cli_common import RunsDir, err, out, reports_errors, runs_dir_of
from .errors import ConfigError, RnnlabError, RunIsLive
from .literal import visible

runs_app = typer.Typer(help="Browse and manage saved runs.", no_args_is_help=True)
list_app = typer.Typer(help="List what rnnlab offers.", no_args_is_help=True)


# -- list -------------------------------------------------------------------------------
def _registry_table(registry, title: str):
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    table.add_column("name", style="bold")
    table.add_column("description")
    table.add_column("options")
    base = {"arch", "name", "hidden", "layers", "dropout", "embed", "init", "init_radius", "init_gain"}  # shared
    for name, cls in registry.items():
        own = [row["key"] for row in _describe(cls.Options) if row["key"] not in base]
        table.add_row(name, cls.summary, ", ".join(own) or "-")
    return table


def _describe(cls):
    from .options import describe

    return describe(cls)


@list_app.command("archs")
@reports_errors
def list_archs() -> None:
    """The architectures (model.arch)."""
    from .models import ARCHS

    out.print(_registry_table(ARCHS, "architectures (model.arch)"))


@list_app.command("tasks")
@reports_errors
def list_tasks() -> None:
    """The tasks (task.name)."""
    from .tasks import TASKS

    out.print(_registry_table(TASKS, "tasks (task.name)"))


# -- runs ---------------------------------------------------------------------------------
@runs_app.command("ls")
@reports_errors
def runs_ls(
    state: Annotated[Optional[str], typer.Option(help="Only runs in this state")] = None,
    arch: Annotated[Optional[str], typer.Option(help="Only this architecture")] = None,
    task: Annotated[Optional[str], typer.Option(help="Only this task")] = None,
    filter_: Annotated[Optional[str], typer.Option("--filter", help="The runs browser's filter, e.g. "
                                                   "'tag:baseline arch:lstm val<1.6' (see the README)")] = None,
    runs_dir: RunsDir = None,
) -> None:
    """List runs, newest first."""
    from .console import runs_table
    from .run_filter import parse

    if state is not None and state not in store.STATES + ("corrupt",):
        raise ConfigError("--state", state, "unknown state", ", ".join(store.STATES + ("corrupt",)))
    query = parse(filter_ or "")
    if query.problems:
        raise ConfigError("--filter", filter_, query.problems[0], "FIELD:TEXT, val<N, step>=N or text")
    rows = [r for r in store.list_runs(runs_dir_of(runs_dir))
            if (state is None or r.state == state) and (arch is None or r.arch == arch)
            and (task is None or r.task == task) and query.matches(r)]
    if not rows:
        asked = state or arch or task or not query.empty
        out.print(visible(f"no runs in {runs_dir_of(runs_dir)}" + (" match" if asked else "")), markup=False)
        return
    table = runs_table(rows, out.width)
    # Ids longer than the terminal is wide: print id and state whole anyway (the terminal wraps the line);
    # a cut id could not be pasted into another command.
    needed = sum(column.min_width or 0 for column in table.columns) + len(table.columns) - 1  # one space between
    if needed <= out.width:
        out.print(table)
    else:  # rich never lays a table out wider than its console: a console as wide as the rows
        Console(file=out.file, width=needed, highlight=False, force_terminal=out.is_terminal,
                no_color=out.no_color).print(table)


@runs_app.command("show")
@reports_errors
def runs_show(
    run_ref: Annotated[str, typer.Argument(metavar="RUN", help="Run id, unique id prefix, or path")],
    runs_dir: RunsDir = None,
) -> None:
    """Status, config, last metrics, and plots: loss, gradient norms, gradient flow, spectra."""
    from .console import fmt_metric, literal, status_table
    from .curves import length_scores
    from .report import run_plots

    run_dir = store.find_run(runs_dir_of(runs_dir), run_ref)
    out.print(Text.assemble(literal(run_dir.id, "bold"), "  (", literal(run_dir.path), ")"))
    try:
        out.print(status_table(run_dir.read_status()))
    except (OSError, ValueError) as error:
        out.print(literal(f"status.json unreadable: {error}", "red"))
    try:
        labels = store.read_labels(run_dir.path)
    except RnnlabError as error:
        out.print(literal(str(error), "red"))
    else:
        if labels.tags or labels.note:
            out.print(Text.assemble(("tags ", "bold"), literal(" ".join(labels.tags) or "-"), "\n",
                                    ("note ", "bold"), literal(labels.note or "-")))
    if run_dir.config_path.is_file():
        config_text = run_dir.config_path.read_text(encoding="utf-8", errors="replace")
        out.print(Syntax(visible(config_text, keep="\n\t"), "toml", background_color="default"))
    events = run_dir.read_events()
    evals = [e for e in events if e["kind"] == "eval"]
    if evals:
        last = evals[-1]
        # every metric the task reported (error rate, NRMSE, exact match, ...), not only a language model's
        shown = "  ".join(f"{k} {fmt_metric(v)}" for k, v in last.items()
                          if k not in ("kind", "step", "t", "best") and isinstance(v, (int, float)))
        out.print(Text.assemble((f"validation at step {visible(last.get('step', '?'))}:", "bold"), " ",
                                literal(shown)))
        scores = length_scores(last)
        if scores is not None:  # the numbers behind the by-length plot, for tables
            trained = f" (trained {scores.trained[0]}-{scores.trained[1]})" if scores.trained else ""
            values = "  ".join(f"{n} {fmt_metric(v)}" for n, v in zip(scores.lengths, scores.values))
            out.print(Text.assemble((f"{visible(scores.metric)} by length{trained}:", "bold"), " ", values))
    plots = run_plots(events, min(out.width, 120), color=out.is_terminal)
    for plot in plots:
        out.print(Text.from_ansi(plot))
    if not plots:
        out.print("no training steps recorded yet")


@runs_app.command("rm")
@reports_errors
def runs_rm(
    run_refs: Annotated[list[str], typer.Argument(metavar="RUN...", help="Runs to delete")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask")] = False,
    runs_dir: RunsDir = None,
) -> None:
    """Delete runs (asks first unless --yes). A live run must be stopped first."""
    runs = [store.find_run(runs_dir_of(runs_dir), ref) for ref in run_refs]
    for run_dir in runs:
        if run_dir.is_live():
            raise RunIsLive(f"run {run_dir.id} is still running; stop it before deleting it")
    names = ", ".join(visible(r.id) for r in runs)
    if not yes and not typer.confirm(f"delete {len(runs)} run(s): {names}?", default=False):
        err.print("nothing deleted")
        raise typer.Exit(1)
    for run_dir in runs:
        store.remove_run(run_dir)
        out.print(visible(f"deleted {run_dir.id}"), markup=False)


@runs_app.command("tag", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@reports_errors
def runs_tag(
    run_ref: Annotated[str, typer.Argument(metavar="RUN", help="Run id, unique id prefix, or path")],
    changes: Annotated[Optional[list[str]], typer.Argument(metavar="[+TAG|-TAG]...",
                                                           help="+name (or name) adds, -name removes")] = None,
    runs_dir: RunsDir = None,
) -> None:
    """Add or remove a run's tags (with none: print them). Safe while the run trains or others tag it."""
    run_dir = store.find_run(runs_dir_of(runs_dir), run_ref)
    if changes:
        add, remove = store.parse_tag_changes(changes)
        labels = store.update_labels(run_dir.path, add, remove)
    else:
        labels = store.read_labels(run_dir.path)
    out.print(visible(f"{run_dir.id}: " + (" ".join(labels.tags) or "(no tags)")), markup=False)


@runs_app.command("note")
@reports_errors
def runs_note(
    run_ref: Annotated[str, typer.Argument(metavar="RUN", help="Run id, unique id prefix, or path")],
    text: Annotated[Optional[str], typer.Argument(help="The note (\"\" removes it; none: print it)")] = None,
    runs_dir: RunsDir = None,
) -> None:
    """Set, clear or print a run's note."""
    run_dir = store.find_run(runs_dir_of(runs_dir), run_ref)
    labels = (store.update_labels(run_dir.path, note=text.strip()) if text is not None
              else store.read_labels(run_dir.path))
    out.print(visible(f"{run_dir.id}: " + (labels.note or "(no note)"), keep="\n"), markup=False)


@runs_app.command("export")
@reports_errors
def runs_export(
    run_refs: Annotated[Optional[list[str]], typer.Argument(metavar="[RUN]...", help="Runs to export")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every run in the runs directory")] = False,
    csv: Annotated[Optional[Path], typer.Option("--csv", help="Every scalar of every event to FILE "
                                                "(run, step, t, kind, key, value); the runs and their config "
                                                "keys to FILE's .runs.csv beside it")] = None,
    tensorboard: Annotated[Optional[Path], typer.Option("--tensorboard", help="TensorBoard event files, one "
                                                        "folder per run, for `tensorboard --logdir DIR`")] = None,
    runs_dir: RunsDir = None,
) -> None:
    """Export runs' scalars for pandas, spreadsheets or TensorBoard."""
    from . import export

    runs_dir = runs_dir_of(runs_dir)
    if csv is None and tensorboard is None:
        raise ConfigError("export", "(nothing)", "say where to", "--csv FILE and/or --tensorboard DIR")
    if all_ == bool(run_refs):
        raise ConfigError("RUN", " ".join(run_refs or []) or "(missing)", "name runs or pass --all, not both",
                          "RUN... or --all")
    runs = ([store.RunDir(summary.path) for summary in store.list_runs(runs_dir)] if all_
            else [store.find_run(runs_dir, ref) for ref in run_refs])
    for option, target in (("--csv", csv), ("--tensorboard", tensorboard)):
        if target is not None:
            _check_export_target(option, target, is_folder=option == "--tensorboard")
    if csv is not None:
        try:
            runs_path, rows = export.write_csv(runs, csv)
        except OSError as error:
            raise ConfigError("--csv", str(csv), error.strerror or str(error), "a writable file path") from None
        out.print(visible(f"wrote {rows} scalars of {len(runs)} run(s) to {csv}, the runs to {runs_path}"),
                  markup=False)
    if tensorboard is not None:
        try:
            written = export.write_tensorboard(runs, tensorboard)
        except ImportError:
            raise ConfigError("--tensorboard", str(tensorboard), "needs the tensorboard package",
                              "pip install 'rnnlab[tensorboard]' (or pip install tensorboard)") from None
        except OSError as error:
            raise ConfigError("--tensorboard", str(tensorboard), error.strerror or str(error),
                              "a writable folder") from None
        out.print(visible(f"wrote {written} scalars of {len(runs)} run(s) to {tensorboard} "
                          f"(tensorboard --logdir {tensorboard})"), markup=False)


def _check_export_target(option: str, target: Path, is_folder: bool) -> None:
    """An export never writes into a run directory (it would clobber its files) and needs its parent folder."""
    resolved = target.resolve()
    for folder in (resolved, *resolved.parents):
        if store.is_run_dir(folder):
            raise ConfigError(option, str(target), f"inside the run directory {folder.name}",
                              "a path outside every run directory")
    if not resolved.parent.is_dir():
        raise ConfigError(option, str(target), "its folder does not exist", "a path in an existing folder")
    if resolved.exists() and resolved.is_dir() != is_folder:
        raise ConfigError(option, str(target), "a folder" if resolved.is_dir() else "a file",
                          "a folder" if is_folder else "a file path")
