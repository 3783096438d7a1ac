"""The attention probe: an encoder-decoder's attention weights on the first probe example, as an event.

It decodes the live model greedily (decoding.translate, as `rnnlab translate`
does with a saved one), so the `attention` event shows what the model would
answer, its weights over the source for each output token, and the truth.
"""

from __future__ import annotations

from torch import Tensor

from ..decoding import PAD, Seq2SeqVocab, translate


def attention_event(model, task, x: Tensor, y: Tensor) -> dict | None:
    """The attention probe: decode the first probe example greedily, with its weights (None without attention).
    x (B, S) source ids, PAD after each source; y (B, U) target ids."""
    if getattr(model, "attention", None) is None or not hasattr(task, "source"):  # captions have no source tokens
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
