"""New run: pick a preset (or an architecture and a task), edit the key hyperparameters, launch.

The form has no rules of its own: every change re-runs `config.resolve` on the
preset plus the changed fields as `--set` overrides, so the inline messages are
exactly what `rnnlab run` would print, and Launch starts that very command.
Switching the arch or the task drops the preset's keys the new one lacks, by
config's own rule (drop_foreign_keys), and the form shows its note.

The architecture and task registries import torch (about 2 s): the screen opens
at once with a loading indicator, a thread imports them (the app also warms them
up in the background, see RnnlabApp.warm_up), and the form is mounted after.
Its widgets are widgets/launch_form.py; its fields (keys, help, choices) tui/launch_fields.py.
"""

from __future__ import annotations

from pathlib import Path

import tomli_w

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Input, LoadingIndicator, Select, Static, TextArea
from textual.worker import get_current_worker

from ... import config, selection, store, worker
from ...errors import ConfigError
from ..launch_fields import FIELDS, as_text, choice, field_id, field_info, lookup, registries
from ..literal import plain
from ..widgets.launch_form import LaunchForm
from ..widgets.problem import ProblemLine


def _error_line(log: Path, code: int | None) -> str:
    """The child's one-line error (`rnnlab run` prints `error: ...` and exits)."""
    try:
        lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        lines = []
    errors = [line for line in lines if line.startswith("error:")]
    return (errors or lines or [f"error: rnnlab run exited with code {code} before creating a run"])[-1]


class LaunchScreen(Screen):
    SUB_TITLE = "new run"
    BINDINGS = [
        Binding("ctrl+l", "launch", "Launch", priority=True),  # priority: an Input would swallow it
        Binding("escape", "cancel", "Cancel"),
    ]
    DEFAULT_CSS = """
    LaunchScreen #form { height: 1fr; padding: 0 1; }
    LaunchScreen .field, LaunchScreen .row, LaunchScreen #actions { height: auto; }
    LaunchScreen .field Label { width: 18; color: $text-muted; }
    LaunchScreen .field Input, LaunchScreen .field Select { width: 1fr; }
    LaunchScreen .row .problem { margin-left: 17; }  /* under the input (app.tcss pads problems by 1) */
    LaunchScreen .field SelectCurrent #label { text-wrap: nowrap; text-overflow: ellipsis; }
    LaunchScreen #preset-row, LaunchScreen #actions { padding: 0 1; }
    LaunchScreen #actions Static { width: 1fr; }
    LaunchScreen .problem, LaunchScreen .hint { height: auto; }
    LaunchScreen #loading { height: 1fr; align: center middle; }
    LaunchScreen #loading LoadingIndicator { height: 3; }
    LaunchScreen #loading Static { width: 100%; text-align: center; }
    LaunchScreen #field-sweep { width: 1fr; height: 3; }
    """

    def __init__(self, runs_dir: Path, experiments_dir: Path):
        super().__init__()
        self.runs_dir, self.experiments_dir = Path(runs_dir), Path(experiments_dir)
        self.presets = sorted(self.experiments_dir.glob("*.toml")) if self.experiments_dir.is_dir() else []
        self.preset: Path | None = None
        self.raw: dict = {}
        self.preset_error: str | None = None  # the preset file is unreadable (its bad values show per field)
        self.initial: dict[str, str] = {}  # what the preset says: only departures become overrides
        self.valid = False
        self.form_filled = False  # load_preset has run once (see _show_form)
        self.launching = False
        self.validated: tuple = ()  # the form as last validated
        self.sweep_lines: list[str] = []  # the sweep field's `key=v1,v2,...` lines: launching starts a sweep

    # -- layout --------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header()
        # The form (about 200 widgets) takes ~0.5 s to build: the screen answers the key at once with this,
        # and the form follows (at once when the app's warm-up has imported the registries, else ~2 s).
        with Vertical(id="loading"):
            yield LoadingIndicator()
            yield Static("loading the architectures and tasks ...", classes="hint")
        yield Footer()

    def on_mount(self) -> None:
        self._prepare()

    @work(thread=True, exclusive=True, group="prepare", exit_on_error=False)
    def _prepare(self) -> None:
        """Import the registries and describe the fields off the UI thread, then show the form."""
        try:
            registries()
            for key in FIELDS:
                field_info(key)
        except Exception as error:  # noqa: BLE001 - a broken install: say so instead of spinning forever
            self.app.call_from_thread(self._not_loaded, f"cannot load the architectures and tasks: {error}")
            return
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._show_form)

    def _not_loaded(self, message: str) -> None:
        if self.is_mounted:
            self.query_one("#loading LoadingIndicator").display = False
            self.query_one("#loading Static", Static).update(plain(message))
            self.query_one("#loading Static", Static).set_classes("problem")

    async def _show_form(self) -> None:
        if not self.is_mounted:  # escape before the registries were in
            return
        await self.mount(LaunchForm(self.presets), before=self.query_one(Footer))
        await self.query_one("#loading").remove()
        if not self.form_filled:  # the preset Select's first Changed may have filled it during the awaits;
            self.load_preset(self.query_one("#preset", Select).value or None)  # again would undo typing
        if self.focused is None:  # the form is usable from the first await on: a field clicked since keeps it
            self.query_one("#preset", Select).focus()

    def widget(self, key: str) -> Input | Select:
        return self.query_one(f"#{field_id(key)}")

    # -- the preset and the form ---------------------------------------------------------
    def load_preset(self, path: str | None) -> None:
        """Read a preset and prefill every field from it (its value, else the default)."""
        self.form_filled = True
        self.preset, self.raw, self.preset_error = (Path(path) if path else None), {}, None
        try:
            self.raw = config.read_toml(self.preset) if self.preset else {}
        except ConfigError as error:
            self.preset_error = str(error)
        chosen = choice({key: lookup(self.raw, key) for key in registries()})
        for key in FIELDS:
            value = lookup(self.raw, key)
            if value is None:
                info = field_info(key, chosen)
                value = info[0]["default"] if info else ""
            self.initial[key] = as_text(value)
        for key in FIELDS:
            widget = self.widget(key)
            if isinstance(widget, Select):
                options = self.query_one(LaunchForm).choices[key]
                if self.initial[key] not in [value for _, value in options]:  # e.g. cuda:1, or an unknown arch
                    options = [*options, (plain(self.initial[key]), self.initial[key])]
                widget.set_options(options)
            widget.value = self.initial[key]
        self.validate(force=True)

    def value(self, key: str) -> str:
        return str(self.widget(key).value)

    def selected(self) -> tuple:
        """The form's arch/task, for field_info."""
        return choice({key: self.value(key) for key in registries()})

    def overrides(self) -> list[str]:
        """`--set key=value` for each field that departs from the preset (enabled fields only)."""
        return [f"{key}={self.value(key)}" for key in FIELDS
                if not self.widget(key).disabled and self.value(key) != self.initial.get(key)]

    def validate(self, force: bool = False) -> None:
        """Resolve preset + overrides exactly as `rnnlab run` will; show the first error where it belongs."""
        seen = (self.preset, *(self.value(key) for key in FIELDS), self.query_one("#field-sweep", TextArea).text)
        if seen == self.validated and not force:
            return  # prefilling posts a Changed per field; one check of the same form is enough
        self.validated = seen
        for key in FIELDS:
            self._problem(key, "")
        self.query_one("#problem", ProblemLine).say(self.preset_error or "")
        self.query_one("#note", ProblemLine).say("")
        kept = selection.prune_to_selection(FIELDS, {key: self.value(key) for key in FIELDS})
        for key in FIELDS:  # a key the chosen arch/task does not have is greyed out, not sent
            self.widget(key).disabled = key not in kept
        self.valid = self.preset_error is None
        if self.valid:
            from ...tasks.corpus import EMBEDDED, read_text_file  # loaded by _prepare: no cost here

            try:
                # A switched arch/task drops the preset's keys it lacks, as `rnnlab run` will: say which.
                cfg = config.resolve(self.raw, self.overrides(), self.preset.name if self.preset else None)
                self.query_one("#note", ProblemLine).say(*(f"note: {line}" for line in cfg.notes))
                corpus = getattr(cfg.task, "corpus", None)
                # The corpus is read when the task is built, not in resolve(); a missing path is
                # cheap to see now (read_text_file fails on it before reading anything).
                if corpus not in (None, EMBEDDED) and not Path(corpus).is_file():
                    read_text_file(corpus)
            except ConfigError as error:
                self.show_error(str(error))
        self.validate_sweep()
        self.query_one("#launch", Button).disabled = not self.valid or self.launching

    def validate_sweep(self) -> None:
        """The sweep field, read as `rnnlab sweep --sweep` reads each line (added to the preset's [sweep])."""
        from ...sweeps.spec import build_spec

        text = self.query_one("#field-sweep", TextArea).text
        self.sweep_lines = [line.strip() for line in text.splitlines() if line.strip()]
        self.query_one("#problem-sweep", ProblemLine).say("")
        if not self.sweep_lines:
            return
        table = self.raw.get("sweep") if isinstance(self.raw.get("sweep"), dict) else {}
        try:
            count = len(build_spec(table, self.sweep_lines).expand())
        except ConfigError as error:
            self.valid = False
            self.query_one("#problem-sweep", ProblemLine).say(str(error).removeprefix("error: "))
            return
        if self.valid:
            trials = f"{count} trial{'s' * (count != 1)}"
            self.query_one("#help", Static).update(f"a sweep of {trials}: ctrl+l starts rnnlab sweep")

    def show_error(self, message: str) -> None:
        """Put a config message under its field (the key starts the message), else below the form."""
        self.valid = False
        key = message.removeprefix("error: ").split(" = ", 1)[0]
        if key in FIELDS:
            self._problem(key, message.removeprefix("error: "))
        else:
            self.query_one("#problem", ProblemLine).say(message.removeprefix("error: "))

    def _problem(self, key: str, message: str) -> None:
        self.query_one(f"#{field_id(key, 'problem')}", ProblemLine).say(message)

    @on(Select.Changed, "#preset")
    def _preset_changed(self, event: Select.Changed) -> None:
        if event.value != event.select.value:  # a stale event (the Select's first values as it mounted): a
            return  # late reload would overwrite what the user has typed since
        if (str(event.value) or None) != (str(self.preset) if self.preset else None):  # not the first value
            self.load_preset(str(event.value) or None)

    @on(Input.Changed)
    @on(TextArea.Changed)
    @on(Select.Changed, ".field Select")
    def _field_changed(self, event) -> None:
        if event.control.id != "preset":
            self.validate()

    def on_descendant_focus(self, event) -> None:
        """The focused field's help line: what it means and what is allowed."""
        key = next((k for k in FIELDS if field_id(k) == event.widget.id), None)
        if event.widget.id == "preset":
            text = "preset: the experiment file the form starts from"
        elif event.widget.id == "field-sweep":
            text = ("sweep: one key=v1,v2,... a line, as `rnnlab sweep --sweep` (also seeds=0,1,2, trials=N); "
                    "each point is a run")
        elif key is None:
            return
        elif key in registries():
            name = self.value(key)
            registry = registries()[key]
            text = f"{key}: {registry.get(name).summary}" if name in registry.names() else key
        else:
            info = field_info(key, self.selected())
            text = f"{key}: {info[0]['help']} ({info[0]['allowed']})" if info else key
        self.query_one("#help", Static).update(plain(text))

    # -- launching -----------------------------------------------------------------------
    @on(Input.Submitted)
    @on(Button.Pressed, "#launch")
    def action_launch(self) -> None:
        if not self.valid or self.launching:
            return
        self.launching = True
        self.query_one("#launch", Button).disabled = True
        self.query_one("#help", Static).update(f"starting rnnlab {'sweep' if self.sweep_lines else 'run'} ...")
        preset = self.preset  # the child drops what validate's note named, by config's own rule
        if preset is None and self.sweep_lines:  # `rnnlab sweep` needs a file: the defaults, written out
            preset = store.write_launch_preset(self.runs_dir, tomli_w.dumps(self.raw))
        if self.sweep_lines:
            self._start_sweep(preset, list(self.sweep_lines), self.overrides())
        else:
            self._start(preset, self.overrides())

    def _start_sweep(self, preset: Path, sweeps: list[str], overrides: list[str]) -> None:
        """Start `rnnlab sweep`; once its record exists, show the sweep."""
        before = {sweep.id for sweep in store.list_sweeps(self.runs_dir)}
        self._launch("sweep", lambda log: worker.start_sweep(self.runs_dir, preset, sweeps, overrides, log=log),
                     lambda process, wait: store.find_new_sweep(self.runs_dir, before, process, timeout=wait),
                     lambda sweep, _process: self._replace_with(lambda: self.app.open_sweep(sweep)))

    def _start(self, preset: Path | None, overrides: list[str]) -> None:
        """Start `rnnlab run`; once its run directory exists, watch it live."""
        before = store.entry_names(self.runs_dir)
        self._launch("run", lambda log: worker.start(self.runs_dir, preset, overrides, log=log),
                     lambda process, wait: store.find_new_run(self.runs_dir, before, process, timeout=wait),
                     self._opened)

    @work(thread=True, exclusive=True, group="launch")
    def _launch(self, command: str, start, find, opened) -> None:
        """Start the child and wait, off the UI thread, for what it creates (`find`); then `opened(it, process)`."""
        log = store.launch_log(self.runs_dir, sweep=command == "sweep")
        try:
            process = start(log)
        except OSError as error:
            self.app.call_from_thread(self._failed, f"error: cannot start rnnlab {command}: {error}")
            return
        self.app.children_started.append(process)
        made = None
        # Short waits, so a closed screen stops waiting; the child keeps training either way.
        while made is None and process.poll() is None and not get_current_worker().is_cancelled:
            made = find(process, 0.5)
        if made is None and process.poll() is not None:  # it may have made it just before exiting
            made = find(process, 0.1)
        if get_current_worker().is_cancelled:
            return
        if made is None:
            self.app.call_from_thread(self._failed, _error_line(log, process.poll()))
        else:
            self.app.call_from_thread(opened, made, process)

    def _failed(self, line: str) -> None:
        self.launching = False
        self.query_one("#help", Static).update("")
        self.validate(force=True)
        self.show_error(line)
        self.query_one("#launch", Button).disabled = True

    def _opened(self, run, process) -> None:
        self._replace_with(lambda: self.app.open_live(run, process))

    def _replace_with(self, open_screen) -> None:
        if self.app.screen is self:  # else the user went elsewhere; the run is in the runs browser
            self.app.pop_screen()  # replace this screen: escape from the next goes back to the runs
            open_screen()

    def action_cancel(self) -> None:
        self.app.pop_screen()
