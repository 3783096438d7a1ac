"""Contract 2's rule, checked: nothing outside rnnlab/store writes into a run directory or the runs dir.

Every call in rnnlab/ (outside rnnlab/store/) that can write a file — open() for writing, write_text,
mkdir, json.dump, torch.save, atomic_write, rename, rmtree, ... — must be on WRITERS below with the reason
it is not a write into a run directory. A new writer fails this test until it goes through the store or is
listed here with its reason.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "rnnlab"

# Names that write (or remove) files whatever they are called on: only paths have these methods
WRITING = {"write_text", "write_bytes", "mkdir", "makedirs", "touch", "unlink", "rmtree", "symlink_to",
           "copyfile", "copytree", "atomic_write", "extractall", "mkdtemp", "mkstemp", "NamedTemporaryFile",
           "SummaryWriter"}
# Names that write only when called on these modules (`"a-b".replace`, `list.remove`, `self.save` are not
# file writes; a Path's own .rename/.replace is not seen: the store's atomic_write is the way to rename)
MODULE_WRITING = {"os": {"replace", "rename", "remove", "rmdir", "removedirs"},
                  "shutil": {"copy", "copy2", "move"}, "json": {"dump"}, "tomli_w": {"dump"},
                  "pickle": {"dump"}, "torch": {"save"}, "np": {"save", "savez"}, "numpy": {"save", "savez"}}
# (module, function, call) -> why it is not a write into a run directory (or the runs dir)
WRITERS = {
    ("train/checkpoint.py", "save", "torch.save"): "serialises into a BytesIO; store.atomic_write writes it",
    ("train/checkpoint.py", "save", "atomic_write"): "checkpoints/<which>.pt through the store's atomic write",
    ("probes/activations.py", "save_activations", "torch.save"): "serialises into a BytesIO; "
                                                                   "RunDir.write_activations writes it",
    ("worker.py", "_spawn", "open"): "the child's output, into a log whose path the caller chose (the store "
                                     "names those in a runs dir: launch_log, RunDir.resume_log_path)",
    ("sweeps/results.py", "write_csv", "open"): "`rnnlab sweep show --csv PATH`: an export the user asked for",
    ("export.py", "write_csv", "open"): "`rnnlab runs export --csv PATH`: an export the user asked for (the CLI "
                                        "refuses a path inside a run directory)",
    ("export.py", "write_tensorboard", "SummaryWriter"): "`rnnlab runs export --tensorboard DIR`: the same",
    ("sweeps/ray_backend.py", "start", "tempfile.mkdtemp"): "a Ray actor's own temporary runs dir (filled "
                                                            "through store.unpack_run and the trainer)",
    ("sweeps/ray_backend.py", "cleanup", "shutil.rmtree"): "removes that temporary runs dir (not the user's)",
    ("tasks/corpus_cache.py", "save", "torch.save"): "serialises into a BytesIO; atomic_write writes it",
    ("tasks/corpus_cache.py", "save", "atomic_write"): "the corpus cache (~/.cache/rnnlab or $RNNLAB_CACHE), "
                                                       "never a runs dir",
    ("tasks/corpus_cache.py", "save", "folder.mkdir"): "the corpus cache's folder",
    ("tasks/corpus_cache.py", "save", "path.unlink"): "the corpus cache's least recently used entries",
    ("studies/report.py", "write_report", "path.parent.mkdir"): "docs/RESULTS.md's folder: docs generation",
    ("studies/report.py", "write_report", "archive.mkdir"): "docs/results/: docs generation",
    ("studies/report.py", "write_report", "store.atomic_write"): "docs/RESULTS.md and docs/results/*.json",
}


def _name(node: ast.expr) -> str:
    """`a.b.c` for a call's function, as written (attributes of calls and subscripts as `?`)."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_name(node.value)}.{node.attr}"
    return "?"


FILE_MODULES = {"", "io", "builtins", "codecs", "gzip", "bz2", "lzma", "tarfile"}  # open(path, mode)


def _opens_for_writing(call: ast.Call, receiver: str) -> bool:
    if receiver == "os":
        return True  # os.open: flags, not a mode; count every one
    where = 1 if receiver in FILE_MODULES else 0  # a Path's own .open(mode)
    mode = call.args[where] if len(call.args) > where else next(
        (k.value for k in call.keywords if k.arg == "mode"), None)
    if mode is None:
        return False
    if not isinstance(mode, ast.Constant) or not isinstance(mode.value, str):
        return True  # a mode not written out: assume the worst
    return any(flag in mode.value for flag in "wax+")


def writers(source: str) -> list[tuple[str, str]]:
    """(enclosing function, call) for every call in `source` that can write a file."""
    found: list[tuple[str, str]] = []

    def visit(node: ast.AST, function: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                visit(child, child.name)
                continue
            if isinstance(child, ast.Call):
                name = _name(child.func)
                last = name.rsplit(".", 1)[-1]
                receiver = name.rsplit(".", 1)[0] if "." in name else ""
                if last == "open" and _opens_for_writing(child, receiver) or last in WRITING \
                        or last in MODULE_WRITING.get(receiver, ()):
                    found.append((function, name))
            visit(child, function)

    visit(ast.parse(source), "<module>")
    return found


def scan() -> dict[tuple[str, str, str], int]:
    hits: dict[tuple[str, str, str], int] = {}
    for path in sorted(ROOT.rglob("*.py")):
        module = path.relative_to(ROOT).as_posix()
        if module.startswith("store/"):
            continue  # the run directory's own package
        for function, call in writers(path.read_text(encoding="utf-8")):
            hits[(module, function, call)] = hits.get((module, function, call), 0) + 1
    return hits


def test_every_file_writer_outside_the_store_is_listed_with_its_reason():
    unlisted = sorted(set(scan()) - set(WRITERS))
    assert not unlisted, ("these write files outside rnnlab/store: write through the store (a run directory or "
                          f"the runs dir), or list them in WRITERS with why they do not: {unlisted}")


def test_the_list_names_only_writers_that_exist():
    stale = sorted(set(WRITERS) - set(scan()))
    assert not stale, f"WRITERS lists calls the code no longer makes (remove them): {stale}"


def test_the_scan_sees_each_kind_of_writer():
    source = '''
import json, shutil, torch
from pathlib import Path
def a(run): (run.path / "x.txt").write_text("x")
def b(run): open(run.path / "y", "a").close()
def c(run): open(run.path / "z", mode="wb")
def d(run, m): open(run.path / "z", m)
def e(run): json.dump({}, handle)
def f(run): torch.save({}, run.path / "w.pt")
def g(run): (run.path / "sub").mkdir()
def h(run): shutil.rmtree(run.path)
def i(run): atomic_write(run.path / "v", b"")
def j(run): (run.path / "u").open("a")
def k(run): os.replace(run.path / "t", run.path / "s")
'''
    assert [function for function, _ in writers(source)] == list("abcdefghijk")


def test_the_scan_leaves_reads_and_strings_alone():
    source = '''
import json
def r(path, text):
    open(path).read(); open(path, "rb"); path.open("rb"); path.open(); path.read_text(); json.dumps({})
    "a-b".replace("-", "_"); text.replace("a", "b"); str(path).replace("x", "y")
'''
    assert writers(source) == []
