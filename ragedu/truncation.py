"""What the top-K truncation drops: the exact marginal over the whole corpus beside the top-K approximation.   (notebook 6)

On a corpus of a few thousand passages p_θ(y|x,z) can be computed under every z, so the paper's approximation,
Σ over the top-K with p(z|x) renormalised, can be compared with the exact sum (ragedu.marginalize.truncation_curve).
"""
from __future__ import annotations

import torch

from ragedu.marginalize import Truncation, truncation_curve
from ragedu.model import RagModel


@torch.no_grad()
def all_passages_log_p_yi(model: RagModel, question: str, answer: str, batch_size: int = 256):
    """log p_θ(y_i|x,z,y<i) for one question under every passage z of the corpus    -> (1, N, T)
    N generator passes, `batch_size` passages at a time (2.4k passages: a few seconds on a CPU)."""
    corpus = model.retriever.corpus
    y, y_mask = model.generator.targets([answer])                                  # (1, T)
    chunks = []
    for start in range(0, len(corpus), batch_size):
        passages = corpus.passages[start:start + batch_size]
        ids, mask = model.generator.context_inputs([[p.title for p in passages]], [[p.text for p in passages]],
                                                   [question])                       # (1, C, L)
        chunks.append(model.generator.log_p_yi(ids, mask, y, y_mask))                # (1, C, T)
    return torch.cat(chunks, dim=1)


@torch.no_grad()
def truncation(model: RagModel, question: str, answer: str, ks=range(1, 51)) -> Truncation:
    """The exact marginal over the whole corpus beside the top-K approximation, K in `ks` (a Truncation)."""
    full_log_p_z = model.retriever.full_log_p_z([question])                         # (1, N)
    return truncation_curve(full_log_p_z, all_passages_log_p_yi(model, question, answer), ks)

