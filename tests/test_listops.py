"""ListOps: the generator is deterministic from a seed, its answers agree with an independent evaluator
(a stack machine over the flat string, numpy's median), its three forms carry the same expressions,
its shapes have the depths they promise, and a tree model and an LSTM learn it above chance."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from rnnlab import config, store
from rnnlab.cli import app
from rnnlab.models.tree_table import CHILD, DEPTH, HEIGHT, TOKEN
from rnnlab.tasks import build_task
from rnnlab.tasks.listops import CLOSE, NO_TOKEN, OP0, OPS, PAD, text

runner = CliRunner()
NUMPY_OPS = {"MIN": min, "MAX": max, "MED": lambda v: int(np.median(v)), "SM": lambda v: sum(v) % 10}


def task(form: str = "flat", **options):
    sets = [f"task.{k}={v}" for k, v in options.items()]
    return build_task(config.load(None, ["task.name=listops", f"task.input={form}", *sets]).task, 0)


def batch(form: str = "flat", seed: int = 3, size: int = 64, **options):
    return task(form, **options).train_batch(size, torch.Generator().manual_seed(seed))


def stack_value(tokens) -> int:
    """Nangia & Bowman's evaluation as a stack machine over the token string."""
    stack: list = []
    for t in tokens:
        if t < OP0:
            stack.append(int(t))
        elif t == CLOSE:
            args = []
            while not isinstance(stack[-1], str):
                args.append(stack.pop())
            stack.append(NUMPY_OPS[stack.pop()](args))
        elif t != PAD:
            stack.append(OPS[t - OP0])
    (value,) = stack
    return value


def table_value(table, row: int, binary: bool):
    """A node table's value from its rows (the binary chain's arguments gathered back into one call)."""
    token, kids = int(table[row, TOKEN]), [int(c) for c in table[row, CHILD:] if c >= 0]
    if not kids:
        return token if token < OP0 else OPS[token - OP0]  # an operator is a leaf of a binarised tree
    if not binary:
        return NUMPY_OPS[OPS[token - OP0]]([table_value(table, k, binary) for k in kids])
    assert token == NO_TOKEN and len(kids) == 2
    head, args = row, []
    while int(table[head, TOKEN]) == NO_TOKEN:  # ((((OP a1) a2) ..) ak): walk down the left spine
        left, right = [int(c) for c in table[head, CHILD:CHILD + 2]]
        args.append(table_value(table, right, binary))
        head = left
    return NUMPY_OPS[OPS[int(table[head, TOKEN]) - OP0]](args[::-1])


def roots(x):
    return [int((x[b, :, HEIGHT] >= 0).sum()) - 1 for b in range(x.shape[0])]


def test_generator_is_deterministic_from_a_seed():
    for form in ("flat", "tree", "binary"):
        first, again, other = batch(form, seed=5), batch(form, seed=5), batch(form, seed=6)
        assert all(torch.equal(a, b) for a, b in zip(first, again))
        assert not torch.equal(first[1][first[2]], other[1][other[2]])


@pytest.mark.parametrize("shape", ["random", "balanced", "left"])
def test_answers_agree_with_an_independent_evaluator(shape):
    x, y, mask = batch("flat", shape=shape, operators=5, max_args=4)
    values = [stack_value(row.tolist()) for row in x]
    assert values == y[mask].tolist() and mask.sum(1).eq(1).all()
    ends = [int((row != PAD).sum()) - 1 for row in x]
    assert [int(mask[b].nonzero()) for b in range(len(x))] == ends  # judged at the closing bracket
    assert len(set(values)) >= 6  # the classes are spread, not one constant answer


@pytest.mark.parametrize("shape", ["random", "balanced", "left"])
def test_the_three_forms_carry_the_same_expressions(shape):
    flat, tree, binary = (batch(form, shape=shape, operators=4) for form in ("flat", "tree", "binary"))
    for (x, y, mask), is_binary in ((tree, False), (binary, True)):
        assert torch.equal(y[mask], flat[1][flat[2]])
        for b, root in enumerate(roots(x)):
            assert table_value(x[b], root, is_binary) == int(y[b, root]) and mask[b, root]
            assert (x[b, :root + 1, CHILD:] < torch.arange(root + 1)[:, None]).all()  # children come first
    assert text(flat[0][0]).startswith("[") and text(flat[0][0]).endswith("]")
    assert binary[0].shape[-1] == CHILD + 2 and (binary[0][..., TOKEN] == NO_TOKEN).any()


def test_heights_and_depths_of_the_node_table():
    x, _, _ = batch("tree", size=16, operators=5)
    for b, root in enumerate(roots(x)):
        assert x[b, root, DEPTH] == 0 and (x[b, root + 1:, HEIGHT] == -1).all()
        for row in range(root + 1):
            kids = [int(c) for c in x[b, row, CHILD:] if c >= 0]
            assert int(x[b, row, HEIGHT]) == 1 + max((int(x[b, k, HEIGHT]) for k in kids), default=-1)
            assert all(int(x[b, k, DEPTH]) == int(x[b, row, DEPTH]) + 1 for k in kids)


@pytest.mark.parametrize("n", [1, 7, 15])
def test_shapes_set_the_depth(n):
    """Left-branching: the operators form one chain, depth n; balanced: about log n."""
    left, _, _ = batch("tree", size=32, operators=n, shape="left", max_args=2)
    balanced, _, _ = batch("tree", size=32, operators=n, shape="balanced", max_args=2)
    assert (left[..., DEPTH].amax(1) == n).all()  # the deepest digit under n operators
    assert (balanced[..., DEPTH].amax(1) == math.floor(math.log2(n)) + 1).all()  # a complete binary tree


def test_lengths_are_operator_counts(tmp_path):
    t = task("binary", train_lengths="[2,4]", eval_lengths="[1,8]")
    x, y, mask = next(t.length_eval_batches(8, 1, 8))
    assert t.trained_lengths() == (2, 4) and (x[..., TOKEN] >= OP0).logical_and(x[..., TOKEN] < CLOSE).sum() == 64


@pytest.mark.parametrize("arch,form", [("treelstm", "binary"), ("lstm", "flat")])
def test_a_tiny_run_learns_above_chance(tmp_path, arch, form):
    runs = tmp_path / "runs"
    sets = [f"model.arch={arch}", f"task.input={form}", "task.name=listops", "task.operators=1", "device=cpu",
            "model.hidden=32", "model.embed=16", "train.steps=150", "train.batch_size=32", "train.lr=0.01",
            "train.eval_every=150", "train.eval_batches=4", "train.checkpoint_every=150", "probes.every=50"]
    if arch == "lstm":
        sets.append("model.layers=1")
    result = runner.invoke(app, ["run", *[a for s in sets for a in ("--set", s)], "--runs-dir", str(runs), "--quiet"])
    assert result.exit_code == 0, result.output
    (run,) = store.list_runs(runs)
    events = store.RunDir(run.path).read_events()
    last = [e for e in events if e["kind"] == "eval"][-1]
    assert last["accuracy"] > 0.35  # chance 0.1, the most common answer about 0.11
    if arch == "treelstm":
        flow = [e for e in events if e["kind"] == "gradflow"][-1]
        # one operator of up to 3 arguments, binarised: its chain of 3 nodes over the operator's leaf
        assert flow["axis"] == "depth" and flow["steps"] == 4
        assert any(e["kind"] == "spectrum" for e in events)
        shown = runner.invoke(app, ["runs", "show", run.path.name, "--runs-dir", str(runs)])
        assert shown.exit_code == 0 and "by depth in the tree" in shown.output, shown.output
