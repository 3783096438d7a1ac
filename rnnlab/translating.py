"""Loading a trained seq2seq run to decode it (decoding.translate: greedy or beam search, with attention).

The checkpoint carries both vocabularies and how tokens join into text, so a
run decodes without its task. `rnnlab translate` and the TUI's attention
screen load through here; the attention probe decodes the live model with
decoding.translate directly (probes/attention.py), as it sits below this module.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from .decoding import EOS, Seq2SeqVocab
from .models.base import TaskSpec
from .store import RunDir
from .train import checkpoint


class LoadedSeq2Seq(NamedTuple):
    model: torch.nn.Module  # eval mode
    vocab: Seq2SeqVocab
    step: int


def load_seq2seq(run: RunDir, which: str = "best", device: str = "cpu") -> LoadedSeq2Seq:
    cfg, path, saved = checkpoint.load_for_use(run, which, device, "target_vocab",
                                               {"source_vocab": list, "target_vocab": list, "joiner": str})
    vocab = Seq2SeqVocab(saved["source_vocab"], saved["target_vocab"], saved["joiner"])
    spec = TaskSpec(input_size=len(vocab.source), output_size=len(vocab.target), vocab_size=len(vocab.source),
                    eos=EOS)
    return LoadedSeq2Seq(checkpoint.restored_model(cfg, spec, saved, path, device), vocab, int(saved["step"]))
