"""Loading a trained seq2seq run to decode it (decoding.translate: greedy or beam search, with attention).

The checkpoint carries both vocabularies and how tokens join into text, so a
run decodes without its task. `rnnlab translate` and the TUI's attention
screen load through here; the attention probe decodes the live model with
decoding.translate directly (probes/attention.py), as it sits below this module.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from .config import load as load_config
from .decoding import EOS, Seq2SeqVocab
from .errors import CheckpointError
from .models import build_model
from .models.base import TaskSpec
from .store import RunDir
from .train import checkpoint


class LoadedSeq2Seq(NamedTuple):
    model: torch.nn.Module  # eval mode
    vocab: Seq2SeqVocab
    step: int


def load_seq2seq(run: RunDir, which: str = "best", device: str = "cpu") -> LoadedSeq2Seq:
    cfg = load_config(run.config_path)
    path = checkpoint.path_for_run(run, which)
    saved = checkpoint.load(path, map_location=device)
    if "target_vocab" not in saved:
        raise CheckpointError(f"run {run.id} is not a seq2seq model (its checkpoint has no target vocabulary)")
    checkpoint.check_keys(saved, {"source_vocab": list, "target_vocab": list, "joiner": str}, path)
    vocab = Seq2SeqVocab(saved["source_vocab"], saved["target_vocab"], saved["joiner"])
    spec = TaskSpec(input_size=len(vocab.source), output_size=len(vocab.target), vocab_size=len(vocab.source),
                    eos=EOS)
    model = build_model(cfg.model, spec).to(device)
    checkpoint.load_model(model, saved["model"], path)
    return LoadedSeq2Seq(model.eval(), vocab, int(saved["step"]))
