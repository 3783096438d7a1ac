"""Using a trained seq2seq run: decode an input (greedy or beam search) and read its attention.

The checkpoint carries both vocabularies and how tokens join into text, so a
run decodes without its task. The attention probe (`attention_event`) and
`rnnlab translate` and the TUI's attention screen all go through here.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from .config import load as load_config
from .decoding import beam_search
from .errors import CheckpointError, ConfigError
from .models import build_model
from .models.base import TaskSpec
from .store import RunDir
from .train import checkpoint

PAD, EOS = 0, 1  # the seq2seq tasks' ids (tasks/seq2seq.py)


class Seq2SeqVocab(NamedTuple):
    source: list[str]  # id -> token, PAD first
    target: list[str]  # id -> token, PAD and EOS first
    joiner: str  # "" for characters, " " for words

    def encode(self, text: str) -> Tensor:
        """Text -> source ids (S,); a token the run never saw is a one-line error."""
        tokens = text.split() if self.joiner else list(text)
        index = {token: i for i, token in enumerate(self.source)}
        unknown = sorted({t for t in tokens if t not in index or index[t] == PAD})
        if not tokens or unknown:
            raise ConfigError("input", text, f"not in the source vocabulary: {' '.join(map(repr, unknown))}"
                              if unknown else "is empty", "tokens of: " + self.joiner.join(self.source[1:]))
        return torch.tensor([index[t] for t in tokens])

    def output_tokens(self, ids) -> list[str]:
        out = []
        for i in ids:
            if i == EOS:
                break
            if i != PAD:
                out.append(self.target[i])
        return out


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


class Seq2SeqStepper:
    """A seq2seq decoder for decoding.beam_search: one source, hypotheses as rows of a batch."""

    def __init__(self, model, source: Tensor):
        self.model = model
        self.memory = model.encode(source[None])  # batch of one

    def start(self):
        bos = torch.full((1,), self.model.bos, dtype=torch.long, device=self.memory.states.device)
        logits, carry, _ = self.model.step(bos, self.model.initial_carry(self.memory), self.memory)
        return logits, (carry, self.memory)

    def step(self, tokens: Tensor, state):
        carry, memory = state
        logits, carry, _ = self.model.step(tokens, carry, memory)
        return logits, (carry, memory)

    def reorder(self, state, index: Tensor):
        carry, memory = state
        carry = tuple(c.index_select(1, index) for c in carry) if isinstance(carry, tuple) \
            else carry.index_select(1, index)  # (L, K, H)
        memory = type(memory)(*(None if part is None else part.index_select(0, index) for part in memory))
        return carry, memory


class Decoding(NamedTuple):
    source: list[str]
    output: list[str]  # without EOS
    attention: list[list[float]] | None  # (U, S): for each output token (and the EOS), weights over the source


@torch.no_grad()
def translate(model, vocab: Seq2SeqVocab, source: Tensor, max_len: int, beam: int = 1,
              alpha: float = 0.0) -> Decoding:
    """Decode one source (S,); the attention of the chosen output is read by feeding it back (teacher forcing)."""
    if beam > 1:
        tokens = beam_search(Seq2SeqStepper(model, source), beam, max_len, eos=EOS, alpha=alpha).tokens
    else:
        tokens = model.decode(source[None], max_len).ids[0].tolist()
        tokens = tokens[:tokens.index(EOS) + 1] if EOS in tokens else tokens
    output = torch.tensor(tokens, dtype=torch.long)[None]
    model(source[None], targets=output)  # fills last_attention (1, U, S)
    weights = model.last_attention
    attention = [[round(float(w), 4) for w in row] for row in weights[0]] if weights is not None else None
    return Decoding([vocab.source[i] for i in source.tolist()], vocab.output_tokens(tokens), attention)


def attention_event(model, task, x: Tensor, y: Tensor) -> dict | None:
    """The attention probe: decode the first probe example greedily, with its weights (None without attention)."""
    if getattr(model, "attention", None) is None or not hasattr(task, "source_tokens"):
        return None
    was_training = model.training
    model.eval()
    try:
        vocab = Seq2SeqVocab(task.source.tokens, task.target.tokens, task.joiner)
        length = int((x[0] != PAD).sum())
        result = translate(model, vocab, x[0, :length], max_len=y.shape[1] + 4)
    finally:
        model.train(was_training)
    return {"source": result.source, "output": result.output, "truth": task.target_tokens(y[0].tolist()),
            "weights": result.attention}
