"""Benchmark: custom-cell models against the fused torch kernels, forward + backward on CPU.

Same shape for all (1 layer, 256 units, batch 32, seq 128, embedded tokens,
cross-entropy, backward): tokens/s of each arch, with its hand-derived
backward (models/sequence_grad.py) where it has one and with autograd through
the time loop (what every cell ran before), each as a ratio to its nearest
fused model (lstm for the LSTM-likes, gru for the GRU-likes, elman for the
rest). Issue 17's target: >= 0.8 for lstm_cell, lstm_peephole (fused LSTM),
leaky, residual, gated_residual (fused Elman). Runs are interleaved (fused,
hand, autograd, fused, ...) so a busy neighbour on the shared cores slows all
alike; the best of the repeats is kept.

`matmul work` is the fused model's matmul work per token over the custom
model's (input projection, recurrence, read-out): the ratio a cell would show
if both ran matmul-bound at one FLOP rate. A cell with more weight blocks than
its counterpart does more work (gated_residual: 2 blocks against the Elman's 1,
0.57 at 256 units), and more pointwise work per step, which the fused kernels
(oneDNN's RNN on CPU) fuse into their own loops. Denormals are flushed to
zero, as the trainer does on the CPU (train/loop.py prepare): the untrained
residual net's h grows by f(.) each step, its logits reach the hundreds and
the softmax's gradient holds denormal floats, which make the read-out's
matmuls many times slower on x86 whatever the cell. --keep-denormal measures
without the flush (what runs got before it).

    python benchmarks/custom_cells_speed.py [--archs lstm_cell,mgu] [--repeats 5] [--eager] [--keep-denormal]

Measured (issue 17), two runs of --repeats 2 on the idle 2-core machine (torch 2.13 CPU, one thread,
denormals flushed): ratio to the fused kernel with the hand backward (autograd through the loop, what
ran before, in brackets): lstm_cell 0.84-0.95 (0.70-0.71), lstm_peephole 0.84-0.86 (0.58-0.60),
gru_cell 1.16-1.18 (0.89-0.91), mgu 1.90-1.96 (1.50-1.55), elman_act 1.06-1.08 (0.97-1.02), leaky
0.93-0.95 (0.87), residual 1.05-1.08 (0.97-0.98), gated_residual 0.57-0.58 (0.45-0.46; its matmul work
is 1.75x the Elman's: 0.57 is what equal FLOP rates give), indrnn 1.72-1.79 (autograd only).
With --keep-denormal: residual 0.39, gated_residual 0.59.
"""

from __future__ import annotations

import argparse
import os
import time

import torch
import torch.nn.functional as F

from rnnlab import config
from rnnlab.models import TaskSpec, build_model
from rnnlab.models.custom import compile_path

FUSED = {"lstm_cell": "lstm", "lstm_peephole": "lstm", "gru_cell": "gru", "mgu": "gru"}  # else elman
FUSED_BLOCKS = {"lstm": 4, "gru": 3, "elman": 1}
SPEC = TaskSpec(input_size=96, output_size=96, vocab_size=96)


def build(arch: str, hidden: int):
    torch.manual_seed(0)
    return build_model(config.load(None, [f"model.arch={arch}", f"model.hidden={hidden}", "model.layers=1"]).model, SPEC)


def seconds_per_step(model, x, y, steps: int) -> float:
    def one():
        out, _ = model(x)  # (B, T, V)
        F.cross_entropy(out.transpose(1, 2), y).backward()
        model.zero_grad(set_to_none=True)

    for _ in range(2):  # warm-up: TorchScript profiles the first calls
        one()
    start = time.perf_counter()
    for _ in range(steps):
        one()
    return (time.perf_counter() - start) / steps


def matmul_flops(blocks: int, hidden: int, embed: int, vocab: int, dense: bool = True) -> int:
    """Multiply-adds per token of a 1-layer model whose cell has `blocks` weight blocks: the input
    projection, the recurrence (none when not dense: IndRNN's u * h), the read-out (a training step does
    each three times: forward, two grads)."""
    return blocks * hidden * (embed + (hidden if dense else 0)) + hidden * vocab


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--archs", default="lstm_cell,lstm_peephole,gru_cell,mgu,elman_act,leaky,residual,gated_residual,indrnn")
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--eager", action="store_true", help="run the custom loops eagerly (no TorchScript)")
    parser.add_argument("--keep-denormal", action="store_true",
                        help="do not torch.set_flush_denormal(True), which the trainer does (see above)")
    args = parser.parse_args()
    if not args.keep_denormal:
        torch.set_flush_denormal(True)
    load = os.getloadavg()[0]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, loop: {'eager' if args.eager else compile_path()}, "
          f"{os.cpu_count()} cores, load average {load:.2f} (other processes share the cores: figures vary from run to run)"
          + (", denormals kept" if args.keep_denormal else ", denormals flushed (as the trainer)"))
    x = torch.randint(0, 96, (args.batch, args.seq))
    y = torch.randint(0, 96, (args.batch, args.seq))
    tokens = args.batch * args.seq
    print(f"{'arch':15s} {'hand tok/s':>10s} {'fused':>12s} {'tok/s':>8s}   ratio  autograd loop  matmul work")
    for arch in args.archs.split(","):
        reference = FUSED.get(arch, "elman")
        fused = build(reference, args.hidden)
        model = build(arch, args.hidden)
        model.compiled = not args.eager
        times: dict[str, list[float]] = {"fused": [], "hand": [], "autograd": []}
        has_hand = model.cells[0].hand_backward is not None
        for _ in range(args.repeats):
            times["fused"].append(seconds_per_step(fused, x, y, args.steps))
            for name, hand in (("hand", True), ("autograd", False)):
                if hand and not has_hand:
                    continue
                model.hand_backward = hand
                times[name].append(seconds_per_step(model, x, y, args.steps))
        f, a = min(times["fused"]), min(times["autograd"])  # best of repeats: the least disturbed measurement
        c = min(times["hand"]) if has_hand else a
        sizes = (args.hidden, model.embed.embedding_dim, SPEC.vocab_size)
        cell = model.cells[0]
        work = matmul_flops(FUSED_BLOCKS[reference], *sizes) / matmul_flops(max(1, len(cell.gates)), *sizes,
                                                                             cell.weight_hh.dim() == 2)
        print(f"{arch:15s} {tokens / c:10.0f}   {reference:6s} {tokens / f:9.0f}   {f / c:5.2f}  "
              f"{f / a:13.2f}  {work:11.2f}" + ("" if has_hand else "  (no hand backward: autograd loop)"))


if __name__ == "__main__":
    main()
