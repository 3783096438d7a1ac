"""The reliability matrix's cases: signals and resume, crash artefacts, corrupt files, hostile
names and text, a full disk, concurrent starts, divergence. Run by scripts/reliability.py."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

from reliability import Matrix, copy_run, fingerprint, only_run, status, train_losses


class Fixtures:
    """Runs trained once and shared: a finished character model, a finished seq2seq run, a live run."""

    def __init__(self, m: Matrix):
        self.runs = m.fresh_runs("fixtures")
        trained = m.rnnlab("run", m.config(), "--runs-dir", self.runs, "--quiet")
        assert trained.code == 0, f"the fixture run failed: {trained.err.strip()}"
        self.base = only_run(self.runs)
        s2s_runs = m.fresh_runs("s2s")
        trained = m.rnnlab("run", "--runs-dir", s2s_runs, "--quiet", "--set", "task.name=reverse",
                           "--set", "model.arch=seq2seq", "--set", "model.hidden=16", "--set", "model.embed=8",
                           "--set", "model.layers=1", "--set", "train.steps=10", "--set", "train.eval_every=5",
                           "--set", "train.batch_size=8", "--set", "name=s2s", "--set", "threads=1",
                           "--set", "device=cpu")
        assert trained.code == 0, f"the seq2seq fixture run failed: {trained.err.strip()}"
        self.s2s = copy_run(only_run(s2s_runs), self.runs, only_run(s2s_runs).name)
        from rnnlab.store import process_start_time

        self.live = copy_run(self.base, self.runs, "20260101-000000-live-0000")
        record = status(self.live)  # this very process plays the trainer: alive, on this host
        record.update(id=self.live.name, state="running", pid=os.getpid(), pid_start=process_start_time(os.getpid()))
        (self.live / "status.json").write_text(json.dumps(record))
        self.reference: dict[int, float] | None = None

    def reference_losses(self, m: Matrix) -> dict[int, float]:
        """60 uninterrupted steps: what every interrupted-and-resumed run must reproduce."""
        if self.reference is None:
            runs = m.fresh_runs("reference")
            assert m.rnnlab("run", m.config(steps=60), "--runs-dir", runs, "--quiet").code == 0
            self.reference = train_losses(only_run(runs))
        return self.reference


def wait_for_steps(run_dir_parent: Path, steps: int, process: subprocess.Popen, timeout: float = 60) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for events in run_dir_parent.glob("*/events.jsonl"):
            if events.read_bytes().count(b'"kind":"train"') >= steps:
                return events.parent
        if process.poll() is not None:
            raise AssertionError(f"the trainer exited early ({process.returncode}): {process.stderr.read()[-300:]}")
        time.sleep(0.05)
    raise AssertionError(f"no {steps} training steps within {timeout}s")


def loads(path: Path) -> bool:
    import torch

    try:
        torch.load(path, map_location="cpu", weights_only=True)
        return True
    except Exception:
        return False


# -- signals, kills, resume -------------------------------------------------------------
def interrupt_and_resume(m: Matrix, fx: Fixtures, sig: int, label: str) -> None:
    runs = m.fresh_runs(label)
    process = m.start("run", m.config(steps=400, checkpoint_every=5), "--runs-dir", runs, "--quiet")
    run = wait_for_steps(runs, 23, process)
    os.kill(process.pid, sig)
    code = process.wait(60)
    if sig == signal.SIGKILL:
        m.check(f"{label}: exit -9", code == -signal.SIGKILL, f"exit {code}")
        listed = m.cli("runs", "ls", "--runs-dir", runs)
        m.check(f"{label}: listed as crashed", "crashed" in listed.out, listed.out[-300:])
    else:
        m.check(f"{label}: exit 130", code == 130, f"exit {code}")
        m.check(f"{label}: state stopped", status(run)["state"] == "stopped", str(status(run).get("state")))
    checkpoints = list((run / "checkpoints").glob("*.pt"))
    m.check(f"{label}: every checkpoint loads", checkpoints and all(loads(p) for p in checkpoints),
            ", ".join(p.name for p in checkpoints if not loads(p)))
    resumed = m.rnnlab("run", "--resume", run.name, "--runs-dir", runs, "--set", "train.steps=60", "--quiet")
    m.check(f"{label}: resume finishes", resumed.code == 0 and status(run)["state"] == "finished",
            f"exit {resumed.code}: {resumed.err.strip()[-300:]}")
    losses, reference = train_losses(run), fx.reference_losses(m)
    m.check(f"{label}: resumed losses equal an uninterrupted run's", losses == reference,
            f"{sum(losses.get(s) != v for s, v in reference.items())} of {len(reference)} steps differ")


def random_kills(m: Matrix, fx: Fixtures, rounds: int = 3) -> None:
    """kill -9 at random moments of a run that checkpoints every step: writes are always in flight."""
    from rnnlab import store

    seed = int(os.environ.get("RELIABILITY_SEED", time.time()))
    rng = random.Random(seed)
    for round_ in range(rounds):
        runs = m.fresh_runs(f"random-kill-{round_}")
        process = m.start("run", m.config(steps=400, checkpoint_every=1), "--runs-dir", runs, "--quiet")
        run = wait_for_steps(runs, 1, process)
        time.sleep(rng.uniform(0.0, 1.5))
        process.kill()
        process.wait(30)
        name = f"kill -9 at random (RELIABILITY_SEED={seed}, round {round_})"
        checkpoints = list((run / "checkpoints").glob("*.pt"))
        m.check(f"{name}: every checkpoint loads", all(loads(p) for p in checkpoints),
                ", ".join(p.name for p in checkpoints if not loads(p)))
        try:
            state = store.RunDir(run).read_status()["state"]
            store.RunDir(run).read_events()
        except Exception as error:
            state = f"{error.__class__.__name__}: {error}"
        m.check(f"{name}: status and events readable, state crashed", state == "crashed", state)
        last = run / "checkpoints" / "last.pt"
        steps = (torch_load(last)["step"] if last.exists() else 0) + 3
        resumed = m.rnnlab("run", "--resume", run.name, "--runs-dir", runs, "--set", f"train.steps={steps}", "--quiet")
        m.check(f"{name}: resumes to the end", resumed.code == 0 and status(run)["state"] == "finished",
                f"exit {resumed.code}: {resumed.err.strip()[-200:]}")


def stop_inside_a_long_step(m: Matrix, fx: Fixtures, sig: int, label: str) -> None:
    """One RTRL step of this net takes ~10 s: a stop must not wait for it (the TUI's stop is SIGINT)."""
    runs = m.fresh_runs(label)
    process = m.start("run", m.config(steps=3), "--runs-dir", runs, "--quiet", "--set", "model.arch=elman",
                      "--set", "model.hidden=64", "--set", "task.seq_len=96", "--set", "train.batch_size=32",
                      "--set", "train.algorithm=rtrl", "--set", "train.eval_every=0", "--set", "probes.every=0")
    deadline = time.monotonic() + 60
    while not any(b'"start"' in p.read_bytes() for p in runs.glob("*/events.jsonl")):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.05)
    time.sleep(1.0)  # inside the first step
    sent = time.monotonic()
    os.kill(process.pid, sig)
    code = process.wait(60)
    took = time.monotonic() - sent
    run = only_run(runs)
    m.check(f"{label}: honoured within 4 s, stopped, exit 130", code == 130 and took < 4.0
            and status(run)["state"] == "stopped", f"exit {code} after {took:.1f}s, {status(run)['state']}")
    m.check(f"{label}: the half step is not applied", status(run)["step"] == 0 and loads(run / "checkpoints/last.pt"))


def crash_artefacts(m: Matrix, fx: Fixtures) -> None:
    """What a kill in the middle of a write leaves: a partial event line, half-written temp files."""
    runs = m.fresh_runs("artefacts")
    run = copy_run(fx.base, runs, fx.base.name)
    with open(run / "events.jsonl", "ab") as events:
        events.write(b'{"kind":"train","step":41,"t')  # killed mid-line
    last = (run / "checkpoints" / "last.pt").read_bytes()
    (run / "checkpoints" / ".last.pt.99999.abc123.tmp").write_bytes(last[: len(last) // 2])
    (run / ".status.json.99999.abc123.tmp").write_bytes(b'{"state": "run')
    record = status(run)
    record.update(state="running", pid=999999)  # a trainer that is gone: crashed
    (run / "status.json").write_text(json.dumps(record))
    activations = m.cli("activations", run.name, "--runs-dir", runs, "--length", "20")
    m.check("artefacts: activations after a partial event line", activations.code == 0, activations.err[-200:])
    from rnnlab import store

    events = store.RunDir(run).read_events()
    m.check("artefacts: the event written after a partial line is kept", events and events[-1]["kind"] == "activations",
            f"last event {events[-1]['kind'] if events else None}")
    resumed = m.rnnlab("run", "--resume", run.name, "--runs-dir", runs, "--set", "train.steps=50", "--quiet")
    m.check("artefacts: resume after a crash mid-write", resumed.code == 0, resumed.err.strip()[-300:])
    reader = store.RunDir(run).event_reader()
    kinds = [e["kind"] for e in store.history(reader.read_new())]
    m.check("artefacts: resumed events all readable, the partial line alone skipped",
            reader.skipped == 1 and kinds[-1] == "end" and "resume" in kinds, f"skipped {reader.skipped}, {kinds[-3:]}")
    m.check("artefacts: state finished", status(run)["state"] == "finished")


def concurrent_starts(m: Matrix, fx: Fixtures) -> None:
    runs = m.fresh_runs("concurrent")
    processes = [m.start("run", m.config(steps=20), "--runs-dir", runs, "--quiet") for _ in range(3)]
    codes = [p.wait(120) for p in processes]
    dirs = [p for p in runs.iterdir() if p.is_dir()]
    m.check("concurrent starts: three runs, three directories", len(dirs) == 3 and codes == [0, 0, 0],
            f"{len(dirs)} dirs, exits {codes}")
    m.check("concurrent starts: each status names its own directory",
            all(status(d)["id"] == d.name and status(d)["state"] == "finished" for d in dirs))


def divergence(m: Matrix, fx: Fixtures) -> None:
    """The issue's command: a finite loss that blew up thousands of times past the unigram."""
    runs = m.fresh_runs("diverge")
    called = m.rnnlab("run", Path(__file__).resolve().parents[1] / "experiments/quickstart.toml", "--runs-dir", runs,
                      "--set", "model.hidden=32", "--set", "task.seq_len=32", "--set", "train.lr=1e4",
                      "--set", "train.clip_mode=none", "--set", "train.steps=200", "--set", "threads=1", "--quiet")
    run = only_run(runs)
    m.check("divergence: a blown-up finite loss is diverged, exit 3",
            called.code == 3 and status(run)["state"] == "diverged", f"exit {called.code}, {status(run)['state']}")
    m.check("divergence: the advice says what to change", "train.lr" in (status(run).get("error") or ""),
            str(status(run).get("error")))


# -- corrupt files ---------------------------------------------------------------------
class Hostile:
    """Unpickling this would create the marker file: a checkpoint must never run it."""

    marker = ""

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def hostile_pickle(path: Path, marker: Path) -> None:
    import torch

    Hostile.marker = str(marker)
    torch.save({"format": 1, "step": 3, "model": Hostile()}, path)


CORRUPTIONS = {
    "status.json not JSON": lambda run, _: (run / "status.json").write_text('{"state": "finished", \x01 oops'),
    "status.json empty": lambda run, _: (run / "status.json").write_bytes(b""),
    "status.json an array": lambda run, _: (run / "status.json").write_text("[1, 2, 3]"),
    "status.json wrong types": lambda run, _: (run / "status.json").write_text(json.dumps(
        {**status(run), "step": "forty", "total_steps": [40], "best_val": "low", "started": "yesterday"})),
    "status.json state a number": lambda run, _: (run / "status.json").write_text(json.dumps({**status(run), "state": 5})),
    "status.json missing": lambda run, _: (run / "status.json").unlink(),
    "config.toml garbage": lambda run, _: (run / "config.toml").write_text("[model\nhidden = = 3\n"),
    "config.toml missing": lambda run, _: (run / "config.toml").unlink(),
    "config.toml wrong value": lambda run, _: (run / "config.toml").write_text(
        (run / "config.toml").read_text().replace("hidden = 16", 'hidden = "sixteen"')),
    "checkpoints zero bytes": lambda run, _: [(run / "checkpoints" / n).write_bytes(b"") for n in ("last.pt", "best.pt")],
    "checkpoints random bytes": lambda run, _: [(run / "checkpoints" / n).write_bytes(random.Random(1).randbytes(5000))
                                                for n in ("last.pt", "best.pt")],
    "checkpoints truncated": lambda run, _: [(run / "checkpoints" / n).write_bytes(
        (run / "checkpoints" / n).read_bytes()[:20000]) for n in ("last.pt", "best.pt")],
    "checkpoints hostile pickle": lambda run, marker: [hostile_pickle(run / "checkpoints" / n, marker)
                                                       for n in ("last.pt", "best.pt")],
    "checkpoints missing keys": lambda run, _: [torch_save({"format": 1}, run / "checkpoints" / n)
                                                for n in ("last.pt", "best.pt")],
    "checkpoints another model": lambda run, _: [torch_save({**torch_load(run / "checkpoints" / n), "model": {
        "w": __import__("torch").zeros(3)}}, run / "checkpoints" / n) for n in ("last.pt", "best.pt")],
    "checkpoints missing": lambda run, _: [(run / "checkpoints" / n).unlink() for n in ("last.pt", "best.pt")],
    "events.jsonl garbage": lambda run, _: open(run / "events.jsonl", "ab").write(b"\xff\xfe\x00garbage\n[1]\n{\"kind\n"),
    "events.jsonl missing": lambda run, _: (run / "events.jsonl").unlink(),
}
# What each command must do on each corruption: "ok" (exit 0), "error" (one clean line, exit 2, the
# run untouched) or "either". `runs ls` and `runs show` always work: they flag what they cannot read.
EXPECTED = {
    "sample": {"status.json": "either", "config.toml": "error", "checkpoints": "error", "events.jsonl": "ok"},
    "run": {"status.json": "either", "config.toml": "error", "checkpoints": "error", "events.jsonl": "ok"},
}
COMMANDS = {"ls": ["runs", "ls"], "show": ["runs", "show", "{run}"], "sample": ["sample", "{run}", "--length", "5"],
            "run": ["run", "--resume", "{run}", "--set", "train.steps=45"]}


def torch_save(value, path: Path) -> None:
    import torch

    torch.save(value, path)


def torch_load(path: Path) -> dict:
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


def corrupt_files(m: Matrix, fx: Fixtures) -> None:
    runs = m.fresh_runs("corrupt")
    for index, (what, corrupt) in enumerate(CORRUPTIONS.items()):
        run = copy_run(fx.base, runs, f"20260101-0000{index:02d}-corrupt-{index:04x}")
        marker = m.work / f"pwned-{index}"
        corrupt(run, marker)
        for command, words in COMMANDS.items():
            expected = EXPECTED.get(command, {}).get(what.split()[0], "ok")
            before = fingerprint(run)
            called = m.cli(*[w.format(run=run.name) for w in words], "--runs-dir", runs)
            problems = m.hygiene(called)
            lines = [line for line in called.err.splitlines() if line.strip()]
            if called.code == 0 and expected == "error":
                problems.append("succeeded on a corrupt run")
            if called.code != 0 and expected == "ok":
                problems.append(f"failed (exit {called.code}): {called.err.strip()[:200]!r}")
            if called.code != 0 and (called.code != 2 or len(lines) != 1 or not lines[0].startswith("error: ")):
                problems.append(f"not one clean line with exit 2: exit {called.code}, {called.err.strip()[:200]!r}")
            if called.code != 0 and fingerprint(run) != before:
                problems.append("a command that failed modified the run")
            if marker.exists():
                problems.append("THE HOSTILE PICKLE RAN")
            m.check(f"corrupt {what}: {command}", not problems, "; ".join(problems))
        m.check(f"corrupt {what}: the run directory is still there", run.is_dir())


# -- hostile names and text ----------------------------------------------------------------
HOSTILE_NAMES = ["20260101-000001-\x1b[2J\x1b[H-wipe", "20260101-000002-\x1b]0;pwned\x07-title",
                 "20260101-000003-[blink]x[/blink]", "20260101-000004-bidi\u202eevil", "20260101-000005-new\nline"]


def hostile_names(m: Matrix, fx: Fixtures) -> None:
    runs = m.fresh_runs("names")
    for index, name in enumerate(HOSTILE_NAMES):
        run = copy_run(fx.base, runs, name)
        record = status(run)
        record.update(id=name, name=name, arch="[blink]lstm", error="boom \x1b[31mred\x1b[0m [bold]x[/bold]")
        (run / "status.json").write_text(json.dumps(record))
    listed = m.cli("runs", "ls", "--runs-dir", runs)
    m.check("hostile names: runs ls shows them, escaped", listed.code == 0 and not m.hygiene(listed)
            and "\\x1b" in listed.out and "[blink]lstm" in listed.out, "; ".join(m.hygiene(listed)) or listed.out[-400:])
    for name in HOSTILE_NAMES:
        for command in (["runs", "show", str(runs / name)], ["sample", str(runs / name), "--length", "5"]):
            called = m.cli(*command, "--runs-dir", runs)
            m.check(f"hostile name {name!r}: {command[0]} {command[1]}", called.code == 0 and not m.hygiene(called),
                    f"exit {called.code}; " + "; ".join(m.hygiene(called)))
        shown = m.cli("runs", "show", str(runs / name), "--runs-dir", runs)
        m.check(f"hostile name {name!r}: markup shown literally", "[bold]x[/bold]" in shown.out, shown.out[:300])
    removed = m.cli("runs", "rm", str(runs / HOSTILE_NAMES[0]), "--yes", "--runs-dir", runs)
    m.check("hostile names: rm", removed.code == 0 and not (runs / HOSTILE_NAMES[0]).exists()
            and not m.hygiene(removed), "; ".join(m.hygiene(removed)))


def hostile_corpus(m: Matrix, fx: Fixtures) -> None:
    """A model trained on text full of escape sequences samples them: they must print as text."""
    runs = m.fresh_runs("corpus")
    corpus = m.work / "hostile.txt"
    corpus.write_text(("\x1b[2J\x1b]0;pwned\x07 clear the screen\r\n" * 200))
    trained = m.rnnlab("run", m.config(steps=20), "--runs-dir", runs, "--quiet", "--set", f"task.corpus={corpus}")
    m.check("hostile corpus: trains", trained.code == 0, trained.err[-200:])
    run = only_run(runs)
    for command in (["sample", run.name, "--length", "200", "--prompt", "\x1b"],
                    ["activations", run.name, "--length", "100"], ["runs", "show", run.name]):
        called = m.cli(*command, "--runs-dir", runs)
        m.check(f"hostile corpus: {command[0]} prints escapes as text", called.code == 0 and not m.hygiene(called),
                f"exit {called.code}; " + "; ".join(m.hygiene(called)) + called.err[-200:])


# -- a full disk --------------------------------------------------------------------------
def full_disk(m: Matrix, fx: Fixtures) -> None:
    mount = m.work / "full"
    mount.mkdir()
    size = sum(p.stat().st_size for p in fx.base.rglob("*") if p.is_file()) + 64 * 1024
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        print(f"  full disk: skipped (cannot mount a small tmpfs: {mounted.stderr.strip() or 'not root'})")
        return
    try:
        run = copy_run(fx.base, mount, fx.base.name)
        filler = mount / "filler"
        subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=4k"], capture_output=True)  # until ENOSPC
        before = fingerprint(run)
        resumed = m.rnnlab("run", "--resume", run.name, "--runs-dir", mount, "--set", "train.steps=60", "--quiet")
        m.clean_error("full disk: resume fails in one line", resumed, code=resumed.code if resumed.code else -1)
        after = fingerprint(run)
        m.check("full disk: config, status and checkpoints untouched",
                all(after.get(k) == v for k, v in before.items() if k != "events.jsonl"))
        fresh = m.rnnlab("run", m.config(), "--runs-dir", mount, "--quiet")
        m.clean_error("full disk: a new run fails in one line", fresh, code=fresh.code if fresh.code else -1)
        filler.unlink()
        for leftover in [p for p in mount.iterdir() if p.is_dir() and p.name != run.name]:
            listed = m.cli("runs", "show", leftover.name, "--runs-dir", mount)
            m.check("full disk: the failed new run is listed, not broken", listed.code == 0 and not m.hygiene(listed),
                    listed.err[-200:])
            subprocess.run(["rm", "-rf", str(leftover)])
        shown = m.cli("runs", "show", run.name, "--runs-dir", mount)
        m.check("full disk: the run shows after space is freed", shown.code == 0 and not m.hygiene(shown))
        again = m.rnnlab("run", "--resume", run.name, "--runs-dir", mount, "--set", "train.steps=45", "--quiet")
        m.check("full disk: and resumes", again.code == 0 and status(run)["state"] == "finished", again.err[-300:])
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True)
    full_during_training(m, mount)


def full_during_training(m: Matrix, mount: Path) -> None:
    """Room for one checkpoint and not two: the disk fills in the middle of a run."""
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160k", "tmpfs", str(mount)], capture_output=True)
    if mounted.returncode != 0:
        return
    try:
        trained = m.rnnlab("run", m.config(steps=60, checkpoint_every=10), "--runs-dir", mount, "--quiet")
        m.clean_error("disk full mid-run: one line", trained, code=trained.code if trained.code else -1)
        run = only_run(mount)
        kept = [p for p in (run / "checkpoints").glob("*.pt")]
        m.check("disk full mid-run: the checkpoints written load", kept and all(loads(p) for p in kept),
                ", ".join(p.name for p in kept))
        shown = m.cli("runs", "show", str(run))
        m.check("disk full mid-run: the run shows", shown.code == 0 and not m.hygiene(shown), shown.err[-200:])
        roomy = m.fresh_runs("roomy")
        moved = copy_run(run, roomy, run.name)
        for leftover in moved.rglob(".*.tmp"):
            leftover.unlink()
        resumed = m.rnnlab("run", "--resume", moved.name, "--runs-dir", roomy, "--quiet")
        m.check("disk full mid-run: resumes on a disk with room", resumed.code == 0
                and status(moved)["state"] == "finished", resumed.err[-300:])
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True)


def run_all(m: Matrix, fx: Fixtures) -> None:
    m.case("sigint and resume", interrupt_and_resume, fx, signal.SIGINT, "sigint")
    m.case("sigterm and resume", interrupt_and_resume, fx, signal.SIGTERM, "sigterm")
    m.case("kill -9 and resume", interrupt_and_resume, fx, signal.SIGKILL, "kill-9")
    m.case("kill -9 at random moments", random_kills, fx)
    m.case("sigint inside a long rtrl step", stop_inside_a_long_step, fx, signal.SIGINT, "sigint mid-step")
    m.case("crash artefacts", crash_artefacts, fx)
    m.case("concurrent starts", concurrent_starts, fx)
    m.case("divergence", divergence, fx)
    m.case("corrupt files", corrupt_files, fx)
    m.case("hostile names", hostile_names, fx)
    m.case("hostile corpus", hostile_corpus, fx)
    m.case("full disk", full_disk, fx)
