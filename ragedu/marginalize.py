"""Marginalizing over the latent passage z: the two RAG models and their posteriors.   (notebook 3)

Dims: B questions · K retrieved passages · T target tokens · V vocabulary

Inputs, always in log space:
    log_p_z   (B, K)     log p(z|x), the retriever's posterior renormalised over the top-K
    log_p_yi  (B, K, T)  log p(y_i|x,z,y<i), the generator's per-token log-probability under each passage;
                         padded target positions carry log-prob 0 so they add nothing to a sum over i.

The two models differ only in the order of Σ_z and Π_i:
    RAG-Sequence   p(y|x) = Σ_z p(z|x) Π_i p(y_i|x,z,y<i)     one passage explains the whole answer
    RAG-Token      p(y|x) = Π_i Σ_z p(z|x) p(y_i|x,z,y<i)     each token may lean on another passage
With one target token (T = 1) or one passage (K = 1) the two are the same number.
"""
from __future__ import annotations

import torch

VARIANTS = ("sequence", "token")


def check_variant(variant: str) -> str:
    if variant not in VARIANTS:
        raise ValueError(f"unknown RAG variant {variant!r}; choose one of {VARIANTS}")
    return variant


def _check_shapes(log_p_z: torch.Tensor, log_p_yi: torch.Tensor) -> None:
    assert log_p_z.dim() == 2, f"log_p_z must be (B, K), got {tuple(log_p_z.shape)}"
    assert log_p_yi.dim() == 3 and log_p_yi.shape[:2] == log_p_z.shape, (
        f"log_p_yi must be (B, K, T) with (B, K) = {tuple(log_p_z.shape)}, got {tuple(log_p_yi.shape)}"
    )


def rag_sequence_log_likelihood(log_p_z: torch.Tensor, log_p_yi: torch.Tensor) -> torch.Tensor:
    """log p(y|x) = log Σ_z p(z|x) Π_i p(y_i|x,z,y<i)    (B, K), (B, K, T) -> (B,)"""
    _check_shapes(log_p_z, log_p_yi)
    log_p_y_given_z = log_p_yi.sum(-1)  # (B, K)  log p(y|x,z) = Σ_i log p(y_i|x,z,y<i)
    return torch.logsumexp(log_p_z + log_p_y_given_z, dim=-1)


def rag_token_log_likelihood(log_p_z: torch.Tensor, log_p_yi: torch.Tensor) -> torch.Tensor:
    """log p(y|x) = Σ_i log Σ_z p(z|x) p(y_i|x,z,y<i)    (B, K), (B, K, T) -> (B,)"""
    _check_shapes(log_p_z, log_p_yi)
    return rag_token_marginal(log_p_z, log_p_yi).sum(-1)


def rag_token_marginal(log_p_z: torch.Tensor, log_p_yi: torch.Tensor) -> torch.Tensor:
    """log p'(y_i|x,y<i) = log Σ_z p(z|x) p(y_i|x,z,y<i)    (B, K), (B, K, ...) -> (B, ...)

    The RAG-Token transition: with log_p_yi of shape (B, K, V) it is the next-token distribution
    a beam search walks on; with (B, K, T) it is each target token's marginal probability.
    Subtle: a padded position has log_p_yi = 0 under every z, and logsumexp_z(log p(z|x) + 0) = 0,
    so padding still adds nothing.
    """
    extra = (1,) * (log_p_yi.dim() - 2)
    return torch.logsumexp(log_p_z.view(*log_p_z.shape, *extra) + log_p_yi, dim=1)


def token_posterior(log_p_z: torch.Tensor, log_p_yi: torch.Tensor) -> torch.Tensor:
    """RAG-Token's per-token posterior, the paper's Figure 2    (B, K), (B, K, T) -> (B, K, T)

    log p(z|x,y_i,y<i) = log p(z|x) + log p(y_i|x,z,y<i) - log Σ_z' p(z'|x) p(y_i|x,z',y<i)
    Each column i sums to 1 over z: which passage token y_i leans on.
    """
    _check_shapes(log_p_z, log_p_yi)
    joint = log_p_z[:, :, None] + log_p_yi  # (B, K, T)
    return joint - torch.logsumexp(joint, dim=1, keepdim=True)


def sequence_posterior(log_p_z: torch.Tensor, log_p_yi: torch.Tensor) -> torch.Tensor:
    """RAG-Sequence's posterior after each prefix y≤i    (B, K), (B, K, T) -> (B, K, T)

    log p(z|x,y≤i) = log p(z|x) + Σ_{j≤i} log p(y_j|x,z,y<j) - (the same, logsumexp'd over z)
    The last column is p(z|x,y): which single passage explains the whole answer.
    """
    _check_shapes(log_p_z, log_p_yi)
    joint = log_p_z[:, :, None] + log_p_yi.cumsum(-1)  # (B, K, T)
    return joint - torch.logsumexp(joint, dim=1, keepdim=True)


def rag_log_likelihood(variant: str, log_p_z: torch.Tensor, log_p_yi: torch.Tensor) -> torch.Tensor:
    """Either model by name: 'sequence' or 'token'    (B, K), (B, K, T) -> (B,)"""
    if check_variant(variant) == "sequence":
        return rag_sequence_log_likelihood(log_p_z, log_p_yi)
    return rag_token_log_likelihood(log_p_z, log_p_yi)
