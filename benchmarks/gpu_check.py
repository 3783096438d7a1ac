"""GPU check: what a CUDA machine gives rnnlab, in one run of at most 8 minutes.

    python benchmarks/gpu_check.py [--corpus ../shared/data/tinyshakespeare.txt] [--train-seconds 300]
    python benchmarks/gpu_check.py --dry      # anywhere, CI included: the same code paths on CPU, tiny and short

1. Speed: forward + backward tokens/s of the fused LSTM (cuDNN) and of every custom cell (the TorchScript
   loop), in fp32 and under bf16 autocast, with each one's peak GPU memory; the custom cells' ratio to their
   fused counterpart (as benchmarks/custom_cells_speed.py pairs them).
2. Quality: an LSTM trained on tinyshakespeare for --train-seconds through `rnnlab run` (train.time_limit;
   its step count set from the speed measured in 1, so the cosine schedule ends where the time does), and
   its validation loss against the goal of 1.40 nats/char (nanoGPT's char transformer reaches 1.47 in 3
   minutes on an A100).
3. The TUI: the app's live view attached to that GPU run while it trains (the real app, headless through
   App.run_test): the header names the CUDA device and the step count advances.

Exit status: 0 when every part ran (the loss goal is reported, not enforced), 1 when one failed.
Figures: none yet; no session with a GPU has run it (the device tool's status decides, per task).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from rnnlab import config, store, worker
from rnnlab.models import ARCHS, TaskSpec, build_model
from rnnlab.models.custom import CustomRecurrentModel

ROOT = Path(__file__).resolve().parent.parent
SHAKESPEARE = ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"
FUSED_PARTNER = {"lstm_cell": "lstm", "lstm_peephole": "lstm", "gru_cell": "gru", "mgu": "gru"}  # else elman
GOAL = 1.40  # nats/char on tinyshakespeare's validation text
# The LSTM of part 2: Karpathy's char-rnn size class (2 x 512 reached ~1.4 there), larger batch for a GPU.
TRAIN_SETS = ["model.arch=lstm", "model.hidden=1024", "model.layers=2", "model.embed=128", "model.dropout=0.2",
              "task.name=charlm", "task.seq_len=256", "train.batch_size=128", "train.optimizer=adam",
              "train.lr=2e-3", "train.schedule=cosine", "train.lr_min=1e-4", "train.warmup_steps=100",
              "train.clip=1.0", "train.eval_every=250", "train.eval_batches=20", "train.checkpoint_every=1000",
              "precision=bf16", "probes.every=0"]
DRY_SETS = ["model.arch=lstm", "model.hidden=32", "model.layers=1", "model.embed=16", "task.name=charlm",
            "task.corpus=stdlib", "task.seq_len=32", "train.batch_size=8", "train.eval_every=20",
            "train.eval_batches=2", "train.checkpoint_every=0", "probes.every=0", "train.steps=100000"]


def custom_cells() -> list[str]:
    return [name for name in ARCHS.names() if issubclass(ARCHS.get(name), CustomRecurrentModel)]


def tokens_per_s(arch: str, device: torch.device, bf16: bool, hidden: int, batch: int, seq: int,
                 steps: int) -> tuple[float, float]:
    """(tokens/s of forward + backward, peak memory in MiB or nan on CPU) at one shape."""
    torch.manual_seed(0)
    spec = TaskSpec(input_size=96, output_size=96, vocab_size=96)
    model = build_model(config.load(None, [f"model.arch={arch}", f"model.hidden={hidden}", "model.layers=1"]
                                    ).model, spec).to(device)
    x = torch.randint(0, 96, (batch, seq), device=device)  # (B, T)
    y = torch.randint(0, 96, (batch, seq), device=device)

    def one() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            out, _ = model(x)  # (B, T, V)
            loss = F.cross_entropy(out.float().transpose(1, 2), y)
        loss.backward()
        model.zero_grad(set_to_none=True)

    for _ in range(3):  # warm-up: cuDNN picks its algorithms, TorchScript profiles then optimises
        one()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(steps):
        one()
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() / 2 ** 20 if device.type == "cuda" else math.nan
    return batch * seq * steps / seconds, peak


def speed(device: torch.device, dry: bool) -> dict[tuple[str, bool], float]:
    shape = dict(hidden=32, batch=4, seq=16, steps=2) if dry else dict(hidden=1024, batch=128, seq=256, steps=10)
    print(f"\n1. speed: 1 layer, {shape['hidden']} units, batch {shape['batch']}, seq {shape['seq']}, "
          "forward + backward")
    print(f"   {'arch':16} {'fp32 tok/s':>12} {'bf16 tok/s':>12} {'vs fused fp32':>14} {'peak MiB':>9}")
    rates = {}
    archs = ["lstm", "gru", "elman"] + custom_cells()
    for arch in archs:
        peak = math.nan
        for bf16 in (False, True):
            rates[arch, bf16], used = tokens_per_s(arch, device, bf16, **shape)
            peak = used if math.isnan(peak) else max(peak, used)
        partner = FUSED_PARTNER.get(arch, "elman") if arch not in ("lstm", "gru", "elman") else None
        ratio = f"{rates[arch, False] / rates[partner, False]:.2f}" if partner else "-"
        print(f"   {arch:16} {rates[arch, False]:12,.0f} {rates[arch, True]:12,.0f} {ratio:>14} {peak:9.0f}")
    return rates


async def attach_live_view(runs_dir: Path, run_id: str, seconds: float) -> tuple[str, int, int]:
    """Open the real app on the run's live view; (the header's text, a step seen, a later step seen)."""
    from rnnlab.tui import make_app
    from rnnlab.tui.screens.live import LiveScreen
    from rnnlab.tui.widgets.header import RunHeader

    app = make_app(runs_dir, run_id)
    async with app.run_test(size=(120, 40)) as pilot:
        deadline = time.monotonic() + 120
        while not (isinstance(app.screen, LiveScreen) and app.screen.curves.step > 0):
            if time.monotonic() > deadline:
                raise RuntimeError("the live view never showed a training step")
            await pilot.pause(0.2)
        first = app.screen.curves.step
        await pilot.pause(seconds)
        return app.screen.query_one(RunHeader).render().plain, first, app.screen.curves.step


def train_and_watch(device: torch.device, dry: bool, corpus: Path, seconds: float, lstm_rate: float) -> bool:
    """Parts 2 and 3: `rnnlab run` for `seconds`, the live view attached to it meanwhile."""
    with tempfile.TemporaryDirectory() as folder:
        runs_dir = Path(folder) / "runs"
        if dry:
            sets = DRY_SETS + ["device=cpu", f"train.time_limit={seconds}"]
        else:
            # Steps for the time: part 1's rate at this shape (bf16), less a fifth for evaluations and the
            # second layer's cost; the run ends at the time limit either way.
            steps = max(200, int(0.8 * seconds * lstm_rate / 2 / (128 * 256)))
            sets = TRAIN_SETS + [f"device={device}", f"task.corpus={corpus}", f"train.steps={steps}",
                                 f"train.time_limit={seconds}"]
        print(f"\n2. quality: rnnlab run --set {' --set '.join(sets)}")
        log = Path(folder) / "run.log"
        process = worker.start(runs_dir, None, sets, log=log)
        run = store.find_new_run(runs_dir, set(), process, timeout=120)
        if run is None:
            print("   failed to start:", log.read_text()[-2000:])
            return False
        try:
            header, first, later = asyncio.run(attach_live_view(runs_dir, run.id, 3 if dry else 10))
        except Exception as error:  # noqa: BLE001 - a report, not a crash: part 2 still finishes
            print(f"\n3. TUI: the live view did not attach: {error.__class__.__name__}: {error}")
            attached = False
        else:
            shown = str(device) in header
            print(f"\n3. TUI: live view attached to {run.id}: header names {device}: {'yes' if shown else 'NO'}; "
                  f"step {first} -> {later} in {3 if dry else 10} s")
            attached = shown and later > first
        code = process.wait()
        status = store.RunDir(run.path).read_status()
        best = status.get("best_val")
        print(f"\n2. result: exit {code}, {status.get('step')} steps in {status.get('elapsed', 0):.0f} s, "
              f"best validation loss {best if best is None else f'{best:.3f}'} nats/char"
              + ("" if dry else f" (goal <= {GOAL}: {'met' if best is not None and best <= GOAL else 'NOT met'})"))
        return attached and code == 0 and best is not None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry", action="store_true", help="CPU, tiny sizes, seconds: checks the script runs")
    parser.add_argument("--corpus", type=Path, default=SHAKESPEARE)
    parser.add_argument("--train-seconds", type=float, default=300.0)
    args = parser.parse_args()
    dry = args.dry
    if not dry and not torch.cuda.is_available():
        print("no CUDA device here: run with --dry to check the script on CPU", file=sys.stderr)
        return 2
    if not dry and not args.corpus.is_file():
        print(f"no corpus at {args.corpus}: pass --corpus PATH (tinyshakespeare.txt)", file=sys.stderr)
        return 2
    device = torch.device("cpu" if dry else "cuda")
    if dry:
        torch.set_num_threads(1)
        os.environ.setdefault("OMP_NUM_THREADS", "1")
    name = "dry run on CPU (not GPU figures)" if dry else torch.cuda.get_device_name(device)
    print(f"gpu_check: {name}; torch {torch.__version__}"
          + ("" if dry else f", cuDNN {torch.backends.cudnn.version()}"))
    started = time.perf_counter()
    rates = speed(device, dry)
    ok = train_and_watch(device, dry, args.corpus, 4.0 if dry else args.train_seconds, rates["lstm", True])
    print(f"\ngpu_check: {'every part ran' if ok else 'a part FAILED'}, {time.perf_counter() - started:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
