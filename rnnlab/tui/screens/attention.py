"""Attention: where a seq2seq run's decoder looks while it writes each output token.

Two heatmaps share the screen's main pane: the probe example the trainer
decodes every `probes.every` steps (from the run's `attention` events, so it
follows a live run), and any input typed in the box, decoded from the
checkpoint in a thread worker (greedy, or beam search with a beam > 1).
"""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Footer, Header, Input, Label, Static
from textual.worker import get_current_worker

from ...console import attention_heatmap
from ...store import RunDir
from ..literal import plain
from ..messages import RunUpdate
from .following import FollowsRun


class AttentionScreen(FollowsRun):
    SUB_TITLE = "attention"
    AUTO_FOCUS = "#source"  # typing starts at once (its keys are text: the probe binding is ctrl+e)
    BINDINGS = [
        Binding("ctrl+e", "show_probe", "Probe example", priority=True,  # priority: the Input would take it
                tooltip="The example the trainer decodes at every probe"),
        Binding("escape", "back", "Back"),
    ]
    DEFAULT_CSS = """
    AttentionScreen .controls { height: auto; padding: 0 1; }
    AttentionScreen .controls Label { padding: 0 1 0 0; color: $text-muted; }
    AttentionScreen #source { width: 1fr; margin-right: 1; }
    AttentionScreen #beam { width: 6; }
    AttentionScreen #title { height: auto; padding: 0 1; }
    AttentionScreen #map { height: 1fr; border: round $primary 50%; padding: 0 1; }
    """

    def __init__(self, run: RunDir):
        super().__init__()
        self.run = run
        self.probe: dict | None = None  # the latest attention event
        self.showing = "probe"  # probe | typed
        self.loaded = None  # translating.LoadedSeq2Seq, on the first typed input

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(classes="controls"):
            yield Label("input")
            yield Input(id="source", compact=True, placeholder="type a source and press enter")
            yield Label("beam")
            yield Input("1", id="beam", compact=True)
        yield Static("", id="title")
        with VerticalScroll(id="map"):
            yield Static("No attention probe in this run yet: the trainer decodes one example every probes.every "
                         "steps. Type an input above and press enter to decode it from the checkpoint.",
                         id="heatmap")
        yield Footer()

    def on_run_update(self, update: RunUpdate) -> None:
        latest = [e for e in update.events if e.get("kind") == "attention" and isinstance(e.get("weights"), list)]
        if latest:
            self.probe = latest[-1]
            if self.showing == "probe":
                self.show_probe()

    def show_probe(self) -> None:
        event = self.probe
        if event is None:
            return
        joiner = " " if any(len(t) > 1 for t in event["source"]) else ""
        right = "right" if event["output"] == event["truth"] else f"truth: {joiner.join(event['truth'])}"
        self.say(f"probe example at step {event['step']}: {joiner.join(event['source'])} → "
                 f"{joiner.join(event['output'])}  ({right})")
        self.show_heatmap(event["source"], event["output"], event["weights"])

    def say(self, line: str) -> None:
        """The title line: tokens, typed text and errors, shown literally (a str would be parsed as markup)."""
        self.query_one("#title", Static).update(plain(line))

    def show_heatmap(self, source: list[str], output: list[str], weights) -> None:
        # Tokens come from the run's vocabulary (anybody's corpus): Text, so no markup, escapes visible.
        self.query_one("#heatmap", Static).update(attention_heatmap([plain(t) for t in source],
                                                                    [plain(t) for t in output], weights))

    def action_show_probe(self) -> None:
        self.showing = "probe"
        self.show_probe()

    @on(Input.Submitted)
    def decode_typed(self) -> None:
        text = self.query_one("#source", Input).value
        beam = self.query_one("#beam", Input).value.strip() or "1"
        if not beam.isdigit() or int(beam) < 1:
            self.say(f"beam = {beam!r}: expected an integer >= 1")
            return
        self.showing = "typed"
        self.say("decoding ...")
        self._decode(text, int(beam))

    @work(thread=True, exclusive=True, group="decode")
    def _decode(self, text: str, beam: int) -> None:
        from ...decoding import translate  # torch: off the UI thread
        from ...translating import load_seq2seq

        try:
            if self.loaded is None:
                self.loaded = load_seq2seq(self.run, "best" if self.run.checkpoint("best").exists() else "last")
            vocab = self.loaded.vocab
            result = translate(self.loaded.model, vocab, vocab.encode(text), 64, beam)
        except Exception as error:  # an unknown token, no checkpoint yet: one line, never a crash
            message = str(error).splitlines()[0] if str(error) else error.__class__.__name__
            self.app.call_from_thread(self.say, message)
            return
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._show_typed, text, result)

    def _show_typed(self, text: str, result) -> None:
        joiner = self.loaded.vocab.joiner
        self.say(f"{text} → {joiner.join(result.output)}  (checkpoint step {self.loaded.step})")
        if result.attention is not None:
            self.show_heatmap(result.source, result.output, result.attention)

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()
