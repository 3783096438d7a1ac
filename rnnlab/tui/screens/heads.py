"""Heads: where a neural Turing machine's read and write heads look, over memory slots and time.

The trainer writes a `heads` event at every probe (rnnlab/probes/heads.py): the first probe
example's weightings, one distribution over the memory slots per head and step. This screen
draws them as two heatmaps side by side, rows = time, columns = slots, write heads on the left
(each row labelled with the step's input token), read heads on the right (labelled with the
model's output, `✗` where it differs from the target), and follows a live run. On the copy task
a trained NTM shows the lecture's program: a diagonal in the write map while the symbols arrive,
the same diagonal in the read map after the delimiter. `[` and `]` step back and forth through
the probes so far (watching it learn); `l` returns to the latest, which then follows the run.
"""

from __future__ import annotations

from rich.console import Group
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Footer, Header, Static

from ...console import attention_heatmap
from ...store import RunDir
from ..literal import plain
from ..messages import RunUpdate
from .following import FollowsRun

KEEP = 1000  # probes held for browsing (~3 KB each for the presets)
FOCUS = 10  # percent: slots no head weights this much at any step are left out of the maps
WAITING = "No heads probe in this run yet: the trainer records the NTM's heads every probes.every steps."


class HeadsScreen(FollowsRun):
    SUB_TITLE = "heads"
    BINDINGS = [
        Binding("left_square_bracket", "browse(-1)", "Earlier probe"),
        Binding("right_square_bracket", "browse(1)", "Later probe"),
        Binding("l", "latest", "Latest"),
        Binding("escape", "back", "Back"),
    ]
    DEFAULT_CSS = """
    HeadsScreen #title { height: auto; padding: 0 1; }
    HeadsScreen #maps { height: 1fr; }
    HeadsScreen .pane { width: 1fr; height: 1fr; border: round $primary 50%; overflow-x: auto; }
    HeadsScreen .pane Static { width: auto; }
    """

    def __init__(self, run: RunDir):
        super().__init__()
        self.run = run
        self.probes: list[dict] = []  # the run's heads events so far, oldest first (the last KEEP)
        self.index: int | None = None  # the probe shown; None: the latest, following the run

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(WAITING, id="title")
        with Horizontal(id="maps"):
            with VerticalScroll(classes="pane", id="write-pane") as pane:
                pane.border_title = "write heads"
                yield Static("", id="write")
            with VerticalScroll(classes="pane", id="read-pane") as pane:
                pane.border_title = "read heads"
                yield Static("", id="read")
        yield Footer()

    def on_run_update(self, update: RunUpdate) -> None:
        new = [e for e in update.events if e.get("kind") == "heads" and well_formed(e)]
        if new:
            self.probes = (self.probes + new)[-KEEP:]
            if self.index is None:
                self.show()

    @property
    def shown(self) -> dict | None:
        if not self.probes:
            return None
        return self.probes[-1] if self.index is None else self.probes[self.index]

    def show(self) -> None:
        event = self.shown
        if event is None:
            return
        position = len(self.probes) if self.index is None else self.index + 1
        kept, steps, slots = len(event["read"][0]), event.get("steps"), event.get("slots")
        width, columns = len(event["read"][0][0]), used_slots(event)  # the event's slots (<= N), those drawn
        what = f"{kept} steps" if kept == steps else f"the first {kept} of {steps} steps"
        if len(columns) < width:
            run = span(columns[0], columns[-1]) if columns[-1] >= columns[0] else \
                f"{span(columns[0], width - 1)}, {span(0, columns[-1])}"  # wrapping round
            where = f"slots {run} of {slots} (the others hold < {FOCUS}% at every step)"
        else:
            where = f"{width} slots" if width == slots else f"the first {width} of {slots} slots"
        follow = "following the run" if self.index is None else "l: latest"
        self.query_one("#title", Static).update(plain(
            f"step {event['step']} (probe {position} of {len(self.probes)}, {follow}): the first probe example, "
            f"{what} × {where}; rows: time, columns: memory slots, cells: weight in %"))
        inputs, outputs, targets = event.get("input"), event.get("output"), event.get("target")
        self.query_one("#write", Static).update(maps(event["write"], rows(kept, inputs), columns, "write"))
        self.query_one("#read", Static).update(maps(event["read"], rows(kept, outputs, targets), columns, "read"))

    def action_browse(self, by: int) -> None:
        if not self.probes:
            self.notify("No heads probe yet.", severity="warning")
            return
        current = len(self.probes) - 1 if self.index is None else self.index
        target = min(max(current + by, 0), len(self.probes) - 1)
        self.index = None if target == len(self.probes) - 1 and by > 0 else target
        self.show()

    def action_latest(self) -> None:
        self.index = None
        self.show()

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()


def well_formed(event: dict) -> bool:
    """A heads event this screen can draw: non-empty [head][step][slot] lists of numbers, the same T' and N'
    in both kinds (the event comes from disk: a hand-edited or foreign one is skipped, not a crash)."""
    try:
        shapes = set()
        for kind in ("read", "write"):
            for head in event[kind]:
                shapes.add((len(head), len(head[0])))
                if not all(len(row) == len(head[0]) and all(isinstance(v, (int, float)) for v in row)
                           for row in head):
                    return False
        return len(shapes) == 1 and bool(event["read"]) and min(shapes.pop()) > 0 and isinstance(event["step"], int)
    except (KeyError, TypeError, IndexError):
        return False


def rows(count: int, tokens, targets=None) -> list[str]:
    """Row labels: the step, then its token (the input, or the output with ✗ where the target differs)."""
    labels = []
    for t in range(count):
        token = tokens[t] if isinstance(tokens, list) and t < len(tokens) else None
        wrong = isinstance(targets, list) and t < len(targets) and token is not None and targets[t] != token
        labels.append(f"{t:>2}" + ("" if token is None else f" {token}") + (" ✗" if wrong else ""))
    return labels


def span(first: int, last: int) -> str:
    return str(first) if first == last else f"{first}-{last}"


def used_slots(event: dict, floor: int = FOCUS) -> list[int]:
    """The slots to draw, in order: the shortest circular run of slots holding every weight of `floor` percent or
    more (all slots when none does). A copy of 10 symbols uses ~11 of 64 slots, and 11 columns fit with their
    percentages where 64 do not; the run may wrap round (a head that walks -1 from slot 0 goes on at N - 1).
    The floor is well above 1%: a head with nothing to do spreads ~1.5% over all 64 slots."""
    width = len(event["read"][0][0])
    used = [i for i in range(width)
            if any(row[i] >= floor for kind in ("read", "write") for head in event[kind] for row in head)]
    if not used:
        return list(range(width))
    # the widest circular gap between consecutive used slots is what is left out
    gaps = [((used[(k + 1) % len(used)] - used[k] - 1) % width, k) for k in range(len(used))]
    gap, k = max(gaps)
    start = used[(k + 1) % len(used)]
    return [(start + i) % width for i in range(width - gap)]


def maps(heads: list, labels: list[str], columns: list[int], kind: str):
    """One heatmap per head over the slots in `columns` (in that order), titled when there are several."""
    parts = []
    for number, weights in enumerate(heads, 1):
        if len(heads) > 1:
            parts.append(Text(f"{kind} head {number}", style="bold"))
        cropped = [[row[i] / 100 for i in columns] for row in weights]  # (T', slots shown)
        parts.append(attention_heatmap([str(i) for i in columns], labels, cropped))
    return Group(*parts)
