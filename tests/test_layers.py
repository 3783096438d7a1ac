"""Imports point down: every import in rnnlab/ checked against the layer order of docs/architecture.md.

The order's one home is the ```layers block of docs/architecture.md; this test reads it there. Every
import counts, the function-level ones too (the code imports torch-heavy modules lazily, and a lazy
import that points up is still an arrow up). A new module must be given a layer in the docs.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "architecture.md"
TEXTUAL = ("textual", "textual_serve", "rich.live")  # the TUI's alone: DESIGN.md's library never imports them
LIVE_OK = ("rnnlab/cli",)  # ... but the CLI's sweep table is a rich.live one
RAY_HOME = "rnnlab/sweeps/ray_backend.py"  # the only module that imports ray; others import it lazily


def read_layers(text: str) -> list[list[str]]:
    """The ```layers block: one layer a line, lowest first, `N  path path ...`, an indented line carrying
    on the layer above (a path ending in / is a folder: every module under it)."""
    layers = []
    for line in text.split("```layers\n", 1)[1].split("```", 1)[0].splitlines():
        if line[:1].isspace() and layers:
            layers[-1] += line.split()
        elif line.strip():
            assert line.split()[0] == str(len(layers) + 1), f"layers out of order at {line!r}"
            layers.append(line.split()[1:])
    return layers


def layer_of(path: str, layers: list[list[str]]) -> int | None:
    """The layer of a module (its path relative to the repository): the longest entry that names it."""
    best, depth = None, -1
    for index, entries in enumerate(layers):
        for entry in entries:
            if (path == entry or (entry.endswith("/") and path.startswith(entry))) and len(entry) > depth:
                best, depth = index, len(entry)
    return best


def module_path(name: str, root: Path) -> str:
    """A dotted name -> the file that defines it, relative to `root`; a name that is no module (`from .
    import ARCHS`) is its package's __init__.py."""
    parts = name.split(".")
    while parts:
        base = "/".join(parts)
        for candidate in (f"{base}.py", f"{base}/__init__.py"):
            if (root / candidate).is_file():
                return candidate
        parts = parts[:-1]
    raise AssertionError(f"no module for {name}")


def imports(path: Path, root: Path) -> list[tuple[int, str, bool]]:
    """(line, dotted name, inside a function) of every import in a file, at any depth; relative ones
    resolved. `from X import a, b` gives X.a and X.b (each may be a submodule: module_path tells)."""
    package = path.relative_to(root).with_suffix("").parts
    package = package[:-1]  # a module's package; for an __init__, the package itself
    found = []

    def visit(node: ast.AST, lazy: bool) -> None:
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name, lazy) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[:len(package) - node.level + 1]) if node.level else ""
            module = ".".join(part for part in (base, node.module) if part)
            found.extend((node.lineno, f"{module}.{alias.name}", lazy) for alias in node.names)
        inside = lazy or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        for child in ast.iter_child_nodes(node):
            visit(child, inside)

    visit(ast.parse(path.read_text(encoding="utf-8")), False)
    return found


def violations(root: Path, layers: list[list[str]]) -> list[str]:
    """Every import of the rnnlab package under `root` that breaks the rules, one line each."""
    problems = []
    for path in sorted((root / "rnnlab").rglob("*.py")):
        source = path.relative_to(root).as_posix()
        mine = layer_of(source, layers)
        if mine is None:
            problems.append(f"{source}: has no layer in docs/architecture.md")
            continue
        for line, name, lazy in imports(path, root):
            where = f"{source}:{line} imports {name}"
            top = name.split(".")[0]
            if any(name == lib or name.startswith(lib + ".") for lib in TEXTUAL):
                live_ok = name.startswith("rich.live") and source.startswith(LIVE_OK)
                if not source.startswith("rnnlab/tui/") and not live_ok:
                    problems.append(f"{where}: only rnnlab/tui/ may")
            elif top == "ray" and source != RAY_HOME:
                problems.append(f"{where}: only {RAY_HOME} may")
            if top != "rnnlab":
                continue
            target = module_path(name, root)
            theirs = layer_of(target, layers)
            if target == RAY_HOME and not lazy:
                problems.append(f"{where}: at module level (ray would load with rnnlab)")
            if theirs is not None and theirs > mine:
                problems.append(f"{where}: layer {theirs + 1} is above {source}'s layer {mine + 1}")
            own_init = (path.parent / "__init__.py").relative_to(root).as_posix()
            if target == own_init and path.name != "__init__.py":
                problems.append(f"{where}: its own package's __init__, which imports it")
    return problems


def test_every_import_points_down_the_documented_layers():
    layers = read_layers(DOC.read_text(encoding="utf-8"))
    assert len(layers) > 10
    assert violations(ROOT, layers) == []


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


LOW_HIGH = [["rnnlab/__init__.py", "rnnlab/low.py", "rnnlab/pkg/", "rnnlab/sweeps/"], ["rnnlab/high.py", "rnnlab/tui/"]]


@pytest.mark.parametrize("files, expected", [
    ({"rnnlab/low.py": "def f():\n    from .high import x\n"},  # a lazy import counts
     "rnnlab/low.py:2 imports rnnlab.high.x: layer 2 is above rnnlab/low.py's layer 1"),
    ({"rnnlab/low.py": "import rnnlab.high\n"},
     "rnnlab/low.py:1 imports rnnlab.high: layer 2 is above rnnlab/low.py's layer 1"),
    ({"rnnlab/pkg/__init__.py": "from .registry import TABLE\nfrom . import leaf\n",
      "rnnlab/pkg/registry.py": "TABLE = {}\n", "rnnlab/pkg/leaf.py": "from . import TABLE\n"},
     "rnnlab/pkg/leaf.py:1 imports rnnlab.pkg.TABLE: its own package's __init__, which imports it"),
    ({"rnnlab/low.py": "from textual.widgets import Static\n"},
     "rnnlab/low.py:1 imports textual.widgets.Static: only rnnlab/tui/ may"),
    ({"rnnlab/new.py": ""}, "rnnlab/new.py: has no layer in docs/architecture.md"),
    ({"rnnlab/low.py": "import ray\n"}, "rnnlab/low.py:1 imports ray: only rnnlab/sweeps/ray_backend.py may"),
    ({"rnnlab/sweeps/backends.py": "from . import ray_backend\n"},  # ray would load with rnnlab
     "rnnlab/sweeps/backends.py:1 imports rnnlab.sweeps.ray_backend: at module level (ray would load with rnnlab)"),
])
def test_a_violation_is_found(tmp_path, files, expected):
    write(tmp_path, {"rnnlab/__init__.py": "", "rnnlab/high.py": "x = 1\n", "rnnlab/low.py": "",
                     "rnnlab/tui/app.py": "import textual\nfrom ..low import f\n", "rnnlab/sweeps/__init__.py": "",
                     "rnnlab/sweeps/ray_backend.py": "import ray\n", **files})
    assert violations(tmp_path, LOW_HIGH) == [expected]


def test_what_points_down_passes(tmp_path):
    write(tmp_path, {"rnnlab/__init__.py": "", "rnnlab/low.py": "x = 1\n",
                     "rnnlab/high.py": "from . import low\nfrom .low import x\ndef f():\n    import rnnlab.low\n",
                     "rnnlab/pkg/__init__.py": "from . import leaf\n", "rnnlab/pkg/leaf.py": "from .. import low\n",
                     "rnnlab/sweeps/__init__.py": "", "rnnlab/sweeps/ray_backend.py": "import ray\n",
                     "rnnlab/sweeps/backends.py": "def start():\n    from . import ray_backend\n"})
    assert violations(tmp_path, LOW_HIGH) == []
