"""Does the memory hold anything the question asks about? A signal from the raw scores d(z)ᵀq(x).   (notebook 1)

Dims: B questions · K retrieved passages · D embedding size · Q calibration questions

p(z|x) is a softmax over the top K only, so it sums to 1 whatever the question: for "Who wrote Hamlet?" the
best of 2,439 geography passages still gets a large share. The raw inner products are not renormalised, but on
their own they do not say much either: measured on our model, the best score of a question the memory holds
nothing on was as high as a real question's (its words, its length move the whole row of scores).

So the index gets one more, learned, passage: the *empty passage* ∅, a vector d_∅ and a bias b, trained with the
retriever to win for questions about other things (ragedu.offtopic) and to lose for the real ones. The signal is
how far the best real passage scores above it:

    s(x) = max_z d(z)ᵀq(x) − (d_∅ᵀq(x) + b)        speaks  ⇔  s(x) < τ

τ is calibrated once, on dev questions (the task files' phrasings and the held-out dev phrasings): a low quantile
of s over questions the memory answers, so those score above it about (1 − quantile) of the time. ∅ never joins
the top K and never changes p(z|x) or an answer: RAG still answers; the signal is information for the reader
("the passages are unlike the question"), not a refusal.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

DEFAULT_QUANTILE = 0.02  # share of dev questions the signal may speak on


class EmptyPassage(nn.Module):
    """∅: the score d_∅ᵀq(x) + b of 'no passage of the memory'."""

    def __init__(self, dim: int):
        super().__init__()
        self.vector = nn.Parameter(torch.zeros(dim))   # (D,) d_∅
        self.bias = nn.Parameter(torch.zeros(()))      # b

    def forward(self, q_x: torch.Tensor) -> torch.Tensor:
        """d_∅ᵀq(x) + b    (B, D) -> (B,)"""
        return q_x @ self.vector + self.bias


@dataclass(frozen=True)
class MemorySignal:
    """What the raw scores say about one question's retrieved passages."""

    score: float            # s(x): the best d(z)ᵀq(x) minus the empty passage's score
    threshold: float        # τ, calibrated on dev questions
    speaks: bool            # s(x) < τ: the passages are unlike what the question asks

    @property
    def sentence(self) -> str:
        if self.speaks:
            return (f"The memory seems to hold nothing on this question: its best passage scores only "
                    f"{self.score:.1f} above the empty passage ∅ (d(z)ᵀq(x) against d_∅ᵀq(x) + b), below the "
                    f"threshold {self.threshold:.1f} calibrated on dev questions the memory answers; the answer "
                    "below is RAG's guess all the same.")
        return (f"The memory holds passages like this question: its best passage scores {self.score:.1f} above the "
                f"empty passage ∅ (threshold {self.threshold:.1f}).")

    def to_json(self) -> dict:
        return {"score": round(self.score, 3), "threshold": round(self.threshold, 3), "speaks": self.speaks,
                "sentence": self.sentence}


def margin(best: torch.Tensor, empty: torch.Tensor) -> torch.Tensor:
    """s(x): the best real passage's score above the empty passage's    (B,), (B,) -> (B,)"""
    return best - empty


def memory_signals(s_x: torch.Tensor | None, threshold: float | None) -> list[MemorySignal] | None:
    """One signal per question from s(x) (`margin`)    (B,) -> B signals; None when the model has no
    empty passage or no calibrated threshold (e.g. a Hugging Face checkpoint)."""
    if threshold is None or s_x is None:
        return None
    return [MemorySignal(s, threshold, s < threshold) for s in s_x.detach().tolist()]


def empty_passage_loss(scores: torch.Tensor, empty: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """−log softmax over the passages and ∅; a target of −1 means ∅    (B, P), (B,), (B,) -> a scalar"""
    with_empty = torch.cat([scores, empty[:, None]], -1)                     # (B, P + 1), ∅ last
    return nn.functional.cross_entropy(with_empty, torch.where(target < 0, scores.shape[1], target))


def calibrate(s_x: torch.Tensor, quantile: float = DEFAULT_QUANTILE) -> float:
    """τ: the `quantile` of s(x) over questions the memory answers    (Q,) -> a float"""
    if not 0 < quantile < 1:
        raise ValueError(f"the quantile must lie strictly between 0 and 1, got {quantile}")
    if s_x.numel() < 10:
        raise ValueError(f"calibrating needs at least 10 questions, got {s_x.numel()}")
    return float(torch.quantile(s_x.float(), quantile))
