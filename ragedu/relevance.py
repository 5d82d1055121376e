"""Does the memory hold anything the question asks about? A signal from the raw scores d(z)ᵀq(x).   (notebook 1)

Dims: B questions · K retrieved passages · Q calibration questions

p(z|x) is a softmax over the top K only, so it sums to 1 whatever the question: for "Who wrote Hamlet?" the
best of 2,439 geography passages still gets a large share. The raw inner product is not renormalised:

    s(x) = max_z d(z)ᵀq(x)          the best passage's score, before any softmax
    speaks  ⇔  s(x) < τ             τ: a low quantile of s over dev questions the memory does answer

τ is calibrated once on dev questions (the task files' phrasings and the held-out dev phrasings), so a question
about the corpus scores above it about (1 − quantile) of the time. RAG still answers: the signal is
information for the reader ("the passages are unlike the question"), not a refusal.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

DEFAULT_QUANTILE = 0.02  # share of dev questions the signal may speak on


@dataclass(frozen=True)
class MemorySignal:
    """What the raw scores say about one question's retrieved passages."""

    score: float            # s(x) = max_z d(z)ᵀq(x)
    threshold: float        # τ, calibrated on dev questions
    speaks: bool            # s(x) < τ: the passages are unlike what the question asks

    @property
    def sentence(self) -> str:
        if self.speaks:
            return (f"The memory seems to hold nothing on this question: the best passage scores "
                    f"d(z)ᵀq(x) = {self.score:.1f}, below {self.threshold:.1f}, which {1 - DEFAULT_QUANTILE:.0%} "
                    "of the dev questions the memory answers reach; the answer is RAG's guess all the same.")
        return (f"The memory holds passages like this question: the best scores d(z)ᵀq(x) = {self.score:.1f}, "
                f"above the threshold {self.threshold:.1f}.")

    def to_json(self) -> dict:
        return {"score": round(self.score, 3), "threshold": round(self.threshold, 3), "speaks": self.speaks,
                "sentence": self.sentence}


def memory_signals(scores: torch.Tensor, threshold: float | None) -> list[MemorySignal] | None:
    """One signal per question from the raw retrieval scores d(z)ᵀq(x)    (B, K) -> B signals;
    None when the model has no calibrated threshold (e.g. a Hugging Face checkpoint)."""
    if threshold is None:
        return None
    best = scores.detach().max(dim=-1).values.tolist()   # (B,) s(x)
    return [MemorySignal(s, threshold, s < threshold) for s in best]


def calibrate(best_scores: torch.Tensor, quantile: float = DEFAULT_QUANTILE) -> float:
    """τ: the `quantile` of s(x) over questions the memory answers    (Q,) -> a float"""
    if not 0 < quantile < 1:
        raise ValueError(f"the quantile must lie strictly between 0 and 1, got {quantile}")
    if best_scores.numel() < 10:
        raise ValueError(f"calibrating needs at least 10 questions, got {best_scores.numel()}")
    return float(torch.quantile(best_scores.float(), quantile))
