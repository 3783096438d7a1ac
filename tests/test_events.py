"""The event log: tailing from a byte offset, partial and corrupt lines, history after a resume."""

from __future__ import annotations

import json
from pathlib import Path

from rnnlab import store


def jsonl(*events: dict) -> bytes:
    return b"".join(json.dumps(e).encode() + b"\n" for e in events)


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as handle:
        handle.write(data)


# -- events: tailing from a byte offset ----------------------------------------------------
def test_reader_returns_only_new_events(tmp_path):
    run = store.create_run(tmp_path, "e")
    writer = run.event_writer()
    first, second, third = ({"kind": "train", "step": s, "t": s / 10, "loss": 4.0 - s} for s in (1, 2, 3))
    writer.write(first)
    writer.write(second)
    reader = run.event_reader()
    assert reader.read_new() == [first, second]
    assert reader.offset == run.events_path.stat().st_size
    assert reader.read_new() == []
    writer.write(third)
    assert reader.read_new() == [third]
    assert reader.read_new() == []
    writer.close()
    # A reader started at a byte offset sees only what follows it.
    first_line = len(json.dumps(first, separators=(",", ":"))) + 1  # as EventWriter writes it
    assert run.events_path.read_bytes()[first_line - 1:first_line] == b"\n"
    assert run.event_reader(offset=first_line).read_new() == [second, third]


def test_reader_never_rereads_what_it_has_read(tmp_path):
    path = tmp_path / store.EVENTS
    path.write_bytes(jsonl({"kind": "log", "step": 0, "t": 0.0, "message": "hello"}))
    reader = store.EventReader(path)
    assert len(reader.read_new()) == 1
    # Garble the bytes already consumed: a reader that starts over would now skip or fail.
    size = path.stat().st_size
    path.write_bytes(b"x" * (size - 1) + b"\n")
    append(path, jsonl({"kind": "log", "step": 1, "t": 0.5, "message": "again"}))
    assert [e["step"] for e in reader.read_new()] == [1]
    assert reader.skipped == 0


def test_partial_last_line_waits_until_complete(tmp_path):
    path = tmp_path / store.EVENTS
    path.write_bytes(jsonl({"kind": "train", "step": 1, "t": 0.1}))
    reader = store.EventReader(path)
    assert len(reader.read_new()) == 1
    offset = reader.offset
    append(path, b'{"kind": "train", "step": 2, ')  # a writer mid-line (or killed mid-line)
    assert reader.read_new() == []
    assert reader.offset == offset and reader.skipped == 0
    assert reader.read_new() == []  # still incomplete
    append(path, b'"t": 0.2}\n')
    assert reader.read_new() == [{"kind": "train", "step": 2, "t": 0.2}]
    assert reader.skipped == 0


def test_a_new_writer_starts_on_a_fresh_line_after_a_cut_one(tmp_path):
    """A trainer killed mid-write leaves a partial line; the next writer (a resume,
    `rnnlab activations`) must not glue its first event onto it."""
    run = store.create_run(tmp_path, "e")
    end = {"kind": "end", "step": 100, "t": 9.5, "state": "finished", "error": None}
    run.events_path.write_bytes(jsonl(end) + b'{"kind":"train","step":101,"t')  # killed mid-write
    reader = run.event_reader()
    assert reader.read_new() == [end] and reader.skipped == 0  # the cut line waits: it may yet be finished
    writer = run.event_writer()
    resumed = {"kind": "resume", "step": 100, "t": 9.5, "message": "resumed from step 100"}
    writer.write(resumed)
    writer.close()
    assert reader.read_new() == [resumed]
    assert reader.skipped == 1  # the cut line, now complete and corrupt
    size = run.events_path.stat().st_size
    run.event_writer().close()
    assert run.events_path.stat().st_size == size  # a log that ends its lines gains nothing


def test_corrupt_complete_lines_are_skipped_and_counted(tmp_path):
    path = tmp_path / store.EVENTS
    good1, good2 = {"kind": "train", "step": 1, "t": 0.1}, {"kind": "eval", "step": 1, "t": 0.2, "loss": 2.0}
    path.write_bytes(jsonl(good1) + b'{"kind": "train", "st\n' + b"\xff\xfe garbage\n" + b"[1, 2]\n"
                     + b'{"step": 3, "t": 1.0}\n' + jsonl(good2))
    reader = store.EventReader(path)
    assert reader.read_new() == [good1, good2]
    assert reader.skipped == 4
    assert reader.offset == path.stat().st_size  # the bad lines are consumed, not retried
    assert reader.read_new() == [] and reader.skipped == 4


def test_missing_events_file_reads_as_empty(tmp_path):
    path = tmp_path / "nope" / store.EVENTS
    reader = store.EventReader(path)
    assert reader.read_new() == []
    assert reader.offset == 0 and reader.skipped == 0
    path.parent.mkdir()
    path.write_bytes(jsonl({"kind": "start", "step": 0, "t": 0.0}))
    assert reader.read_new() == [{"kind": "start", "step": 0, "t": 0.0}]


# -- events: history after a resume -------------------------------------------------------
def ev(kind: str, step: int, **payload) -> dict:
    return {"kind": kind, "step": step, "t": float(step), **payload}


def test_history_drops_events_after_the_resume_step():
    events = [ev("start", 0), *(ev("train", s) for s in range(1, 6)), ev("eval", 4), ev("checkpoint", 3),
              ev("end", 5, state="stopped"),
              ev("resume", 3), ev("train", 4), ev("train", 5), ev("end", 5, state="finished")]
    kept = store.history(events)
    assert [(e["kind"], e["step"]) for e in kept] == [
        ("start", 0), ("train", 1), ("train", 2), ("train", 3), ("checkpoint", 3),
        ("resume", 3), ("train", 4), ("train", 5), ("end", 5)]
    assert [e["state"] for e in kept if e["kind"] == "end"] == ["finished"]


def test_history_handles_several_resumes_and_no_resume():
    plain = [ev("train", s) for s in range(1, 4)]
    assert store.history(plain) == plain
    events = [*(ev("train", s) for s in range(1, 7)), ev("resume", 4), ev("train", 5), ev("train", 6),
              ev("resume", 2), ev("train", 3)]
    assert [(e["kind"], e["step"]) for e in store.history(events)] == [
        ("train", 1), ("train", 2), ("resume", 2), ("train", 3)]


def test_run_read_events_applies_history(tmp_path):
    run = store.create_run(tmp_path, "r")
    writer = run.event_writer()
    for event in [ev("train", 1), ev("train", 2), ev("train", 3), ev("resume", 1), ev("train", 2)]:
        writer.write(event)
    writer.close()
    append(run.events_path, b"{broken\n" + b'{"kind": "train", "step": 3')
    assert [(e["kind"], e["step"]) for e in run.read_events()] == [("train", 1), ("resume", 1), ("train", 2)]
