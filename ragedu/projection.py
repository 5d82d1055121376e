"""The vectors themselves: q(x) and d(z) projected to 2-D, before and after fine-tuning q(x).   (notebook 5)

Dims: P passages shown · Q questions shown · D embedding · 2 the plane

p(z|x) ∝ exp(d(z)ᵀq(x)) lives in D = 128 dimensions here (768 in the paper). To look at it we project every vector
onto the plane of its two principal components (PCA by an SVD of the centred vectors, no new dependency):

    x ↦ (x − μ) W,   μ the mean of the vectors shown, W (D, 2) the first two right-singular vectors

Only inner products matter to p(z|x), so questions and passages may sit in different regions of the space (they
do: the first component would only separate the two kinds). Each kind is therefore centred on its own mean, and the
plane fitted once on the centred d(z) shown and both q(x)'s, so that before and after share it. A projection keeps
what varies most and drops the rest: a question near a passage in the plane is a hint, not a proof, that its
inner product is large; the printed p(z|x) are the real numbers.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ragedu.retriever import Retriever


def principal_plane(vectors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The mean and the first two principal directions of the rows    (M, D) -> (D,) μ, (D, 2) W"""
    mean = vectors.mean(0)                                               # (D,)
    _, _, v_t = torch.linalg.svd(vectors - mean, full_matrices=False)    # v_t (min(M, D), D)
    return mean, v_t[:2].T                                              # (D, 2)


def project(vectors: torch.Tensor, mean: torch.Tensor, plane: torch.Tensor) -> torch.Tensor:
    """(x − μ) W    (M, D), (D,), (D, 2) -> (M, 2)"""
    return (vectors - mean) @ plane


@dataclass
class VectorPicture:
    """Passages and questions in one plane: where q(x) was before fine-tuning and where it is after."""

    titles: list[str]            # P passages
    d_z: torch.Tensor            # (P, 2) projected d(z)
    questions: list[str]         # Q
    q_before: torch.Tensor       # (Q, 2) projected q(x) of the stage-1 encoder
    q_after: torch.Tensor        # (Q, 2) projected q(x) of the fine-tuned query encoder
    gold: list[int]              # Q: the row of d_z holding each question's gold passage
    explained: float             # share of the shown vectors' variance the plane keeps


@torch.no_grad()
def vector_picture(before: Retriever, after: Retriever, questions: list[str], gold_rows: list[int],
                   neighbours: int = 3) -> VectorPicture:
    """Each question's gold passage and its top passages under both retrievers (same index d(z)), in one plane."""
    q_b, q_a = before.encode_questions(questions), after.encode_questions(questions)   # (Q, D) each
    rows = list(gold_rows)
    for q in (q_b, q_a):
        rows += (q @ after.d_z.T).topk(neighbours, dim=-1).indices.reshape(-1).tolist()
    rows = list(dict.fromkeys(rows))                                    # P unique corpus rows, gold first
    d_z = after.d_z[rows]                                               # (P, D)
    d_mean, q_mean = d_z.mean(0), torch.cat([q_b, q_a]).mean(0)         # (D,) each kind's own centre
    shown = torch.cat([d_z - d_mean, q_b - q_mean, q_a - q_mean])       # (P + 2Q, D)
    zero, plane = principal_plane(shown)
    centred = shown - zero
    explained = float((centred @ plane).pow(2).sum() / centred.pow(2).sum())
    return VectorPicture([after.corpus[r].title for r in rows], project(d_z - d_mean, zero, plane), list(questions),
                         project(q_b - q_mean, zero, plane), project(q_a - q_mean, zero, plane),
                         [rows.index(r) for r in gold_rows], explained)
