"""`rnnlab sweep ...`: run a sweep (a set of trials, each an ordinary run), resume it, show its results.

    rnnlab sweep FILE [--sweep k=v1,v2] [--set k=v] [--workers N] [--backend ray [--address A]]
                                                                    (also `rnnlab sweep start FILE`)
    rnnlab sweep --resume SWEEP
    rnnlab sweep show SWEEP [--csv FILE]
    rnnlab sweep ls

Thin over rnnlab/sweeps/ (spec, driver, backends, results)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from .cli_common import RunsDir, Sets, err, out, reports_errors, runs_dir_of
from .console import STATE_STYLES, fmt_duration, fmt_metric, literal
from .errors import ConfigError
from .literal import visible
from .worker import FINISHED, STOPPED


class SweepCommands(TyperGroup):
    """`rnnlab sweep FILE ...` and `rnnlab sweep --resume S` mean `rnnlab sweep start ...`."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["start", *args]
        return super().parse_args(ctx, args)


sweep_app = typer.Typer(help="Sweeps: many runs that differ in a few keys, and their results. "
                        "`rnnlab sweep FILE` runs the sweep table of an experiment file.", cls=SweepCommands, no_args_is_help=True)


@sweep_app.command("start")
@reports_errors
def start(
    config: Annotated[Optional[Path], typer.Argument(metavar="FILE", help="Experiment TOML with a sweep table")] = None,
    sweep: Annotated[Optional[list[str]], typer.Option("--sweep", help="Sweep a key: key=v1,v2,... (adds to or "
                                                       "replaces a key of the file's sweep table)")] = None,
    set_: Sets = None,
    resume: Annotated[Optional[str], typer.Option("--resume", help="Run what SWEEP has not finished")] = None,
    workers: Annotated[Optional[int], typer.Option(min=1, help="Worker processes (default: as many as trials, at most one per core)")] = None,
    backend: Annotated[str, typer.Option(help="Where trials run: local (worker processes here) or ray "
                                         "(Ray actors, locally or on a cluster; needs the ray extra)")] = "local",
    address: Annotated[Optional[str], typer.Option(help="ray: the cluster to join (auto: the one `ray start` "
                                                   "made on this machine); default: a small local Ray")] = None,
    runs_dir: RunsDir = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors")] = False,
) -> None:
    """Run a sweep: every trial an ordinary run, in a pool of worker processes (the same as `rnnlab sweep FILE`)."""
    from .sweeps import driver
    from .sweeps.backends import check_backend, cluster_cpus, make_backend
    from .sweeps.spec import build_spec, read_sweep_file

    runs_dir = runs_dir_of(runs_dir)
    if address is not None and backend != "ray":
        raise ConfigError("--address", address, "only the ray backend joins a cluster", "--backend ray")
    check_backend(backend)  # the one-line error (unknown, or Ray not installed), before anything is written
    cores = os.cpu_count() or 1
    pool = None
    if resume is not None:
        if config is not None or sweep or set_:
            raise ConfigError("--resume", resume, "give either a file (with --sweep/--set) or --resume, not both")
        plan = driver.resume_sweep(runs_dir, resume)
        todo = len(plan.todo)
        if plan.todo:
            cores = cluster_cpus(backend, address)
    elif config is None:
        raise ConfigError("FILE", "(missing)", "a sweep needs an experiment file", "a .toml file, or --resume SWEEP")
    else:
        todo = len(build_spec(read_sweep_file(config)[1], list(sweep or [])).expand())  # no torch needed yet
        cores = cluster_cpus(backend, address)
        # The workers import torch while this process checks every point: a sweep's first step comes sooner.
        count = max(1, min(workers or cores, todo))
        pool = make_backend(backend, count, max(1, cores // count), address)
        try:
            plan = driver.new_sweep(config, list(sweep or []), list(set_ or []), runs_dir)
        except BaseException:
            pool.close(now=True)  # nothing was submitted: the workers need not finish starting
            raise
    count = max(1, min(workers or cores, todo or 1))
    total = len(plan.record["trials"])
    if not quiet:
        err.print(Text.assemble("sweep ", literal(plan.sweep.id, "bold"),
                                f": {len(plan.todo)} of {total} trials to run, {count} workers"))
    if not plan.todo:
        state = "finished"
        plan.sweep.write({**plan.record, "state": "finished"})
    else:
        pool = pool or make_backend(backend, count, max(1, cores // count), address)
        display = SweepDisplay(plan.sweep, quiet)
        with display:
            state = driver.Driver(plan, pool, display.update).run()
    if not quiet:
        show_results(plan.sweep, plan.sweep.read(), plot=False)
        if state == "stopped":
            out.print(visible(f"resume with: rnnlab sweep --resume {plan.sweep.id}"), markup=False)
    trials = plan.sweep.read()["trials"]
    failed = sum(t["state"] in ("failed", "crashed") for t in trials)
    raise typer.Exit(STOPPED if state == "stopped" else 1 if failed else FINISHED)


class SweepDisplay:
    """A live line on stderr: trials queued / running / done / failed, and the best point so far."""

    def __init__(self, sweep, quiet: bool):
        self.sweep, self.quiet, self.live, self.best = sweep, quiet, None, None
        self.scored: set[str] = set()
        self.values: dict[str, float] = {}

    def __enter__(self):
        if not self.quiet:
            self.live = Live(Text("starting workers..."), console=Console(stderr=True, highlight=False),
                             refresh_per_second=4, transient=False)
            self.live.__enter__()
        return self

    def __exit__(self, *exc):
        if self.live is not None:
            self.live.__exit__(*exc)

    def update(self, record: dict) -> None:
        if self.live is None:
            return
        from .sweeps.results import trial_results

        for trial in record["trials"]:
            if trial["state"] == "finished" and trial["key"] not in self.scored and trial.get("run"):
                self.scored.add(trial["key"])
                single = {**record, "trials": [trial]}
                value = trial_results(self.sweep, single)[0].value
                if value is not None:
                    self.values[trial["key"]] = value
        counts: dict[str, int] = {}
        for trial in record["trials"]:
            counts[trial["state"]] = counts.get(trial["state"], 0) + 1
        done = counts.get("finished", 0) + counts.get("diverged", 0)
        failed = counts.get("failed", 0) + counts.get("crashed", 0)
        line = Text(f"trials: {counts.get('queued', 0)} queued, {counts.get('running', 0)} running, "
                    f"{done} done, {failed} failed" + (f", {counts['stopped']} stopped" if counts.get("stopped") else ""))
        if self.values:
            pick = min if record["goal"] == "min" else max
            key = pick(self.values, key=self.values.get)
            trial = next(t for t in record["trials"] if t["key"] == key)
            point = ", ".join(f"{k}={v}" for k, v in {**trial["point"], "seed": trial["seed"]}.items())
            line.append("\nbest so far: ")
            line.append_text(literal(f"{record['metric']} {fmt_metric(self.values[key])} ({point})", "bold"))
        self.live.update(line)


def results_table(record: dict, points, title: Text | None = None) -> Table:
    from .sweeps.results import best, swept_keys

    keys, metric = swept_keys(record), record["metric"]
    winner = best(points, record["goal"])
    table = Table(title=title, title_justify="left")
    for key in keys:
        table.add_column(literal(key))
    table.add_column(literal(f"{metric} ({record['goal']})"), justify="right")
    table.add_column("n", justify="right")
    table.add_column("steps", justify="right")
    table.add_column("time", justify="right")
    table.add_column("states")
    for p in points:
        value = "-" if p.mean is None else f"{fmt_metric(p.mean)} ± {fmt_metric(p.std)}"
        states = Text(" ").join(literal(f"{s} {c}", STATE_STYLES.get(s, "")) for s, c in sorted(p.states.items()))
        table.add_row(*(literal(p.point.get(k)) for k in keys), Text(value, "bold green" if p is winner else ""),
                      str(p.n), str(p.mean_steps), fmt_duration(p.seconds), states)
    return table


def show_results(sweep, record: dict, plot: bool = True, csv: Path | None = None) -> None:
    from .sweeps import results

    trials = results.trial_results(sweep, record)
    points = results.point_results(trials)
    title = Text.assemble("sweep ", literal(sweep.id), " (", literal(record.get("state")), ")")
    out.print(results_table(record, points, title))
    if any(t.state == "finished" for t in trials) and not any(t.value is not None for t in trials):
        out.print(literal(f"note: no finished trial's last eval event has {record['metric']!r}: "
                          "see docs/run-directory.md for the eval keys of each task", "yellow"))
    for trial in trials:
        if trial.state in ("failed", "crashed", "corrupt"):
            error = next((t.get("error") for t in record["trials"] if t["key"] == trial.key), None)
            out.print(literal(f"{trial.state}: {trial.run or 'no run'} "
                              f"({', '.join(f'{k}={v}' for k, v in trial.point.items())}, seed={trial.seed})"
                              + (f": {error}" if error else ""), STATE_STYLES.get(trial.state, "")))
    if csv is not None:
        results.write_csv(csv, record, points)
        out.print(visible(f"wrote {csv}"), markup=False)
    if not plot:
        return
    from .termplot import sweep_plot

    width = max(40, min(out.size.width, 100))
    for key in results.numeric_keys(record, trials):
        series = results.plot_series(record, trials, key)
        if not series:
            continue
        xs = [x for s in series.values() for x in s[0]]
        text = sweep_plot({visible(k): v for k, v in series.items()}, visible(f"{record['metric']} by {key}"),
                          width, 16, visible(key), log_x=results.geometric(xs), color=out.is_terminal)
        out.print(Text.from_ansi(text))  # plotext's own codes parsed (labels are visible()'d): none left raw in a pipe


@sweep_app.command("show")
@reports_errors
def show(
    sweep_ref: Annotated[str, typer.Argument(metavar="SWEEP", help="Sweep id, unique id prefix, or path")],
    csv: Annotated[Optional[Path], typer.Option("--csv", help="Also write the table to this CSV file")] = None,
    plot: Annotated[bool, typer.Option("--plot/--no-plot", help="Plot the metric against each numeric key")] = True,
    runs_dir: RunsDir = None,
) -> None:
    """A sweep's results: every point's metric (mean ± std over seeds) from its trials' own events."""
    from . import store

    sweep = store.find_sweep(runs_dir_of(runs_dir), sweep_ref)
    show_results(sweep, sweep.read(), plot=plot, csv=csv)


@sweep_app.command("ls")
@reports_errors
def ls(runs_dir: RunsDir = None) -> None:
    """List sweeps, newest first."""
    from . import store
    from .errors import CorruptRun

    runs_dir = runs_dir_of(runs_dir)
    sweeps = store.list_sweeps(runs_dir)
    if not sweeps:
        out.print(visible(f"no sweeps in {runs_dir}"), markup=False)
        return
    table = Table()
    for column in ("id", "state", "trials", "metric"):
        table.add_column(column, no_wrap=True)  # an id cut or wrapped could not be pasted
    table.add_column("file", overflow="fold")
    for sweep in sweeps:
        try:
            record = sweep.read()
        except CorruptRun:
            table.add_row(literal(sweep.id), Text("corrupt", STATE_STYLES["corrupt"]), "-", "-", "-")
            continue
        trials = record["trials"]
        done = sum(isinstance(t, dict) and t.get("state") in ("finished", "diverged") for t in trials)
        state = str(record.get("state"))
        table.add_row(literal(sweep.id), literal(state, STATE_STYLES.get(state, "")), f"{done}/{len(trials)}",
                      literal(record.get("metric")), literal(record.get("file")))
    out.print(table)
