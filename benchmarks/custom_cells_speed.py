"""Benchmark: custom-cell models against the fused torch LSTM, forward + backward on CPU.

Same shape for all (1 layer, 256 units, batch 32, seq 128, embedded tokens,
cross-entropy, backward): tokens/s of each arch and its ratio to its nearest
fused model (lstm for the LSTM-likes, gru for the GRU-likes, elman for the
rest). Issue 5's target: >= 0.5 for single-layer custom cells. Runs are
interleaved (fused, custom, fused, ...) so a busy neighbour on the shared
cores slows both alike; the best of the repeats is kept.

    python benchmarks/custom_cells_speed.py [--archs lstm_cell,mgu] [--repeats 5] [--eager]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from rnnlab import config
from rnnlab.models import TaskSpec, build_model
from rnnlab.models.custom import compile_path

FUSED = {"lstm_cell": "lstm", "lstm_peephole": "lstm", "gru_cell": "gru", "mgu": "gru"}  # else elman
SPEC = TaskSpec(input_size=96, output_size=96, vocab_size=96)


def build(arch: str, hidden: int):
    torch.manual_seed(0)
    return build_model(config.load(None, [f"model.arch={arch}", f"model.hidden={hidden}", "model.layers=1"]).model, SPEC)


def seconds_per_step(model, x, y, steps: int) -> float:
    def one():
        out, _ = model(x)  # (B, T, V)
        F.cross_entropy(out.transpose(1, 2), y).backward()
        model.zero_grad(set_to_none=True)

    for _ in range(3):  # warm-up: TorchScript profiles the first calls, then optimises
        one()
    start = time.perf_counter()
    for _ in range(steps):
        one()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--archs", default="lstm_cell,lstm_peephole,gru_cell,mgu,elman_act,leaky,residual,gated_residual")
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--eager", action="store_true", help="run the custom loops eagerly (no TorchScript)")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, loop: {'eager' if args.eager else compile_path()}")
    x = torch.randint(0, 96, (args.batch, args.seq))
    y = torch.randint(0, 96, (args.batch, args.seq))
    tokens = args.batch * args.seq
    for arch in args.archs.split(","):
        reference = FUSED.get(arch, "elman")
        fused = build(reference, args.hidden)
        model = build(arch, args.hidden)
        model.compiled = not args.eager
        fused_s, custom_s = [], []
        for _ in range(args.repeats):
            fused_s.append(seconds_per_step(fused, x, y, args.steps))
            custom_s.append(seconds_per_step(model, x, y, args.steps))
        f, c = min(fused_s), min(custom_s)  # best of repeats: the least disturbed measurement
        print(f"{arch:15s} {tokens / c:9.0f} tok/s   fused {reference:6s} {tokens / f:9.0f} tok/s   ratio {f / c:.2f}")


if __name__ == "__main__":
    main()
