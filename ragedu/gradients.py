"""How latent-passage training moves the retriever: the gradient of −log p(y|x) with respect to each score.   (notebook 5)

Dims: B questions · K retrieved passages · T target tokens

The retriever enters the loss only through the scores s(z) = d(z)ᵀq(x) of the top-K passages,
p(z|x) = softmax_K(s) (renormalised over the top K). Differentiating the two models' −log p(y|x):

    RAG-Sequence   ∂(−log p(y|x)) / ∂s(z) = p(z|x) − p(z|x,y)
                   p(z|x,y) ∝ p(z|x) p_θ(y|x,z), the posterior after reading the whole answer
    RAG-Token      ∂(−log p(y|x)) / ∂s(z) = Σ_i [ p(z|x) − p(z|x,y_i,y<i) ]
                   one term per target token, each with the per-token posterior of the paper's Figure 2

A gradient step on s moves s(z) by −lr · ∂/∂s(z): up for the passages the answer made likelier than the
retriever thought (posterior > prior), down for the others. The query vector then follows the chain rule,
∂/∂q(x) = Σ_z ∂/∂s(z) · d(z): q(x) moves towards the d(z) of the passages that explained y.
Nobody says which passage is right; the generator's p_θ(y|x,z) says it, through the posterior.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ragedu.marginalize import rag_log_likelihood, sequence_posterior, token_posterior
from ragedu.model import RagModel
from ragedu.retriever import top_k_posterior
from ragedu.variants import check_variant


def autograd_score_gradient(scores: torch.Tensor, log_p_yi: torch.Tensor, variant: str) -> torch.Tensor:
    """∂(−Σ_b log p(y_b|x_b)) / ∂s by autograd, s = d(z)ᵀq(x) before the top-K softmax
    (B, K) scores, (B, K, T) log p_θ(y_i|x,z,y<i) -> (B, K)"""
    s = scores.detach().clone().requires_grad_(True)                    # (B, K)
    with torch.enable_grad():
        loss = -rag_log_likelihood(variant, top_k_posterior(s), log_p_yi.detach()).sum()
        (grad,) = torch.autograd.grad(loss, s)
    return grad


def score_gradient_formula(scores: torch.Tensor, log_p_yi: torch.Tensor, variant: str) -> torch.Tensor:
    """The same gradient in closed form    (B, K), (B, K, T) -> (B, K)
    sequence: p(z|x) − p(z|x,y);  token: Σ_i [p(z|x) − p(z|x,y_i,y<i)] (a padded i adds 0: its posterior is the prior)"""
    log_p_z = top_k_posterior(scores)                                    # (B, K)
    p_z = log_p_z.exp()
    if check_variant(variant) == "sequence":
        return p_z - sequence_posterior(log_p_z, log_p_yi)[..., -1].exp()    # p(z|x,y): the last column
    return (p_z[:, :, None] - token_posterior(log_p_z, log_p_yi).exp()).sum(-1)


@dataclass
class ScoreGradient:
    """One (question, answer) pair: what a training step on −log p(y|x) does to each retrieved passage's score."""

    question: str
    answer: str
    variant: str
    titles: list[str]               # K retrieved passages, best first
    scores: torch.Tensor            # (K,) s(z) = d(z)ᵀq(x)
    p_z: torch.Tensor               # (K,) p(z|x), the prior
    p_z_given_y: torch.Tensor       # (K,) p(z|x,y), the posterior after the whole answer (RAG-Sequence's)
    grad: torch.Tensor              # (K,) ∂(−log p(y|x)) / ∂s(z), by autograd
    formula: torch.Tensor           # (K,) the same from the closed form

    @property
    def push(self) -> torch.Tensor:
        """(K,) −grad: the direction a gradient step moves each score (up > 0, down < 0)"""
        return -self.grad


@torch.no_grad()
def score_gradient(model: RagModel, question: str, answer: str, k: int, variant: str = "sequence") -> ScoreGradient:
    """Retrieve K passages for `question`, score `answer` under each, and differentiate −log p(y|x) by s(z)."""
    scores = model.score([question], [answer], k)
    s, log_p_yi = scores.retrieved.scores, scores.log_p_yi               # (1, K), (1, K, T)
    log_p_z = top_k_posterior(s)
    return ScoreGradient(
        question=question, answer=answer, variant=check_variant(variant), titles=scores.retrieved.titles[0],
        scores=s[0], p_z=log_p_z[0].exp(), p_z_given_y=sequence_posterior(log_p_z, log_p_yi)[0, :, -1].exp(),
        grad=autograd_score_gradient(s, log_p_yi, variant)[0], formula=score_gradient_formula(s, log_p_yi, variant)[0],
    )
