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

from dataclasses import dataclass

import torch

from ragedu.retriever import top_k_posterior
from ragedu.variants import VARIANTS, check_variant

__all__ = ["VARIANTS", "check_variant"]  # and every function below


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


def rag_sequence_ranking(log_p_z: torch.Tensor, log_p_y_given_z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """RAG-Sequence's ranking of hypotheses y, thorough or fast, by
        log p(y|x) = log Σ_z p(z|x) p_θ(y|x,z)
    (B, K) log p(z|x), (B, H, K) log p_θ(y|x,z) -> (B, H) log p(y|x), (B, H) hypotheses best first (ties: the first)
    Thorough decoding passes every entry computed; fast decoding passes -inf (p_θ(y|x,z) := 0) wherever z's beam
    did not find y, and a y no beam found (all -inf) scores log 0."""
    log_p_y = torch.logsumexp(log_p_z[:, None, :] + log_p_y_given_z, dim=-1)           # (B, H)
    return log_p_y, torch.sort(log_p_y, dim=-1, descending=True, stable=True).indices


def tokens_leaning_elsewhere(log_p_z: torch.Tensor, log_p_yi: torch.Tensor, y_mask: torch.Tensor) -> torch.Tensor:
    """How many real target tokens lean most on a passage other than the retriever's first choice
    (B, K), (B, K, T), (B, T) -> (B,)
    Counts i with argmax_z p(z|x,y_i,y<i) ≠ argmax_z p(z|x): tokens where RAG-Token reads another passage."""
    leans_on = token_posterior(log_p_z, log_p_yi).argmax(dim=1)            # (B, T)
    first_choice = log_p_z.argmax(dim=-1, keepdim=True)                    # (B, 1)
    return ((leans_on != first_choice) & (y_mask > 0)).sum(-1)


def rag_log_likelihood(variant: str, log_p_z: torch.Tensor, log_p_yi: torch.Tensor) -> torch.Tensor:
    """Either model by name: 'sequence' or 'token'    (B, K), (B, K, T) -> (B,)"""
    if check_variant(variant) == "sequence":
        return rag_sequence_log_likelihood(log_p_z, log_p_yi)
    return rag_token_log_likelihood(log_p_z, log_p_yi)


# ---- the exact marginal over the whole corpus, and what the top-K truncation drops (notebook 6) ----
# Dims here: N every passage of the corpus · K the top-K kept · C the values of K tried

def exact_log_likelihood(variant: str, full_log_p_z: torch.Tensor, log_p_yi: torch.Tensor) -> torch.Tensor:
    """log p(y|x) summed over every passage, p(z|x) = softmax_N(d(z)ᵀq(x))    (B, N), (B, N, T) -> (B,)

    The same two formulas with K = N: nothing is truncated, nothing renormalised."""
    return rag_log_likelihood(variant, full_log_p_z, log_p_yi)


def top_k_log_likelihood(variant: str, full_log_p_z: torch.Tensor, log_p_yi: torch.Tensor, k: int) -> torch.Tensor:
    """The paper's approximation: only the K passages with the largest p(z|x), p(z|x) renormalised over them
    log p_K(z|x) = log p(z|x) - log Σ_{z' ∈ top-K} p(z'|x)    (B, N), (B, N, T) -> (B,)"""
    B, N = full_log_p_z.shape
    top = full_log_p_z.topk(k, dim=-1).indices                                  # (B, K)
    log_p_z = top_k_posterior(full_log_p_z.gather(-1, top))                    # (B, K) renormalised
    log_p_yi_k = log_p_yi.gather(1, top[..., None].expand(-1, -1, log_p_yi.shape[-1]))  # (B, K, T)
    return rag_log_likelihood(variant, log_p_z, log_p_yi_k)


@dataclass
class Truncation:
    """What the top-K keeps of the exact marginal, for each K in `ks`."""

    ks: list[int]                           # C values of K, increasing
    mass: torch.Tensor                      # (B, C) Σ_{z ∈ top-K} p(z|x), the full posterior mass the top-K holds
    log_p_y: dict[str, torch.Tensor]        # variant -> (B, C) log p(y|x) under the top-K approximation
    exact: dict[str, torch.Tensor]          # variant -> (B,) log p(y|x) summed over all N passages


def truncation_curve(full_log_p_z: torch.Tensor, log_p_yi: torch.Tensor, ks=range(1, 51)) -> Truncation:
    """The top-K approximation of both variants beside the exact marginal    (B, N), (B, N, T) -> Truncation"""
    B, N = full_log_p_z.shape
    assert log_p_yi.shape[:2] == (B, N), f"log_p_yi must be (B, N, T) with (B, N) = {(B, N)}, got {tuple(log_p_yi.shape)}"
    ks = [k for k in ks if 1 <= k <= N]
    order = full_log_p_z.argsort(dim=-1, descending=True)                       # (B, N) passages by p(z|x)
    cumulative_mass = full_log_p_z.gather(-1, order).exp().cumsum(-1)           # (B, N) mass of the top-1..N
    mass = cumulative_mass[:, [k - 1 for k in ks]]                              # (B, C)
    log_p_y = {v: torch.stack([top_k_log_likelihood(v, full_log_p_z, log_p_yi, k) for k in ks], dim=-1)
               for v in VARIANTS}
    exact = {v: exact_log_likelihood(v, full_log_p_z, log_p_yi) for v in VARIANTS}
    return Truncation(ks, mass, log_p_y, exact)


# ---- Hugging Face's form of RAG-Sequence (notebook 8) ----

def prior_at_position_log_likelihood(log_p_z: torch.Tensor, log_p_yi: torch.Tensor, position: int = 0) -> torch.Tensor:
    """RAG-Sequence as `RagSequenceForGeneration.get_nll` computes it: log p(z|x) added to one target position's
    log-probability (its position 1, after BOS; here `position` of y), then Σ_i, then logsumexp_z
        log Σ_z exp(Σ_i [log p(y_i|x,z,y<i) + 1{i = position} log p(z|x)])    (B, K), (B, K, T) -> (B,)
    The same number as `rag_sequence_log_likelihood`: Σ_i (a_i + c·1{i = j}) = c + Σ_i a_i."""
    _check_shapes(log_p_z, log_p_yi)
    with_prior = log_p_yi.clone()
    with_prior[:, :, position] += log_p_z                                   # (B, K, T)
    return torch.logsumexp(with_prior.sum(-1), dim=-1)
