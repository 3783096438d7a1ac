"""The rnnlab app: runs browser (home), launch, live view, sample, help.

`make_app()` is the factory tests use; `rnnlab` (no arguments, in a terminal)
and `rnnlab tui [RUN]` run it.
"""

from __future__ import annotations

import subprocess
from functools import partial
from pathlib import Path

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.markup import escape

from ..literal import visible
from ..store import RunDir, default_runs_dir, find_run

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"  # presets of a source checkout


class RnnlabApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "rnnlab"
    SUB_TITLE = "a terminal lab for recurrent neural networks"
    BINDINGS = [
        Binding("question_mark", "help", "Help"),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    def __init__(self, runs_dir: Path | None = None, open_run: str | None = None,
                 experiments_dir: Path | None = None):
        super().__init__()
        self.runs_dir = Path(runs_dir) if runs_dir is not None else default_runs_dir()
        self.experiments_dir = experiments_dir if experiments_dir is not None else EXPERIMENTS
        self.open_run_ref = open_run
        self.children_started: list[subprocess.Popen] = []  # trainers launched from this app

    def on_mount(self) -> None:
        from .screens.runs import RunsScreen

        self.push_screen(RunsScreen(self.runs_dir))
        if self.open_run_ref:
            self.open_live(find_run(self.runs_dir, self.open_run_ref))
        self.warm_up()

    @work(thread=True, exclusive=True, group="warm-up", exit_on_error=False)
    def warm_up(self) -> None:
        """Import the model and task registries (torch, ~2 s of one core, once) while the user reads the
        browser: the new-run form then shows at once instead of after a frozen pause."""
        from .screens.launch import registries

        registries()

    # -- navigation used by every screen -------------------------------------------------
    def open_live(self, run: RunDir, process: subprocess.Popen | None = None) -> None:
        from .screens.live import LiveScreen

        self.push_screen(LiveScreen(run, process))

    def open_sample(self, run: RunDir) -> None:
        from .screens.sample import SampleScreen

        self.push_screen(SampleScreen(run))

    def open_attention(self, run: RunDir) -> None:
        from .screens.attention import AttentionScreen

        self.push_screen(AttentionScreen(run))

    def open_caption(self, run: RunDir) -> None:
        from .screens.caption import CaptionScreen

        self.push_screen(CaptionScreen(run))

    def open_heads(self, run: RunDir) -> None:
        from .screens.heads import HeadsScreen

        self.push_screen(HeadsScreen(run))

    def open_launch(self) -> None:
        from .screens.launch import LaunchScreen

        self.push_screen(LaunchScreen(self.runs_dir, self.experiments_dir))

    def open_sweep(self, sweep) -> None:
        from .screens.sweep import SweepScreen

        self.push_screen(SweepScreen(sweep))

    def open_compare(self, runs: list[RunDir]) -> None:
        from .screens.compare import CompareScreen

        self.push_screen(CompareScreen(runs))

    def action_help(self) -> None:
        from .screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    # -- quitting ---------------------------------------------------------------------------
    def running_children(self) -> list[subprocess.Popen]:
        return [process for process in self.children_started if process.poll() is None]

    async def action_quit(self) -> None:
        """Quit; but trainers started here outlive the app (their own process groups): ask about them first."""
        from .screens.quit import QuitScreen, describe

        running = self.running_children()
        if not running:
            self.exit()
        elif not isinstance(self.screen, QuitScreen):
            self.push_screen(QuitScreen(describe(running, self.runs_dir)), self.quit_answered)

    def quit_answered(self, answer: str | None) -> None:
        from .. import worker

        running = self.running_children()
        if answer == "stop":
            for process in running:
                worker.stop(process.pid)  # SIGINT: each finishes its step, checkpoints, records `stopped`
            self.exit(message=f"rnnlab: asked {len(running)} trainer(s) to stop (pid "
                              f"{', '.join(str(p.pid) for p in running)}); they checkpoint and record `stopped`.")
        elif answer == "leave":
            self.exit(message=f"rnnlab: {len(running)} trainer(s) left running (pid "
                              f"{', '.join(str(p.pid) for p in running)}); `rnnlab tui` shows and stops them.")

    def get_system_commands(self, screen):
        yield from super().get_system_commands(screen)
        yield SystemCommand("New run", "Choose an architecture and a task, and train", self.open_launch)
        yield SystemCommand("Help", "Every key binding", self.action_help)
        for run in self.recent_runs(8):  # the palette parses titles as markup: a run id is shown literally
            yield SystemCommand(f"Open run {escape(visible(run.id))}", "Watch it live or browse its plots",
                                partial(self.open_live, run))

    def recent_runs(self, count: int) -> list[RunDir]:
        from ..store import list_runs

        return [RunDir(summary.path) for summary in list_runs(self.runs_dir)[:count]]


def make_app(runs_dir: Path | None = None, open_run: str | None = None,
             experiments_dir: Path | None = None) -> RnnlabApp:
    return RnnlabApp(runs_dir, open_run, experiments_dir)
