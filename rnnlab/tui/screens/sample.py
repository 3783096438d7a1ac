"""Sample: stream text from a run's checkpoint, then colour it by a hidden unit or by surprisal.

Loading and generating run in thread workers (torch must never block the
UI); characters reach the screen in small batches as they are generated.
"""

from __future__ import annotations

import math
import time

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Input, Label, Select, Static
from textual.worker import get_current_worker

from ...console import colour_by_values
from ...errors import ConfigError
from ...literal import visible
from ...store import RunDir
from ..literal import plain
from ..widgets.problem import ProblemLine

FLUSH_SECONDS = 0.03  # batch characters: one repaint per ~30 ms, not one per character


def parse_prompt(text: str) -> str:
    r"""A one-line Input cannot hold a newline or a tab: `\n` and `\t` stand for them."""
    return text.replace("\\n", "\n").replace("\\t", "\t")


def _number(key: str, text: str, kind, *, low, allowed: str, blank=False):
    """Parse one setting; a bad one is a ConfigError naming it, like the CLI's options."""
    if blank and not text.strip():
        return None
    try:
        value = kind(text)
    except ValueError:
        raise ConfigError(key, text, f"expected {'an integer' if kind is int else 'a number'}", allowed) from None
    if not math.isfinite(value) or value < low:
        raise ConfigError(key, value, "out of range", allowed)
    return value


def _fraction(text: str):
    value = _number("--top-p", text, float, low=0, allowed="a number in (0, 1] (blank: all)", blank=True)
    if value is not None and not 0 < value <= 1:
        raise ConfigError("--top-p", value, "out of range", "a number in (0, 1] (blank: all)")
    return value


def colour_by_surprisal(pieces: list[str], bits: list[float], vocab_size: int) -> Text:
    """Dim green for expected tokens, bright red for surprising ones (scale: a uniform guess)."""
    scale = math.log2(max(vocab_size, 2))
    out = Text()
    for piece, value in zip(pieces, bits):
        level = min(value / scale, 1.0)
        background = f"rgb({int(30 + 200 * level)},{int(90 * (1 - level))},{int(20 * (1 - level))})"
        out.append(piece.replace("\n", "↵\n"), style=f"white on {background}")
    return out


class SampleScreen(Screen):
    SUB_TITLE = "sample"
    AUTO_FOCUS = "#output"  # so g/u/v work at once; the prompt is one tab away
    BINDINGS = [
        Binding("g", "generate", "Generate"),
        Binding("u", "colour('unit')", "Unit colours"),
        Binding("v", "colour('surprisal')", "Surprisal"),
        Binding("o", "colour('off')", "Plain"),
        Binding("left_square_bracket", "unit(-1)", "Previous unit", show=False),  # the legend names [ ]
        Binding("right_square_bracket", "unit(1)", "Next unit", show=False),
        Binding("escape", "back", "Back"),
    ]
    DEFAULT_CSS = """
    SampleScreen .controls { height: auto; padding: 0 1; }
    SampleScreen .controls Label { padding: 0 1 0 0; color: $text-muted; }
    SampleScreen .controls Input { width: 8; margin-right: 1; }
    SampleScreen #prompt { width: 1fr; }
    SampleScreen .controls Input.narrow { width: 5; }
    SampleScreen #checkpoint { width: 12; }
    SampleScreen #output { height: 1fr; border: round $primary 50%; padding: 0 1; }
    SampleScreen #output:focus { border: round $primary; }
    SampleScreen .problem, SampleScreen .hint { height: auto; }
    """

    def __init__(self, run: RunDir):
        super().__init__()
        self.run = run
        self.loaded = None  # sampling.LoadedModel once the checkpoint is in
        self.prompt, self.generated = "", ""
        self.record: dict | None = None  # unit_activations of prompt + generated, once generation ends
        self.vocab_size = 0
        self.mode = "off"  # off | unit | surprisal
        self.unit_layer, self.unit = 0, 0
        self.serial = 0  # the generation whose chunks are wanted; older workers' late chunks are dropped
        self.which = "best"  # the checkpoint shown
        self.state = "loading"  # loading | ready | generating | done | error
        self.rendered = Text()

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(classes="controls"):
            yield Label("prompt")
            yield Input("\\n", id="prompt", compact=True, select_on_focus=False,
                        tooltip="the text to continue; \\n stands for a newline, \\t for a tab")
            for label, name, tip in (("top-p", "top_p", "nucleus: sample among the likeliest characters that "
                                      "together reach p (blank: all)"),
                                     ("beam", "beam", "beam search with this many hypotheses: the most likely "
                                      "continuation it finds, shown at the end (blank: sample)")):
                yield Label(label)
                yield Input("", id=name, compact=True, placeholder="-", tooltip=tip, classes="narrow")
            yield Select([("best", "best"), ("last", "last")], value="best", allow_blank=False,
                         compact=True, id="checkpoint")
        with Horizontal(classes="controls"):
            for label, name, value in (("temp", "temperature", "0.8"), ("top-k", "top_k", ""),
                                       ("length", "length", "400"), ("seed", "seed", "")):
                yield Label(label)
                yield Input(value, id=name, compact=True, placeholder="-")
            yield Button("Generate", id="generate", compact=True, variant="primary")
        yield ProblemLine(id="problem")  # errors echo the prompt and the vocabulary
        yield Static("", id="info", classes="hint")
        with VerticalScroll(id="output", can_focus=True):
            yield Static("", id="text")
        yield ProblemLine(id="legend", classes="hint")
        yield Footer()

    def on_mount(self) -> None:
        self.load("best")

    # -- loading -------------------------------------------------------------------------
    @on(Select.Changed, "#checkpoint")
    def _checkpoint_changed(self, event: Select.Changed) -> None:
        if event.value != self.which:  # not the Select announcing its first value
            self.load(str(event.value))

    def load(self, which: str) -> None:
        self.which = which
        self.serial += 1  # a generation from the previous model is no longer wanted
        self.loaded = None
        self._set_state("loading", f"{self.run.id}: loading the {which} checkpoint ...")
        self._load(which)

    @work(thread=True, exclusive=True, group="model")
    def _load(self, which: str) -> None:
        from ...sampling import load_language_model  # imports torch: off the UI thread

        try:
            loaded = load_language_model(self.run, which)
        except Exception as error:  # missing, corrupt, foreign: one line, never a crash
            message = str(error).splitlines()[0] if str(error) else error.__class__.__name__
            loaded = None
        if get_current_worker().is_cancelled:
            return
        if loaded is None:
            self.app.call_from_thread(self._load_failed, message)
        else:
            self.app.call_from_thread(self._loaded, loaded, which)

    def _loaded(self, loaded, which: str) -> None:
        self.loaded = loaded
        model = loaded.cfg.model
        if which == "best" and not self.run.checkpoint("best").is_file():
            which = "last"  # a run stopped before its first evaluation has no best.pt yet
        self._set_state("ready", f"{self.run.id}  {which} checkpoint, step {loaded.step}  "
                                 f"{model.arch} {model.layers}x{model.hidden}  vocab {len(loaded.vocab)}")
        prompt = self.query_one("#prompt", Input)
        if prompt.value == "\\n":  # the default: where the text had no new lines, the one `rnnlab sample` takes
            from ...sampling import default_prompt

            prompt.value = default_prompt(loaded.vocab).replace("\n", "\\n").replace("\t", "\\t")
        self._check_prompt()

    def _load_failed(self, message: str) -> None:
        self.loaded = None
        self._set_state("error", message)
        self.query_one("#info", Static).set_classes("problem")

    def _set_state(self, state: str, info: str) -> None:
        self.state = state
        line = self.query_one("#info", Static)
        line.set_classes("hint")
        line.update(plain(info))  # the run id, a checkpoint's error: literal

    # -- generating ----------------------------------------------------------------------
    def settings(self) -> dict:
        """The generation settings from the form (ConfigError naming the bad one)."""
        read = {name: self.query_one(f"#{name}", Input).value
                for name in ("temperature", "top_k", "top_p", "beam", "length", "seed")}
        return {
            "prompt": parse_prompt(self.query_one("#prompt", Input).value),
            "temperature": _number("--temperature", read["temperature"], float, low=0, allowed="a number >= 0"),
            "top_k": _number("--top-k", read["top_k"], int, low=1, allowed="an integer >= 1 (blank: all)", blank=True),
            "top_p": _fraction(read["top_p"]),
            "beam": _number("--beam", read["beam"], int, low=1, allowed="an integer >= 1 (blank: sample)", blank=True),
            "length": _number("--length", read["length"], int, low=1, allowed="an integer >= 1"),
            "seed": _number("--seed", read["seed"], int, low=0, allowed="an integer >= 0 (blank: random)", blank=True),
        }

    @on(Input.Changed)
    def _check_prompt(self) -> bool:
        """Check the settings (and the prompt against the vocabulary) as they are typed."""
        try:
            settings = self.settings()
            if self.loaded is not None:
                if not settings["prompt"]:
                    raise ConfigError("--prompt", "", "must not be empty", "at least one character")
                self.loaded.vocab.encode(settings["prompt"])
        except ConfigError as error:
            self.query_one("#problem", ProblemLine).say(str(error))
            return False
        self.query_one("#problem", ProblemLine).say("")
        return True

    @on(Input.Submitted)
    @on(Button.Pressed, "#generate")
    def action_generate(self) -> None:
        if self.loaded is None or not self._check_prompt():
            return
        settings = self.settings()
        self.serial += 1
        self.prompt, self.generated, self.record = settings["prompt"], "", None
        self.state = "generating"
        self._repaint()
        self._generate(self.serial, self.loaded, settings)

    @work(thread=True, exclusive=True, group="model")  # a new generation (or load) cancels this one
    def _generate(self, serial: int, loaded, settings: dict) -> None:
        from ...probes.activations import unit_activations
        from ...sampling import beam_generate, generate

        this = get_current_worker()
        produced, flushed_at, flushed = [], 0, time.monotonic()
        try:
            if settings["beam"] is not None:  # the best hypothesis is known only at the end: one chunk
                stream = iter(beam_generate(loaded.model, loaded.vocab, settings["prompt"], settings["length"],
                                            settings["beam"])[0])
            else:
                stream = generate(loaded.model, loaded.vocab, settings["prompt"], settings["length"],
                                  settings["temperature"], settings["top_k"], seed=settings["seed"],
                                  top_p=settings["top_p"])
            for piece in stream:
                if this.is_cancelled:
                    return
                produced.append(piece)
                if time.monotonic() - flushed > FLUSH_SECONDS:
                    self.app.call_from_thread(self._add, serial, "".join(produced[flushed_at:]))
                    flushed_at, flushed = len(produced), time.monotonic()
            self.app.call_from_thread(self._add, serial, "".join(produced[flushed_at:]))
            # Activations of the whole text, once: switching colourings then costs nothing.
            record = unit_activations(loaded.model, loaded.vocab, settings["prompt"] + "".join(produced))
        except Exception as error:  # e.g. a prompt the vocabulary lacks: one line, never a crash
            if not this.is_cancelled:
                self.app.call_from_thread(self._failed, serial, str(error).splitlines()[0])
            return
        if not this.is_cancelled:
            self.app.call_from_thread(self._finished, serial, record)

    def _add(self, serial: int, chunk: str) -> None:
        if serial == self.serial:
            self.generated += chunk
            self._repaint()

    def _failed(self, serial: int, message: str) -> None:
        if serial == self.serial:
            self.state = "ready"
            self.query_one("#problem", ProblemLine).say(message)

    def _finished(self, serial: int, record: dict) -> None:
        if serial != self.serial:
            return
        self.record, self.state = record, "done"
        self.vocab_size = len(self.loaded.vocab)  # the record's model, even if another checkpoint loads later
        from ...probes.activations import most_variable_unit

        self.unit_layer = record["hidden"].shape[0] - 1
        self.unit = most_variable_unit(record, self.unit_layer)
        self._repaint()

    # -- colouring -----------------------------------------------------------------------
    def action_colour(self, mode: str) -> None:
        self.mode = mode
        self._repaint()

    def action_unit(self, step: int) -> None:
        """Cycle through every unit of every layer (the next one after the last unit is layer+1's first)."""
        if self.record is None:
            return
        layers, _, hidden = self.record["hidden"].shape
        flat = (self.unit_layer * hidden + self.unit + step) % (layers * hidden)
        self.unit_layer, self.unit = divmod(flat, hidden)
        self.mode = "unit"
        self._repaint()

    def _repaint(self) -> None:
        text = self.prompt + self.generated
        tokens = self.record.get("tokens", list(text)) if self.record is not None else []  # what each value colours
        # Generated text is made of the corpus's tokens, which may hold escape sequences: shown, never obeyed.
        pieces = [visible(token, keep="\n\t") for token in tokens]
        legend = ""
        if self.mode != "off" and self.record is None:
            legend = "colours come once a generation has finished (g)"
        if self.mode == "unit" and self.record is not None:
            values = self.record["hidden"][self.unit_layer, :, self.unit].float().tolist()
            self.rendered = colour_by_values(pieces, values)
            legend = f"layer {self.unit_layer} unit {self.unit}: blue > 0 > red  ([ ] other units, o plain)"
        elif self.mode == "surprisal" and self.record is not None:
            bits = self.record["surprisal"].tolist()
            self.rendered = colour_by_surprisal(pieces, bits, self.vocab_size)
            unit = "bits/char" if all(len(token) == 1 for token in tokens) else "bits/token"
            legend = f"surprisal: green expected > red surprising; mean {sum(bits) / max(len(bits), 1):.2f} {unit}"
        else:
            self.rendered = plain(self.prompt, "bold", keep="\n\t") + plain(self.generated, keep="\n\t")
        self.query_one("#text", Static).update(self.rendered)
        self.query_one("#legend", ProblemLine).say(legend)
        if self.state == "generating":
            self.query_one("#output", VerticalScroll).scroll_end(animate=False)

    def action_back(self) -> None:
        self.app.pop_screen()

    def on_unmount(self) -> None:
        self.serial += 1  # a worker still running posts nothing more
        self.workers.cancel_node(self)
