"""The reliability matrix: every way a user or a crash has broken rnnlab, replayed end to end.

    python scripts/reliability.py [--only WORD]

Real processes, started the way users start them (`python -m rnnlab ...`), killed
with real signals; corrupt, hostile and full-disk run directories made on purpose;
60+ bad command lines. Each check asserts what a user must see: one clear line and
the right exit code, never a traceback, never a raw control character, never advice
to load a checkpoint unsafely, and an existing run left byte for byte as it was.
The last line is `reliability: N passed, M failed` (exit 1 when any failed).

The cases: scripts/reliability_cases.py (processes, corrupt files, hostile names,
full disk) and scripts/bad_inputs.py (the bad command lines).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEXT = ("the quick brown fox jumps over the lazy dog. " * 60
        + "a stitch in time saves nine; all that glitters is not gold. " * 60)
TINY = """\
name = "tiny"
device = "cpu"
threads = 1
[model]
arch = "gru"
hidden = 16
layers = 1
embed = 8
[task]
corpus = "{corpus}"
seq_len = 16
[train]
steps = {steps}
batch_size = 4
eval_every = 20
eval_batches = 2
checkpoint_every = {checkpoint_every}
[probes]
every = 10
"""
TRACEBACK = re.compile(r"Traceback \(most recent call last\)|^\s+File \"", re.M)
BOX = re.compile("[╭╰│─]")
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # raw control bytes a terminal would obey (\t \n allowed)


@dataclass
class Called:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


class Matrix:
    """Collects named checks; a case that raises counts as one failed check, with its reason."""

    def __init__(self, only: str | None):
        self.only, self.passed, self.failed = only, 0, []
        self.work = Path(tempfile.mkdtemp(prefix="rnnlab-reliability-"))
        (self.work / "corpus.txt").write_text(TEXT)

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        if ok:
            self.passed += 1
        else:
            self.failed.append(name)
            print(f"FAIL {name}" + (f": {detail}" if detail else ""), flush=True)
        return ok

    def case(self, name: str, function, *args) -> None:
        if self.only and self.only not in name:
            return
        began = time.perf_counter()
        try:
            function(self, *args)
        except Exception as error:  # the case itself broke: that is a failure, said in one line
            self.check(name, False, f"case raised {error.__class__.__name__}: {error}")
            if os.environ.get("RNNLAB_DEBUG"):
                traceback.print_exc()
        seconds = time.perf_counter() - began
        if seconds > 1:  # the slow cases say how long they took: where the matrix's time goes
            print(f"  {name} ({seconds:.1f}s)", flush=True)

    # -- fixtures ---------------------------------------------------------------------
    def config(self, steps: int = 40, checkpoint_every: int = 10, name: str = "tiny") -> Path:
        path = self.work / f"{name}-{steps}-{checkpoint_every}.toml"
        path.write_text(TINY.format(corpus=self.work / "corpus.txt", steps=steps,
                                    checkpoint_every=checkpoint_every).replace('"tiny"', f'"{name}"'))
        return path

    def fresh_runs(self, label: str) -> Path:
        path = Path(tempfile.mkdtemp(prefix=f"{label}-", dir=self.work))
        return path

    # -- running rnnlab -------------------------------------------------------------------
    def rnnlab(self, *args, timeout: float = 120) -> Called:
        """The real console entry point in a child process, as a user's shell starts it."""
        done = subprocess.run([sys.executable, "-m", "rnnlab", *map(str, args)], capture_output=True,
                              text=True, timeout=timeout, env=child_env(), stdin=subprocess.DEVNULL)
        return Called(done.returncode, done.stdout, done.stderr)

    def start(self, *args) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "rnnlab", *map(str, args)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=child_env(), stdin=subprocess.DEVNULL)

    def cli(self, *args, stdin: str = "") -> Called:
        """`rnnlab.cli.main` in this process (what the console script calls), with its own stdio.

        Bad command lines fail before any training, so they need no child process of their own:
        60 of them in-process take seconds instead of minutes of torch imports.
        """
        from rnnlab import cli

        out, err = Captured(), Captured()
        streams = (sys.stdin, sys.stdout, sys.stderr, sys.argv)
        sys.stdin = io.TextIOWrapper(io.BytesIO(stdin.encode()), encoding="utf-8")
        sys.stdout = io.TextIOWrapper(out, encoding="utf-8", write_through=True)
        sys.stderr = io.TextIOWrapper(err, encoding="utf-8", write_through=True)
        sys.argv = ["rnnlab", *map(str, args)]
        code = 0
        try:
            cli.main()
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        finally:
            sys.stdout.flush(), sys.stderr.flush()
            sys.stdin, sys.stdout, sys.stderr, sys.argv = streams
        return Called(code, out.getvalue().decode("utf-8", "replace"), err.getvalue().decode("utf-8", "replace"))

    # -- what every answer must look like --------------------------------------------------
    def clean_error(self, name: str, called: Called, code: int = 2, mentions: str | None = None) -> bool:
        """Exit `code`, and stderr one line `error: ...` (naming `mentions`), no traceback, no box."""
        lines = [line for line in called.err.splitlines() if line.strip()]
        problems = []
        if called.code != code:
            problems.append(f"exit {called.code}, wanted {code}")
        if len(lines) != 1 or not lines[0].startswith("error: "):
            problems.append(f"stderr is not one 'error:' line: {called.err.strip()[:300]!r}")
        if mentions and mentions not in called.err:
            problems.append(f"the message does not name {mentions!r}")
        problems += self.hygiene(called)
        return self.check(name, not problems, "; ".join(problems))

    @staticmethod
    def hygiene(called: Called) -> list[str]:
        problems = []
        if TRACEBACK.search(called.text):
            problems.append("a traceback")
        if BOX.search(called.err):
            problems.append("a usage box")
        if "error: unexpected " in called.err:
            problems.append(f"an unexpected error: {called.err.strip()[:200]!r}")
        if "weights_only" in called.text or "weights_only=False" in called.text:
            problems.append("advice about weights_only")
        if CONTROL.search(called.text):
            problems.append(f"raw control characters {sorted(set(CONTROL.findall(called.text)))!r}")
        return problems


class Captured(io.BytesIO):
    """A stream that keeps its bytes after the text wrapper around it is closed or collected."""

    def close(self) -> None:
        pass


def child_env() -> dict:
    env = dict(os.environ, COLUMNS="100", OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    env.pop("RNNLAB_RUNS_DIR", None)
    return env


def fingerprint(path: Path) -> dict[str, str]:
    """Every file under `path` and its sha256: equal fingerprints mean nothing was touched."""
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


def only_run(runs_dir: Path) -> Path:
    runs = [p for p in runs_dir.iterdir() if (p / "status.json").exists()]
    assert len(runs) == 1, f"expected one run in {runs_dir}, found {len(runs)}"
    return runs[0]


def status(run: Path) -> dict:
    return json.loads((run / "status.json").read_text())


def train_losses(run: Path) -> dict[int, float]:
    """step -> loss, with the history a resume rewrites applied (store.history)."""
    from rnnlab import store

    return {e["step"]: e["loss"] for e in store.RunDir(run).read_events() if e["kind"] == "train"}


def copy_run(run: Path, runs_dir: Path, name: str) -> Path:
    target = runs_dir / name
    shutil.copytree(run, target)
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="run only the cases whose name contains this")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(Path(__file__).parent))
    os.environ.pop("RNNLAB_RUNS_DIR", None)
    os.environ["COLUMNS"] = "100"
    os.chdir(ROOT)  # the presets are named relative to the checkout, as the README names them
    import torch

    torch.set_num_threads(1)
    import bad_inputs
    import reliability_cases

    matrix = Matrix(args.only)
    began = time.perf_counter()
    try:
        fixtures = reliability_cases.Fixtures(matrix)
        reliability_cases.run_all(matrix, fixtures)
        bad_inputs.run_all(matrix, fixtures)
    finally:
        if not args.keep:
            with contextlib.suppress(OSError):
                shutil.rmtree(matrix.work)
        else:
            print(f"work directory kept: {matrix.work}")
    print(f"reliability matrix took {time.perf_counter() - began:.0f}s")
    if matrix.failed:
        print("failed: " + ", ".join(matrix.failed))
    print(f"reliability: {matrix.passed} passed, {len(matrix.failed)} failed")
    return 1 if matrix.failed else 0


if __name__ == "__main__":
    sys.exit(main())
