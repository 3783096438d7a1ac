"""Benchmark: RTRL's cost per time step against BPTT's as the number of units n grows.

One Elman layer (n units, 8 input features, float64) on the adding problem's
inputs, one sequence of T steps per update, batch 1 (--batch B: B sequences,
RTRL's batch mode; --dtype float32 as training runs): the seconds per time step
of RTRL (carrying the (S x P) sensitivity, rnnlab/train/rtrl.py) and of BPTT
(forward + backward through the unrolled sequence), their ratio, and the
log-log slope of RTRL's time against n: the theory says 4 (n^2 weights times
an n x n Jacobian product per step); BPTT's is 2.

The measured slope is lower because the n^4 product is only one of three
costs per time step: a fixed one (torch.func's Jacobians, Python and
dispatch: milliseconds, whatever n), the n^3 of building ds_t/dtheta (S x P_s:
memory bound, a large constant), and the n^4 product itself. The `product`
column times that product alone (one bmm of the same shapes, random values)
and `share` its part of RTRL's step: the slope nears 4 only where the share
nears 1. experiments/studies/rtrl-cost.toml measures the same in training runs.

    python benchmarks/rtrl_cost.py [--sizes 4,8,16,32,64] [--steps 20] [--batch 1] [--dtype float64]
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from rnnlab import config
from rnnlab.models import build_model
from rnnlab.tasks import build_task
from rnnlab.train.rtrl import RTRL


def seconds(fn, repeats: int) -> float:
    fn()  # warm-up
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="4,8,16,32,64")
    parser.add_argument("--steps", type=int, default=20, help="T: time steps per sequence")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=1, help="sequences per update (above 1: batch mode)")
    parser.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.dtype}, batch {args.batch}; "
          f"seconds per time step, best of {args.repeats}")
    print(f"{'n':>4} {'params':>7} {'rtrl s/step':>12} {'bptt s/step':>12} {'rtrl/bptt':>10} {'product':>9} "
          f"{'share':>6}")
    rows = []
    for n in (int(v) for v in args.sizes.split(",")):
        cfg = config.load(None, ["model.arch=elman", f"model.hidden={n}", "model.layers=1",
                                 "task.name=adding", f"task.length={args.steps}"])
        task = build_task(cfg.task, 0)
        torch.manual_seed(0)
        dtype = getattr(torch, args.dtype)
        model = build_model(cfg.model, task.spec).to(dtype)
        x, y, mask = task.train_batch(args.batch, torch.Generator().manual_seed(1))
        batch = (x.to(dtype), y.to(dtype), mask)
        mode = "pattern" if args.batch == 1 else "batch"
        algorithm = RTRL(task, model, args.batch, mode, torch.Generator(), torch.device("cpu"))
        algorithm._batch = lambda: batch

        def bptt():
            output, _ = model(batch[0])
            task.loss(output, batch[1], batch[2]).backward()

        rtrl_s = seconds(lambda: algorithm.step_loss(model), args.repeats) / args.steps
        bptt_s = seconds(bptt, args.repeats) / args.steps
        size = algorithm.step_model.state_size
        jacobian = torch.randn(args.batch, size, size, dtype=dtype)  # (B, S, S)
        sensitivity = torch.randn(args.batch, size, algorithm.state_count, dtype=dtype)  # (B, S, P_s)
        product_s = seconds(lambda: torch.bmm(jacobian, sensitivity), args.repeats)
        params = sum(p.numel() for p in model.parameters())
        rows.append((n, rtrl_s, bptt_s, product_s))
        print(f"{n:4d} {params:7d} {rtrl_s:12.2e} {bptt_s:12.2e} {rtrl_s / bptt_s:10.1f} {product_s:9.2e} "
              f"{product_s / rtrl_s:6.1%}")
    for (n0, r0, b0, p0), (n1, r1, b1, p1) in zip(rows, rows[1:]):
        ratio = math.log(n1 / n0)
        print(f"log-log slope, n = {n0} to {n1}: rtrl {math.log(r1 / r0) / ratio:.2f}, "
              f"bptt {math.log(b1 / b0) / ratio:.2f}, the n^4 product alone {math.log(p1 / p0) / ratio:.2f}")
    # a step costs a + b n^3 + c n^4: its local slope is 0, 3 and 4 weighted by the three costs' shares
    print("theory: 4 for RTRL once the n^4 product dominates its step. The rest of the step is a fixed cost "
          "(slope 0) and the n^3 work of building ds_t/dtheta (slope 3, memory bound), so the measured slope is "
          "about 3 x (n^3 share) + 4 x (the share above): below 4 until that share nears 100%. BPTT's 2 needs its "
          "matrix products to outweigh its per-step overheads.")


if __name__ == "__main__":
    main()
