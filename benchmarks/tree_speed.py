"""Benchmark: training throughput of the tree models against a sequence LSTM on the same expressions.

One training step = forward + cross-entropy at the judged position + backward, on a batch of B
ListOps expressions of n operators (one seed: the same expressions for every model). A tree model
reads the node table (treelstm: the n-ary trees; treernn and treelstm_binary: the binarised ones,
which have more nodes: an operator leaf and a chain node per argument); the LSTM (fused, one layer,
the same H) reads the flat token string. "nodes/s" counts what each model composes per second (tree
nodes, or string tokens for the LSTM); "expr/s" counts expressions, the fair comparison, and the ratio
is expr/s over the LSTM's. Each model is timed interleaved with the LSTM (LSTM, model, LSTM, model,
...) so a busy neighbour slows both alike; the best of the repeats is kept. `levels` is the tree's
height (the sequential depth of the level-by-level schedule; the LSTM's is the string's length).
The last line is the child-sum Tree-LSTM run node by node (one compose call per node, by recursion):
what the level batching saves.

    python benchmarks/tree_speed.py [--operators 8] [--shape random] [--hidden 128] [--batch 64] [--device cpu]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from rnnlab import config
from rnnlab.models import build_model
from rnnlab.models.tree_table import CHILD, HEIGHT, TOKEN
from rnnlab.tasks import build_task

MODELS = [("treelstm", "tree"), ("treelstm_binary", "binary"), ("treernn", "binary")]


def setup(arch: str, form: str, args, device):
    sets = [f"model.arch={arch}", f"model.hidden={args.hidden}", "model.embed=64", "task.name=listops",
            f"task.input={form}", f"task.operators={args.operators}", f"task.shape={args.shape}"]
    if arch == "lstm":
        sets.append("model.layers=1")
    cfg = config.load(None, sets)
    task = build_task(cfg.task, 0)
    torch.manual_seed(0)
    model = build_model(cfg.model, task.spec).to(device).train()
    x, y, mask = task.train_batch(args.batch, torch.Generator().manual_seed(0))  # the same expressions for all
    return task, model, (x.to(device), y.to(device), mask.to(device))


def nodes_and_levels(x) -> tuple[int, int]:
    if x.dim() == 2:  # a flat string: its real tokens; the longest string's length
        from rnnlab.tasks.listops import PAD
        real = x != PAD
        return int(real.sum()), int(real.sum(1).max())
    return int((x[..., HEIGHT] >= 0).sum()), int(x[..., HEIGHT].max()) + 1


def node_by_node(model, x):
    """Every node's h by recursion, one compose call per node: the reference the level batching replaces."""
    zero = torch.zeros(model.hidden, device=x.device)
    roots = []
    for b in range(x.shape[0]):
        def visit(row):
            kids = [visit(int(c)) for c in x[b, row, CHILD:] if c >= 0] or [(zero, zero)]
            h, c = (torch.stack([k[i] for k in kids])[None] for i in range(2))  # (1, K, H)
            inputs = model.node_inputs(x[b, row, TOKEN][None])  # (1, D)
            out = model.compose(inputs, (h, c), leaf=int(x[b, row, HEIGHT]) == 0)
            return out[0][0], out[1][0]
        roots.append(visit(int((x[b, :, HEIGHT] >= 0).sum()) - 1)[0])
    return model.head(torch.stack(roots))  # (B, O)


def seconds_per_step(step, steps: int, device) -> float:
    """The mean time of `steps` calls after one warm-up, the device's queue drained on both sides."""
    done = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    step()
    done()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    done()
    return (time.perf_counter() - start) / steps


def trainer_step(task, model, batch):
    x, y, mask = batch

    def step():
        output, _ = model(x)
        task.loss(output, y, mask).backward()
        model.zero_grad(set_to_none=True)
    return step


def recursive_step(task, model, batch):
    x, y, mask = batch

    def step():
        F.cross_entropy(node_by_node(model, x)[:, :10], y[mask]).backward()
        model.zero_grad(set_to_none=True)
    return step


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--operators", type=int, default=8)
    parser.add_argument("--shape", default="random", choices=["random", "balanced", "left"])
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.set_num_threads(1) if device.type == "cpu" else None
    reference = setup("lstm", "flat", args, device)
    ref_nodes, ref_levels = nodes_and_levels(reference[2][0])
    print(f"ListOps, n = {args.operators} ({args.shape}), B = {args.batch}, H = {args.hidden}, {device}; "
          f"best of {args.repeats} x {args.steps} steps, each model interleaved with the LSTM")
    print(f"{'model':<28}{'input':>8}{'nodes':>8}{'levels':>8}{'nodes/s':>12}{'expr/s':>10}"
          f"{'lstm expr/s':>13}{'ratio':>8}")
    rows = [(arch, form, trainer_step, args.steps) for arch, form in MODELS]
    rows.append(("treelstm node by node", "tree", recursive_step, 1))
    for label, form, make, steps in rows:
        task, model, batch = setup(label.split()[0], form, args, device)
        nodes, levels = nodes_and_levels(batch[0])
        mine, ref = float("inf"), float("inf")
        for _ in range(args.repeats):
            ref = min(ref, seconds_per_step(trainer_step(*reference), args.steps, device))
            mine = min(mine, seconds_per_step(make(task, model, batch), steps, device))
        print(f"{label:<28}{form:>8}{nodes:>8}{levels:>8}{nodes / mine:>12,.0f}{args.batch / mine:>10,.0f}"
              f"{args.batch / ref:>13,.0f}{ref / mine:>8.2f}")
    print(f"{'lstm (fused, 1 layer)':<28}{'flat':>8}{ref_nodes:>8}{ref_levels:>8}{ref_nodes / ref:>12,.0f}"
          f"{args.batch / ref:>10,.0f}{args.batch / ref:>13,.0f}{1.0:>8.2f}")


if __name__ == "__main__":
    main()
