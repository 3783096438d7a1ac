"""`rnnlab reproduce`: the lectures' claims, each a study (experiments/studies/NAME.toml) run as a sweep
and decided by its checks.

    rnnlab reproduce NAME [NAME ...] [--quick | --full] [--workers N] [--backend local|ray]
    rnnlab reproduce --all [--quick | --full]
    rnnlab reproduce --list
    rnnlab reproduce --all --report docs/RESULTS.md      (from saved results: runs nothing)

Exit status: 0 every study reproduced, 1 one was not reproduced, 3 one was inconclusive (and none
failed), 2 a bad study file or option, 130 stopped (run it again to continue the same sweep)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table
from rich.text import Text

from .cli_common import RunsDir, err, out, reports_errors, runs_dir_of
from .console import fmt_duration, fmt_metric, literal, sample_text
from .errors import ConfigError
from .literal import visible
from .worker import STOPPED

VERDICT_STYLES = {"reproduced": "bold green", "not reproduced": "bold red", "inconclusive": "bold yellow"}
OUTCOME_STYLES = {"pass": "green", "fail": "red", "inconclusive": "yellow"}
EXIT = {"reproduced": 0, "not reproduced": 1, "inconclusive": 3}


@reports_errors
def reproduce(
    names: Annotated[Optional[list[str]], typer.Argument(metavar="[NAME]...", help="Studies to run (names in "
                                                         "experiments/studies/, or paths to study files)")] = None,
    quick: Annotated[bool, typer.Option("--quick", help="The quick size (minutes on 2 CPU cores; the default)")] = False,
    full: Annotated[bool, typer.Option("--full", help="The full size: the real thing")] = False,
    all_: Annotated[bool, typer.Option("--all", help="Every study")] = False,
    list_: Annotated[bool, typer.Option("--list", help="List the studies: claim and last verdict")] = False,
    report: Annotated[Optional[Path], typer.Option("--report", help="Write the results report (markdown) "
                                                   "from saved results; runs nothing")] = None,
    workers: Annotated[Optional[int], typer.Option(min=1, help="Worker processes (default: one per core)")] = None,
    backend: Annotated[str, typer.Option(help="Where trials run: local or ray (as `rnnlab sweep`)")] = "local",
    studies: Annotated[Optional[Path], typer.Option("--studies", help="Folder of study files "
                                                    "[default: experiments/studies]")] = None,
    runs_dir: RunsDir = None,
) -> None:
    """Reproduce a claim of the lectures: run its study's sweep (again: continue it), print the table, the
    figure, each check with its measured value, and the verdict."""
    from .studies import spec

    if quick and full:
        raise ConfigError("--full", True, "choose one size", "--quick, --full")
    size = "full" if full else "quick"
    runs_dir = runs_dir_of(runs_dir)
    if list_ or report is not None:
        chosen = spec.load_all(studies) if all_ or not names else [spec.find(n, studies) for n in names]
        if report is not None:
            from .studies.report import write_report

            write_report(report, chosen, runs_dir)
            out.print(visible(f"wrote {report} ({len(chosen)} studies)"), markup=False)
        if list_:
            list_studies(chosen, runs_dir)
        return
    if not names and not all_:
        raise ConfigError("NAME", "(missing)", "name a study, or --all, or --list", "see rnnlab reproduce --list")
    from .sweeps.backends import check_backend

    check_backend(backend)
    chosen = spec.load_all(studies) if all_ else [spec.find(n, studies) for n in names]
    codes = []
    for study in chosen:
        codes.append(run_study(study, size, runs_dir, workers, backend))
        if codes[-1] == STOPPED:  # Ctrl-C stops the whole command, not just this study's sweep
            raise typer.Exit(STOPPED)
    raise typer.Exit(1 if 1 in codes else max(codes))


def run_study(study, size: str, runs_dir: Path, workers: int | None, backend: str) -> int:
    from .cli_sweep import SweepDisplay, show_results
    from .studies import runner
    from .sweeps import driver
    from .sweeps.backends import cluster_cpus, make_backend

    out.print(Text.assemble(Text(f"study {study.name}", "bold"), f" ({size}): ", literal(study.claim)))
    out.print(Text.assemble(Text("watch: ", "bold"), literal(study.watch)))
    out.print(Text.assemble(Text("anchor: ", "bold"), literal(study.anchor)))
    plan, how = runner.plan(study, size, runs_dir)
    total = len(plan.record["trials"])
    count = 1
    state = "finished"
    if plan.todo:
        cores = cluster_cpus(backend, None)
        count = max(1, min(workers or cores, len(plan.todo)))
        err.print(Text.assemble(f"{how} sweep ", literal(plan.sweep.id, "bold"),
                                f": {len(plan.todo)} of {total} trials to run, {count} workers"))
        started = time.monotonic()
        pool = make_backend(backend, count, max(1, cores // count), None)
        with SweepDisplay(plan.sweep, quiet=False) as display:
            state = driver.Driver(plan, pool, display.update).run()
        runner.add_seconds(study, size, runs_dir, time.monotonic() - started)
    else:
        err.print(Text.assemble("sweep ", literal(plan.sweep.id, "bold"), f": all {total} trials done"))
        if plan.record.get("state") != "finished":
            plan.sweep.write({**plan.record, "state": "finished"})
    show_results(plan.sweep, plan.sweep.read(), plot=True)
    if state == "stopped":
        out.print(visible(f"stopped: run `{study.command(size)}` again to continue sweep {plan.sweep.id}"),
                  markup=False)
        return STOPPED
    result = runner.evaluate(study, size, plan.sweep, workers=count)
    if result["metrics"]:
        out.print(metrics_table(result))
    out.print(checks_table(result))
    for sample in result.get("samples") or []:
        out.print(sample_text(sample))
    verdict = result["verdict"]
    line = Text.assemble(Text("verdict: ", "bold"), Text(verdict, VERDICT_STYLES[verdict]),
                         f"  ({fmt_duration(result['seconds'])} wall, {fmt_duration(result['trial_seconds'])} "
                         "of training)")
    if study.anchor_value:
        line.append_text(Text.assemble("\nthe anchor's own number: ", literal(study.anchor_value)))
    out.print(line)
    return EXIT[verdict]


def fmt_value(value) -> str:
    return "-" if value is None else fmt_metric(value)


def metrics_table(result: dict) -> Table:
    """The metrics the checks read that the sweep's table does not show (mean ± std over seeds)."""
    table = Table(title="what the checks read", title_justify="left")
    for key in result["keys"]:
        table.add_column(literal(key))
    for name in result["metrics"]:
        table.add_column(literal(name), justify="right")
    for row in result["by_metric"]:
        cells = [row["metrics"].get(name) for name in result["metrics"]]
        table.add_row(*(literal(row["point"].get(k)) for k in result["keys"]),
                      *("-" if c is None else f"{fmt_metric(c['mean'])} ± {fmt_metric(c['std'])}" for c in cells))
    return table


def checks_table(result: dict) -> Table:
    table = Table(title="checks", title_justify="left")
    for column in ("check", "expected", "measured (mean)", "per seed", "outcome"):
        table.add_column(column, justify="right" if column.startswith("measured") else "left")
    for check in result["checks"]:
        seeds = " ".join(f"{s}:{fmt_value(v)}" for s, v in check["per_seed"].items())
        outcome = Text(check["outcome"], OUTCOME_STYLES.get(check["outcome"], ""))
        if check.get("reason"):
            outcome.append_text(literal(f" ({check['reason']})"))
        table.add_row(literal(check["label"]), literal(check["expected"]), fmt_value(check["measured"]),
                      literal(seeds), outcome)
    return table


def list_studies(studies, runs_dir: Path) -> None:
    from .studies.report import DEFAULT_ARCHIVE, shown_result

    table = Table()
    for column in ("#", "study", "claim", "quick", "full"):
        table.add_column(column, overflow="fold", no_wrap=column in ("#", "study"))
    for study in studies:
        cells = []
        for size in ("quick", "full"):
            result, _archived = shown_result(study, size, runs_dir, DEFAULT_ARCHIVE)
            verdict = result.get("verdict") if result else None
            cells.append(Text(str(verdict), VERDICT_STYLES.get(verdict, "")) if verdict else Text("-", "dim"))
        table.add_row(str(study.number or "-"), literal(study.name), literal(study.claim), *cells)
    out.print(table)
    if not studies:
        out.print("no studies found", markup=False)

