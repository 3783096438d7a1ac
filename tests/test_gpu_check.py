"""benchmarks/gpu_check.py must not rot where CI has no GPU: its dry mode runs every part on CPU."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_gpu_check_dry_runs_every_part_on_cpu():
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--dry"],
                            capture_output=True, text=True, timeout=300, cwd=ROOT,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "dry run on CPU (not GPU figures)" in out
    for arch in ("lstm", "lstm_cell", "lstm_peephole", "leaky", "residual", "gated_residual"):
        assert any(line.split()[:1] == [arch] for line in out.splitlines()), arch  # a speed row each
    assert "3. TUI: live view attached to" in out and "header names cpu: yes" in out
    assert "2. result: exit 0" in out and "every part ran" in out


def test_gpu_check_without_cuda_says_how_to_check_it():
    import torch

    if torch.cuda.is_available():
        return  # on a GPU machine the real check runs instead (minutes): not in the suite
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py")], capture_output=True,
                            text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 2 and "no CUDA device here: run with --dry" in result.stderr
