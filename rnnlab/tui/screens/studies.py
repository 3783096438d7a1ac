"""The lectures' claims (experiments/studies/): the list with their last verdicts, and one study: what to
watch and why, its checks, a launch (`rnnlab reproduce NAME`, its own process group, through
worker.start_reproduce) that opens its sweep screen filling in, and the verdict once it has ended.

Everything shown comes from the study files and the results `rnnlab reproduce` saved
(runs/studies/<study>-<size>/result.json), read in thread workers; the files are the CLI's."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static
from textual.worker import get_current_worker

from ... import store, worker
from ...console import fmt_duration, fmt_metric, sample_text
from ...errors import RnnlabError
from ..widgets.table import Table
from ..literal import notify, plain

SIZES = ("quick", "full")
POLL_SECONDS = 1.0


def verdict_style(app, verdict: str | None) -> str:
    colors = app.theme_variables
    return {"reproduced": f"bold {colors['success']}", "not reproduced": f"bold {colors['error']}",
            "inconclusive": f"bold {colors['warning']}"}.get(verdict, "dim")


def read_studies(folder: Path, runs_dir: Path) -> tuple[list, dict, str | None]:
    """(studies, (name, size) -> saved result or None, the error of a bad study file)."""
    from ...studies import spec
    from ...studies.report import DEFAULT_ARCHIVE, shown_result

    try:
        studies = spec.load_all(folder)
    except RnnlabError as error:
        return [], {}, str(error)
    # this machine's result if current, else the one docs/RESULTS.md shows (a fresh checkout has no runs/)
    saved = {(s.name, size): shown_result(s, size, runs_dir, DEFAULT_ARCHIVE)[0] for s in studies for size in SIZES}
    return studies, saved, None


class StudiesScreen(Screen):
    BINDINGS = [Binding("enter", "open", "Open", priority=True), Binding("escape", "app.pop_screen", "Back")]
    DEFAULT_CSS = """
    StudiesScreen DataTable { height: 1fr; }
    StudiesScreen #hint { height: auto; padding: 0 1; }
    """

    def __init__(self, folder: Path, runs_dir: Path):
        super().__init__()
        self.folder, self.runs_dir = Path(folder), Path(runs_dir)
        self.studies: list = []
        self.saved: dict = {}
        self.shown: tuple | None = None  # the last (studies, saved, problem) shown

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("The lectures' claims, each one `rnnlab reproduce NAME`: enter opens one.", id="hint")
        yield Table(id="studies", cursor_type="row", zebra_stripes=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = "studies"
        table = self.query_one(DataTable)
        for column in ("#", "study", "quick", "full", "claim"):
            table.add_column(column, key=column)
        table.focus()
        self.load()

    def on_screen_resume(self) -> None:
        if self.studies:
            self.load()  # a study may have ended since: its verdict

    @work(thread=True, exclusive=True, group="studies-read", exit_on_error=False)
    def load(self) -> None:
        studies, saved, problem = read_studies(self.folder, self.runs_dir)
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self.show, studies, saved, problem)

    def show(self, studies: list, saved: dict, problem: str | None) -> None:
        # Unchanged (Textual resumes a screen when it is first shown, which reads the files again): keep the
        # table as it is, rather than rebuild it under the first rows and flash narrow columns until its idle
        if not self.is_mounted or (studies, saved, problem) == self.shown:
            return
        self.shown = (studies, saved, problem)
        self.studies, self.saved = studies, saved
        if problem:
            self.query_one("#hint", Static).update(plain(problem, self.app.theme_variables["error"]))
        elif not studies:
            self.query_one("#hint", Static).update(plain(f"No study files in {self.folder}."))
        table = self.query_one(DataTable)
        row = table.cursor_row
        table.clear()
        for study in studies:
            cells = []
            for size in SIZES:
                verdict = (saved.get((study.name, size)) or {}).get("verdict")
                cells.append(plain(verdict or "-", verdict_style(self.app, verdict)))
            table.add_row(Text(str(study.number or "-")), plain(study.name), *cells, plain(study.claim), key=study.name)
        if studies:
            table.move_cursor(row=max(0, min(row, len(studies) - 1)), animate=False)

    def action_open(self) -> None:
        table = self.query_one(DataTable)
        if self.studies and 0 <= table.cursor_row < len(self.studies):
            self.app.push_screen(StudyScreen(self.studies[table.cursor_row], self.runs_dir))


class StudyScreen(Screen):
    BINDINGS = [
        Binding("r", "launch('quick')", "Run quick"),
        Binding("f", "launch('full')", "Run full"),
        Binding("o", "open_sweep", "Sweep"),
        Binding("tab", "toggle_size", "Quick/full"),
        Binding("escape", "app.pop_screen", "Back"),
    ]
    DEFAULT_CSS = """
    StudyScreen #about { height: auto; padding: 1 1 0 1; }
    StudyScreen #verdict { height: auto; padding: 0 1; }
    StudyScreen DataTable { height: auto; max-height: 12; }
    StudyScreen #samples { height: auto; padding: 0 1; }
    """

    def __init__(self, study, runs_dir: Path):
        super().__init__()
        self.study, self.runs_dir = study, Path(runs_dir)
        self.which = "quick"
        self.process = None
        self.result: dict | None = None
        self.archived: Path | None = None  # the archive the result comes from (measured elsewhere), if not ours

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll():
            yield Static(id="verdict")  # first: at 80x24 the paragraph below would push it off the screen
            yield Table(id="checks", cursor_type="none", zebra_stripes=True)
            yield Static(id="samples")  # a language model's samples (studies/samples.py), when the study has them
            yield Static(id="about")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = f"study {self.study.name}"
        s, bold = self.study, "bold"
        about = Text.assemble(plain(s.claim, bold), "\n\n", Text("What to watch, and why. ", bold), plain(s.watch),
                              "\n\n", Text("Anchor. ", bold), plain(s.anchor))
        if s.anchor_value:
            about.append_text(Text.assemble("\n", Text("Its own number. ", bold), plain(s.anchor_value)))
        self.query_one("#about", Static).update(about)
        table = self.query_one(DataTable)
        for column in ("check", "expected", "measured", "per seed", "outcome"):
            table.add_column(column, key=column)
        self.read_result()
        self.set_interval(POLL_SECONDS, self.poll)

    def poll(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            code, self.process = self.process.returncode, None
            self.read_result(announce=code)

    def read_result(self, announce: int | None = None) -> None:
        from ...studies.report import DEFAULT_ARCHIVE, shown_result

        self.result, archived = shown_result(self.study, self.which, self.runs_dir, DEFAULT_ARCHIVE)
        self.archived = DEFAULT_ARCHIVE if archived else None
        self.paint()
        if announce is not None:
            verdict = (self.result or {}).get("verdict")
            message = f"{self.study.name} ({self.which}): {verdict}" if verdict and announce in (0, 1, 3) \
                else f"{self.study.name}: rnnlab reproduce exited with {announce} (see the log in the runs folder)"
            notify(self, message, title="Study", severity="information" if verdict else "warning")

    def paint(self) -> None:
        result, line = self.result, Text()
        line.append(f"{self.which}: ", "bold")
        if self.process is not None:
            line.append("running (o: its sweep)")
        elif result is None:
            line.append(f"not run yet (r: run quick, f: run full: {self.study.command(self.which)})", "dim")
        else:
            line.append_text(plain(result.get("verdict"), verdict_style(self.app, result.get("verdict"))))
            line.append(f"  {fmt_duration(result.get('seconds'))} wall, sweep ")
            line.append_text(plain(result.get("sweep")))
            if self.archived is not None:
                line.append(f"\n  as kept in {self.archived} (measured elsewhere; r/f run it here)", "dim")
        self.query_one("#verdict", Static).update(line)
        samples = [sample_text(sample) for sample in (result or {}).get("samples") or []]
        box = self.query_one("#samples", Static)
        box.update(Text("\n\n").join(samples))
        box.display = bool(samples)  # no blank line where a study has none
        table = self.query_one(DataTable)
        table.clear()
        if result is None:  # never run at this size: the study file's own checks, what they will test
            for check in self.study.checks:
                table.add_row(plain(check.label), plain(check.expected()), Text("-", justify="right"), Text(""),
                              Text("running" if self.process is not None else "not run", "dim"))
            return
        for check in result.get("checks") or []:
            seeds = " ".join(f"{s}:{fmt_metric(v) if isinstance(v, (int, float)) else '-'}"
                             for s, v in (check.get("per_seed") or {}).items())
            measured = check.get("measured")
            outcome = str(check.get("outcome"))
            table.add_row(plain(check.get("label")), plain(check.get("expected")),
                          Text(fmt_metric(measured) if isinstance(measured, (int, float)) else "-", justify="right"),
                          plain(seeds), plain(outcome + (f" ({check['reason']})" if check.get("reason") else ""),
                                              {"pass": "green", "fail": "red"}.get(outcome, "yellow")))

    def action_toggle_size(self) -> None:
        self.which = "full" if self.which == "quick" else "quick"
        self.read_result()

    def action_open_sweep(self) -> None:
        record = store.StudyDir(self.runs_dir, self.study.name, self.which).read_record()
        try:
            sweep = store.find_sweep(self.runs_dir, str((record or {}).get("sweep") or ""))
        except RnnlabError:
            notify(self, f"{self.study.name} ({self.which}) has no sweep yet", title="Study")
            return
        self.app.open_sweep(sweep)

    def action_launch(self, size: str) -> None:
        if self.process is not None:
            notify(self, f"{self.study.name} is already running", title="Study")
            return
        self.which = size
        home = store.StudyDir(self.runs_dir, self.study.name, size)
        before = (home.read_record() or {}).get("sweep")
        log = store.reproduce_log(self.runs_dir, self.study.name, size)
        try:
            self.process = worker.start_reproduce(self.runs_dir, str(self.study.path), size, log=log)
        except OSError as error:
            notify(self, f"cannot start rnnlab reproduce: {error}", title="Study", severity="error")
            return
        self.app.children_started.append(self.process)  # the quit prompt offers to stop it
        self.paint()
        self._wait_for_sweep(home, before, self.process)

    @work(thread=True, exclusive=True, group="study-launch", exit_on_error=False)
    def _wait_for_sweep(self, home: store.StudyDir, before: str | None, process) -> None:
        """Open the sweep once the reproduce process has made or reopened it (or has ended)."""
        import time

        while not get_current_worker().is_cancelled:
            record = home.read_record() or {}
            sweep_id, ended = record.get("sweep"), process.poll() is not None
            if sweep_id and (sweep_id != before or ended or self._running(sweep_id)):
                try:
                    sweep = store.find_sweep(self.runs_dir, sweep_id)
                except RnnlabError:
                    return
                self.app.call_from_thread(self.app.open_sweep, sweep)
                return
            if ended:
                return  # poll() reports the exit (a bad study file: the log says why)
            time.sleep(0.1)

    def _running(self, sweep_id: str) -> bool:
        try:
            return store.find_sweep(self.runs_dir, sweep_id).read().get("state") == "running"
        except RnnlabError:
            return False
