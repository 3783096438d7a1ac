"""The new-run form's widgets: the preset picker, a labelled field per key with its problem line, the
sweep field, the form's problem and note lines, Launch. The launch screen (screens/launch.py) mounts it
once the registries are loaded (the arch and task pickers list their entries), fills and checks it, and
styles it (LaunchScreen's CSS)."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Input, Label, Select, Static, TextArea

from ..launch_fields import DEVICES, FIELDS, field_id, field_info, preset_label, registries
from ..literal import plain
from .problem import ProblemLine


class LaunchForm(Vertical):
    DEFAULT_CSS = "LaunchForm { height: 1fr; }"

    def __init__(self, presets: list[Path]):
        super().__init__(id="launch-form")
        self.presets = presets
        self.choices: dict[str, list[tuple[str, str]]] = {}  # (label, value) of each Select field

    def compose(self) -> ComposeResult:
        # Text prompts: a str prompt is parsed as markup, and a preset's comment line is anybody's text.
        choices = [("defaults - every key at its default", "")] + [(plain(preset_label(p)), str(p))
                                                                   for p in self.presets]
        first = next((p for p in self.presets if p.stem == "quickstart"), self.presets[0] if self.presets else "")
        with Horizontal(id="preset-row", classes="field"):
            yield Label("preset")
            yield Select(choices, value=str(first), allow_blank=False, compact=True, id="preset")
        with VerticalScroll(id="form"):
            for key in FIELDS:
                with Vertical(classes="row"):
                    with Horizontal(classes="field"):
                        yield Label(key)
                        yield self._make_widget(key)
                    yield ProblemLine(id=field_id(key, "problem"))
            with Vertical(classes="row"):
                with Horizontal(classes="field"):
                    yield Label("sweep")
                    yield TextArea(id="field-sweep", compact=True, soft_wrap=False,
                                   placeholder="key=v1,v2,... a line: a sweep (empty: one run)")
                yield ProblemLine(id="problem-sweep")
        yield ProblemLine(id="problem")
        yield ProblemLine(id="note", classes="hint")  # keys of the preset a switched arch/task drops
        with Horizontal(id="actions"):
            yield Button("Launch", variant="primary", compact=True, id="launch", disabled=True)
            yield Static("", id="help", classes="hint")  # the focused field's meaning, or the launch's progress

    def _make_widget(self, key: str):
        if key in registries():  # generated from the registry, with each entry's one-line summary
            options = [(f"{name} - {cls.summary}", name) for name, cls in registries()[key].items()]
        elif key == "device":
            options = [(name, name) for name in DEVICES]
        else:
            info = field_info(key)
            if info is None or not info[1]:
                return Input(compact=True, id=field_id(key), select_on_focus=False)
            options = [(str(choice), str(choice)) for choice in info[1]]
        self.choices[key] = options
        return Select(options, allow_blank=False, compact=True, id=field_id(key))
