"""Does the memory hold anything the question asks about? A signal from the raw scores d(z)ᵀq(x).   (notebook 1)

Dims: B questions · K retrieved passages · N corpus passages · Q calibration questions

p(z|x) is a softmax over the top K only, so it sums to 1 whatever the question: for "Who wrote Hamlet?" the
best of 2,439 geography passages still gets a large share. The raw inner products are not renormalised: how far
does the best one stand above the scores of the whole corpus?

    s(x) = (max_z d(z)ᵀq(x) − mean_N d(z)ᵀq(x)) / std_N d(z)ᵀq(x)    in standard deviations of the corpus's scores
    speaks  ⇔  s(x) < τ             τ: a low quantile of s over dev questions the memory does answer

(The best score alone, unstandardised, told questions about the corpus from others less well on our model: the
scores of a question's whole row rise and fall together with its length and its words. Measured on dev questions
and data/tasks/out_of_corpus.txt, the standardised score overlapped about half as much.)

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

    score: float            # s(x): the best d(z)ᵀq(x), in standard deviations above the corpus's mean
    threshold: float        # τ, calibrated on dev questions
    speaks: bool            # s(x) < τ: the passages are unlike what the question asks

    @property
    def sentence(self) -> str:
        if self.speaks:
            return (f"The memory seems to hold nothing on this question: its best passage stands only "
                    f"{self.score:.1f} standard deviations above the corpus's scores d(z)ᵀq(x), less than the "
                    f"threshold {self.threshold:.1f} calibrated on dev questions the memory answers; the answer "
                    "below is RAG's guess all the same.")
        return (f"The memory holds passages like this question: its best passage stands {self.score:.1f} standard "
                f"deviations above the corpus's scores d(z)ᵀq(x) (threshold {self.threshold:.1f}).")

    def to_json(self) -> dict:
        return {"score": round(self.score, 3), "threshold": round(self.threshold, 3), "speaks": self.speaks,
                "sentence": self.sentence}


def standout(best: torch.Tensor, corpus_scores: torch.Tensor) -> torch.Tensor:
    """s(x): the best score in standard deviations above the corpus's scores    (B,), (B, N) -> (B,)"""
    return (best - corpus_scores.mean(-1)) / corpus_scores.std(-1).clamp_min(1e-6)


def memory_signals(s_x: torch.Tensor | None, threshold: float | None) -> list[MemorySignal] | None:
    """One signal per question from s(x) (`standout`)    (B,) -> B signals; None when the model has no
    calibrated threshold (e.g. a Hugging Face checkpoint)."""
    if threshold is None or s_x is None:
        return None
    return [MemorySignal(s, threshold, s < threshold) for s in s_x.detach().tolist()]


def calibrate(s_x: torch.Tensor, quantile: float = DEFAULT_QUANTILE) -> float:
    """τ: the `quantile` of s(x) over questions the memory answers    (Q,) -> a float"""
    if not 0 < quantile < 1:
        raise ValueError(f"the quantile must lie strictly between 0 and 1, got {quantile}")
    if s_x.numel() < 10:
        raise ValueError(f"calibrating needs at least 10 questions, got {s_x.numel()}")
    return float(torch.quantile(s_x.float(), quantile))
