"""Caption: a captioning run's held-out scenes, the caption it writes, and where it looks for each word.

The scene is drawn in half-block cells beside the same image lit by the
attention of one generated word (as in Xu et al.'s figures); left/right step
through the words (and the EOS), n/p through the held-out scenes, b widens the
beam. Each scene is decoded from the checkpoint in a thread worker
(captioning.py, as `rnnlab caption` does).
"""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header, Static
from textual.worker import get_current_worker

from ...console import attended_image, image_cells
from ...store import RunDir
from ..literal import plain

BEAMS = (1, 3, 5)  # what b cycles through


class CaptionScreen(Screen):
    SUB_TITLE = "caption"
    BINDINGS = [
        Binding("right", "word(1)", "Next word"),
        Binding("left", "word(-1)", "Previous word"),
        Binding("n", "scene(1)", "Next scene"),
        Binding("p", "scene(-1)", "Previous scene"),
        Binding("b", "beam", "Beam", tooltip="Decode with a beam of 1, 3 or 5"),
        Binding("escape", "back", "Back"),
    ]
    DEFAULT_CSS = """
    CaptionScreen #title { height: auto; padding: 0 1; }
    CaptionScreen #panes { height: auto; padding: 1 1 0 1; }
    CaptionScreen .pane { width: auto; height: auto; margin-right: 4; }
    CaptionScreen .pane > Static { width: auto; }
    CaptionScreen .label { color: $text-muted; }
    CaptionScreen #note { height: auto; padding: 1 1; color: $text-muted; }
    """

    def __init__(self, run: RunDir, index: int = 0):
        super().__init__()
        self.run = run
        self.index, self.word, self.beam = index, 0, 1
        self.loaded = None  # captioning.LoadedCaptioner, on the first decode
        self.result = None  # captioning.Captioned of the scene shown

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("decoding ...", id="title")
        with Horizontal(id="panes"):
            with Vertical(classes="pane"):
                yield Static("image", classes="label", id="image-label")
                yield Static("", id="image")
            with Vertical(classes="pane"):
                yield Static("attention", classes="label", id="map-label")
                yield Static("", id="map")
        yield Static("", id="note")
        yield Footer()

    def on_mount(self) -> None:
        self.decode()

    @work(thread=True, exclusive=True, group="decode")
    def decode(self) -> None:
        from ...captioning import caption, load_captioner  # torch: off the UI thread

        try:
            if self.loaded is None:
                self.loaded = load_captioner(self.run, "best" if self.run.checkpoint("best").exists() else "last")
            result = caption(self.loaded, self.index, self.beam)
        except Exception as error:  # no checkpoint yet, not a captioning run: one line, never a crash
            message = str(error).splitlines()[0] if str(error) else error.__class__.__name__
            self.app.call_from_thread(self.say, message)
            return
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self.show, result)

    def say(self, line: str) -> None:
        self.query_one("#title", Static).update(plain(line))

    def show(self, result) -> None:
        self.result = result
        self.word = min(self.word, len(result.words))  # the last is the EOS
        self.query_one("#image", Static).update(image_cells(result.image))
        self.draw()

    def draw(self) -> None:
        result = self.result
        if result is None:
            return
        tokens = [*result.words, "<eos>"]
        title = Text.assemble(plain(f"scene {self.index} (beam {self.beam}, checkpoint step {self.loaded.step}): "))
        for i, token in enumerate(tokens):
            title.append_text(plain(token, "reverse bold" if i == self.word and result.attention else ""))
            title.append(" ")
        right = result.words == result.truth
        title.append_text(plain(" right" if right else f" truth: {' '.join(result.truth)}",
                                "green" if right else "yellow"))
        self.query_one("#title", Static).update(title)
        if result.attention is None:
            self.query_one("#map-label", Static).update("no attention")
            self.query_one("#map", Static).update("")
            self.query_one("#note", Static).update("This run decodes from one fixed image vector "
                                                   "(model.attention = none): there is no map to show.")
            return
        weights = result.attention[self.word]
        self.query_one("#map-label", Static).update(Text.assemble(
            "attention for ", plain(tokens[self.word], "bold"), f"  (word {self.word + 1}/{len(tokens)}, "
            f"max {max(weights):.2f})"))
        self.query_one("#map", Static).update(attended_image(result.image, weights, result.grid))
        self.query_one("#note", Static).update(f"{result.grid}x{result.grid} grid, lit where the decoder looks; "
                                               "←/→ words, n/p scenes, b beam")

    def action_word(self, step: int) -> None:
        if self.result is not None:
            self.word = (self.word + step) % (len(self.result.words) + 1)
            self.draw()

    def action_scene(self, step: int) -> None:
        self.index, self.word = max(0, self.index + step), 0
        self.say(f"decoding scene {self.index} ...")
        self.decode()

    def action_beam(self) -> None:
        self.beam = BEAMS[(BEAMS.index(self.beam) + 1) % len(BEAMS)]
        self.say(f"decoding scene {self.index} with a beam of {self.beam} ...")
        self.decode()

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()
