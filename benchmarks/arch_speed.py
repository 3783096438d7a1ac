"""Benchmark: every architecture's training tokens/s over the fused torch LSTM of the same hidden size.

One training step = forward + cross-entropy + backward on a batch of B
token sequences of length T (charlm-shaped: 96 symbols, embedding 64), one
layer of H units unless the variant says otherwise; seq2seq reads a source
of T tokens and writes a target of T. Each variant is timed interleaved with
the reference (lstm, same H): reference, variant, reference, variant, ... so
a busy neighbour on shared cores slows both alike; the best of the repeats
is kept. Prints tokens/s and the ratio (issue 5's target for single-layer
custom cells: >= 0.5). On a GPU (--device cuda) the same table for CUDA.

    python benchmarks/arch_speed.py [--archs lstm,gru,...] [--hidden 256] [--repeats 3] [--device cpu]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from rnnlab import config
from rnnlab.models import ARCHS, TaskSpec, build_model
from rnnlab.models.base import apply_model

VOCAB = 96
TOKENS = TaskSpec(input_size=VOCAB, output_size=VOCAB, vocab_size=VOCAB)  # not causal: birnn may run too
PAIRS = TaskSpec(input_size=VOCAB, output_size=VOCAB, vocab_size=VOCAB, eos=1)

# (label, arch, extra --set values): every registered arch with its defaults, plus the variants worth a line
# tree models read node tables, not token sequences: benchmarks/tree_speed.py times them against an LSTM
VARIANTS = [(name, name, {}) for name, cls in ARCHS.items() if not getattr(cls, "reads_trees", False)] + [
    ("deep transition 2", "deep", {"transition_depth": 2}),
    ("deep transition 2 + shortcut", "deep", {"transition_depth": 2, "transition_shortcut": "true"}),
    ("deep output 2", "deep", {"output_depth": 2}),
    ("seq2seq fixed context", "seq2seq", {"attention": '"none"'}),
    ("ntm feedforward", "ntm", {"controller": '"feedforward"'}),
    ("jordan own output", "jordan", {"feedback": '"output"'}),
    ("lstm_peephole coupled", "lstm_peephole", {"coupled": "true"}),
]


def build(arch: str, hidden: int, extra: dict, device):
    sets = [f"model.arch={arch}", f"model.hidden={hidden}", "model.layers=1", "model.embed=64"]
    sets += [f"model.{k}={v}" for k, v in extra.items()]
    torch.manual_seed(0)
    spec = PAIRS if arch == "seq2seq" else TOKENS
    return build_model(config.load(None, sets).model, spec).to(device).train()


def seconds_per_step(model, x, y, steps: int) -> float:
    def one():
        out, _ = apply_model(model, x, y)  # (B, T, V)
        F.cross_entropy(out.transpose(1, 2), y).backward()
        model.zero_grad(set_to_none=True)

    for _ in range(2):  # warm-up: TorchScript profiles the first calls
        one()
    if x.is_cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        one()
    if x.is_cuda:
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--archs", default="", help="comma-separated labels or arch names (default: all)")
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    wanted = set(args.archs.split(",")) if args.archs else None
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}, "
          f"H={args.hidden} B={args.batch} T={args.seq}")
    generator = torch.Generator().manual_seed(0)
    x = torch.randint(2, VOCAB, (args.batch, args.seq), generator=generator).to(device)
    y = torch.randint(2, VOCAB, (args.batch, args.seq), generator=generator).to(device)
    tokens = args.batch * args.seq
    reference = build("lstm", args.hidden, {}, device)
    print(f"{'architecture':30s} {'tokens/s':>10s} {'lstm tok/s':>11s} {'ratio':>6s}")
    for label, arch, extra in VARIANTS:
        if wanted and label not in wanted and arch not in wanted:
            continue
        try:
            model = build(arch, args.hidden, extra, device)
        except Exception as error:  # noqa: BLE001 - report and go on with the others
            print(f"{label:30s} cannot build: {str(error).splitlines()[0]}")
            continue
        ours, theirs = [], []
        for _ in range(args.repeats):
            theirs.append(seconds_per_step(reference, x, y, args.steps))
            ours.append(seconds_per_step(model, x, y, args.steps))
        mine, ref = min(ours), min(theirs)  # best of repeats: the least disturbed measurement
        print(f"{label:30s} {tokens / mine:10.0f} {tokens / ref:11.0f} {ref / mine:6.2f}", flush=True)


if __name__ == "__main__":
    main()
