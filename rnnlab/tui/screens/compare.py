"""Compare runs: val and train loss curves overlaid, and the config keys that differ between them."""

from __future__ import annotations

from dataclasses import dataclass, field

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from ... import config
from ...curves import RunCurves
from ...errors import RnnlabError
from ...store import RunDir
from ...termplot import downsample, round_axes
from ..widgets.plots import RunPlot, next_smoothing
from ..widgets.table import Table
from ..literal import plain

MAX_POINTS = 200  # a plot is at most ~120 cells wide; braille doubles that: more points only cost time
MISSING = "-"  # the key does not exist in this run's config (e.g. an LSTM-only key on a GRU)
UNKNOWN = "?"  # this run's config could not be read


def flatten(values: dict, prefix: str = "") -> dict[str, object]:
    """{"model": {"arch": "lstm"}, "seed": 0} -> {"model.arch": "lstm", "seed": 0}."""
    out = {}
    for key, value in values.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def read_config(run: RunDir) -> tuple[dict | None, str | None]:
    """The run's flattened config, or None and why not (never raises: a bad run must not hide the rest)."""
    try:
        raw = config.read_toml(run.config_path)
        if not raw:  # an empty file would resolve to all defaults and pass for a real config
            return None, "config.toml is empty"
        return flatten(config.resolve(raw).to_dict()), None
    except (RnnlabError, OSError, ValueError) as error:
        return None, str(error)


def differing_keys(configs: list[dict | None]) -> list[str]:
    """Keys whose value is not the same in every readable config (or missing from some)."""
    readable = [c for c in configs if c is not None]
    keys = sorted({key for c in readable for key in c})
    return [key for key in keys if len({repr(c.get(key, MISSING)) for c in readable}) > 1]


def labels_for(runs: list[RunDir], names: list[str]) -> list[str]:
    """Short labels for legends and columns: the config name when unique, else name + the id's suffix."""
    if all(names) and len(set(names)) == len(names):
        return list(names)
    labels = [f"{name or 'run'}-{run.id.rsplit('-', 1)[-1]}" for run, name in zip(runs, names)]
    return labels if len(set(labels)) == len(labels) else [run.id for run in runs]


@dataclass
class Loaded:
    """What the loading thread hands to the screen."""

    labels: list[str]
    val: dict[str, tuple[list, list]] = field(default_factory=dict)  # label -> (steps, losses)
    train: dict[str, tuple[list, list]] = field(default_factory=dict)
    configs: list[dict | None] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    val_title: str = "val loss (nats/token)"
    train_title: str = "train loss (nats/token)"


def load(runs: list[RunDir]) -> Loaded:
    configs, notes, names = [], [], []
    for run in runs:
        flat, problem = read_config(run)
        configs.append(flat)
        names.append(str(flat.get("name", "")) if flat else "")
        if problem:
            notes.append(f"{run.id}: config unreadable ({problem}); its values show as {UNKNOWN}")
    loaded = Loaded(labels_for(runs, names), configs=configs, notes=notes)
    every: list[RunCurves] = []
    for run in runs:
        curves = RunCurves()
        try:
            curves.feed(run.read_events())
        except (OSError, KeyError, TypeError, ValueError) as error:  # a malformed event: plot what we have
            notes.append(f"{run.id}: events unreadable ({error.__class__.__name__})")
        every.append(curves)
    units = {(curves.start or {}).get("loss_unit", "nats/token") for curves in every}
    unit = units.pop() if len(units) == 1 else None
    # Language models over different tokens (characters, words, subwords) compare per character.
    per_char = unit is None and all(curves.val_bpc.xs for curves in every)
    for curves, label in zip(every, loaded.labels):
        val = curves.val_bpc if per_char else curves.val_loss
        loaded.val[label] = downsample(val.xs, val.ys, MAX_POINTS)
        loaded.train[label] = downsample(curves.train_loss.xs, curves.train_loss.ys, MAX_POINTS)
    if per_char:
        loaded.val_title, loaded.train_title = "val bits/char", "train loss (per token: units differ)"
    elif unit is None:
        loaded.val_title, loaded.train_title = "val loss (units differ)", "train loss (units differ)"
        notes.append(f"the runs measure their loss in different units ({', '.join(sorted(units))})")
    else:
        loaded.val_title, loaded.train_title = f"val loss ({unit})", f"train loss ({unit})"
    return loaded


def _shown(value) -> str:
    return "true" if value is True else "false" if value is False else str(value)


class ComparePlot(RunPlot):
    """One curve per run, the legend below the plot (wrapped to fit, any number of runs), drawn again at a
    new size; the train curves (every step) smoothed when the screen asks, as in the live view."""

    heading = "compare"

    def show(self, title: str, series: dict[str, tuple[list, list]], every_step: bool = False) -> None:
        if not self.start_drawing((title, id(series)), lambda: self.show(title, series, every_step)):
            return
        plt = self.plt
        for label, (xs, ys) in series.items():
            self.line(label, xs, ys, thin=every_step)  # the legend shows labels through visible()
        round_axes(plt, self.drawn_x, self.drawn_y, self.size.width or 60, self.size.height or 15)
        plt.xlabel("step")
        self.shown_title = title
        self.refresh()


class CompareScreen(Screen):
    BINDINGS = [Binding("escape", "app.pop_screen", "Back"),
                Binding("w", "smooth", "Smooth", tooltip="The train curves' EMA weight: off, 0.6, 0.9, 0.99")]
    DEFAULT_CSS = """
    CompareScreen #plots { height: 1fr; min-height: 8; }
    CompareScreen #diff { height: auto; max-height: 45%; }
    CompareScreen #notes { height: auto; }
    """

    def __init__(self, runs: list[RunDir]):
        super().__init__()
        self.runs = list(runs)
        self.loaded: Loaded | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="plots"):
            yield ComparePlot(id="val")
            yield ComparePlot(id="train")
        yield Static("config keys that differ", classes="title")
        yield Table(id="diff", cursor_type="row", zebra_stripes=True)
        yield Static("loading ...", id="notes", classes="hint")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = f"compare {len(self.runs)} runs"
        self.load_runs()

    @work(thread=True, exit_on_error=False)
    def load_runs(self) -> None:
        # Event logs of long runs are megabytes of JSON: parse them off the UI thread.
        loaded = load(self.runs)
        self.app.call_from_thread(self.show, loaded)

    @property
    def val_series(self) -> dict[str, tuple[list, list]]:
        return self.loaded.val if self.loaded else {}

    @property
    def train_series(self) -> dict[str, tuple[list, list]]:
        return self.loaded.train if self.loaded else {}

    def show(self, loaded: Loaded) -> None:
        if not self.is_mounted:  # closed (escape) before the logs were read
            return
        self.loaded = loaded
        with self.app.batch_update():  # both plots and the table in one repaint
            self.plot("#val", loaded.val_title, loaded.val)
            self.plot("#train", loaded.train_title, loaded.train)
            self.fill_table(loaded)
        notes = list(loaded.notes)
        if not any(xs for xs, _ in loaded.val.values()):
            notes.append("no validation points yet (the first comes at train.eval_every)")
        self.query_one("#notes", Static).update(plain("\n".join(notes), keep="\n"))  # notes echo ids, errors
        self.query_one("#notes", Static).display = bool(notes)

    def plot(self, selector: str, title: str, series: dict[str, tuple[list, list]]) -> None:
        self.query_one(selector, ComparePlot).show(title, series, every_step=selector == "#train")

    def action_smooth(self) -> None:
        plot = self.query_one("#train", ComparePlot)
        plot.smoothing = next_smoothing(plot.smoothing)
        if self.loaded is not None:
            self.plot("#train", self.loaded.train_title, self.loaded.train)

    def fill_table(self, loaded: Loaded) -> None:
        table = self.query_one("#diff", DataTable)
        table.clear(columns=True)
        table.add_column("key", key="key")
        for label in loaded.labels:
            table.add_column(plain(label))
        keys = differing_keys(loaded.configs)
        for key in keys:  # Text cells: a str cell is parsed as markup, and config values are anybody's
            table.add_row(plain(key), *(plain(UNKNOWN if c is None else _shown(c.get(key, MISSING)))
                                        for c in loaded.configs), key=key)
        if not keys and sum(c is not None for c in loaded.configs) > 1:
            loaded.notes.append("the configs are identical (the runs differ only by chance)")
