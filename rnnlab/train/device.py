"""Device choice: `auto` picks cuda, then mps, then cpu."""

from __future__ import annotations

import torch

from ..errors import ConfigError


ALLOWED = "auto, cpu, cuda, cuda:N, mps"


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError("device", name, "CUDA is not available on this machine", "auto, cpu")
        suffix = name.partition(":")[2]
        if name != "cuda" and not (name.startswith("cuda:") and suffix.isdigit()):
            raise ConfigError("device", name, "not a device name", ALLOWED)
        index = int(suffix) if suffix else 0
        if index >= torch.cuda.device_count():
            raise ConfigError("device", name, f"only {torch.cuda.device_count()} CUDA device(s)",
                              f"cuda:0 .. cuda:{torch.cuda.device_count() - 1}")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("device", name, "MPS is not available on this machine", "auto, cpu")
    try:
        return torch.device(name)
    except RuntimeError:  # torch's message lists twenty backends no one has; name the ones that matter
        raise ConfigError("device", name, "not a device name", ALLOWED) from None


def check_precision(precision: str, device: torch.device) -> None:
    if precision == "bf16" and device.type != "cuda":
        raise ConfigError("precision", precision, f"bf16 autocast needs a CUDA device (this run: {device})",
                          "fp32")
