"""The runs browser's tag and note keys (g, o): a dialog each, saved through store.update_labels."""

from __future__ import annotations

from ...errors import RnnlabError
from ...store import RunSummary, parse_tag_changes, update_labels
from ..literal import notify
from ..run_rows import SweepGroup
from .ask import AskScreen


class LabelActions:
    """Mixed into RunsScreen: needs its cursor_summary() and reload()."""

    def labelled_run(self) -> RunSummary | None:
        cursor = self.cursor_summary()
        if cursor is None or isinstance(cursor, SweepGroup) or cursor.problem:
            notify(self, "tags and notes belong to a run: put the cursor on one", title="Nothing to label",
                   severity="warning")
            return None
        return cursor

    def action_tags(self) -> None:
        run = self.labelled_run()
        if run is not None:
            self.app.push_screen(AskScreen(f"Tags of {run.id}", " ".join(f"+{tag}" for tag in run.tags),
                                           "+name adds, -name removes; enter saves, escape keeps them"),
                                 lambda answer: self.save_labels(run, tags=answer))

    def action_note(self) -> None:
        run = self.labelled_run()
        if run is not None:
            self.app.push_screen(AskScreen(f"Note on {run.id}", run.note, "enter saves (empty: no note), "
                                           "escape keeps it"), lambda answer: self.save_labels(run, note=answer))

    def save_labels(self, run: RunSummary, tags: str | None = None, note: str | None = None) -> None:
        if tags is None and note is None:  # escape
            return
        try:
            if tags is not None:
                add, remove = parse_tag_changes(tags.split(), keep=run.tags)
                update_labels(run.path, add, remove)
            else:
                update_labels(run.path, note=note.strip())
        except (RnnlabError, OSError) as error:
            notify(self, f"{run.id}: {error}", title="Not saved", severity="error")
        self.reload()
