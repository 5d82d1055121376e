"""RAG-Token as a sum over assignments of a passage to each token, and what its beam search walks over.   (notebook 3)

Dims: K retrieved passages · T target tokens · A = K^T assignments

RAG-Token's product of sums expands into a sum of products, one term per assignment a = (a_1, …, a_T) of a
passage to each target token (distributivity, Π_i Σ_z = Σ_{a_1} … Σ_{a_T} Π_i):

    p(y|x) = Π_i Σ_z p(z|x) p_θ(y_i|x,z,y<i) = Σ_{a ∈ top-K^T} Π_i p(a_i|x) p_θ(y_i|x,a_i,y<i)

So RAG-Token *is* a latent-variable model over K^T passage sequences, but nobody searches that space: the sum
over assignments is computed in O(K·T) as the product of per-token sums, and decoding runs an ordinary beam
search over the vocabulary with the marginal transition p'(y_i|x,y<i) = Σ_z p(z|x) p_θ(y_i|x,z,y<i)
(`ragedu.marginalize.rag_token_marginal`). Its "vocabulary" is the generator's tokens, not the document index.
Note the prior is paid once per token (p(a_i|x) inside the product): the T assignments that keep one passage
throughout weigh p(z|x)^T p_θ(y|x,z), not RAG-Sequence's p(z|x) p_θ(y|x,z).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch

from ragedu.errors import RagEduError

MAX_ASSIGNMENTS = 100_000


@dataclass
class Assignments:
    """Every assignment of one of K passages to each of T tokens, and its term of RAG-Token's sum."""

    a: torch.Tensor          # (A, T) passage index (0…K−1) for each token, A = K^T
    log_terms: torch.Tensor  # (A,) log Π_i p(a_i|x) p_θ(y_i|x,a_i,y<i)
    log_p_y: torch.Tensor    # () log Σ_a exp(log_terms): RAG-Token's log p(y|x)

    def top(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The n largest terms as probabilities, and their assignments    -> (n,), (n, T)"""
        values, order = self.log_terms.topk(min(n, len(self.log_terms)))
        return values.exp(), self.a[order]


def rag_token_assignments(log_p_z: torch.Tensor, log_p_yi: torch.Tensor) -> Assignments:
    """RAG-Token's p(y|x) for one (question, answer) pair, summed term by term over all K^T assignments
    (K,) log p(z|x), (K, T) log p_θ(y_i|x,z,y<i) of the answer's real tokens -> Assignments"""
    K, T = log_p_yi.shape
    assert log_p_z.shape == (K,), f"log_p_z must be (K,) = ({K},), got {tuple(log_p_z.shape)}"
    if K ** T > MAX_ASSIGNMENTS:
        raise RagEduError(f"K^T = {K}^{T} = {K ** T:,} assignments is more than the {MAX_ASSIGNMENTS:,} this brute "
                          f"force sums; use fewer passages or a shorter answer")
    a = torch.tensor(list(itertools.product(range(K), repeat=T)), dtype=torch.long).view(-1, T)   # (A, T)
    tokens = torch.arange(T)
    log_terms = (log_p_z[a] + log_p_yi[a, tokens]).sum(-1)          # (A,) Σ_i log p(a_i|x) + log p_θ(y_i|x,a_i,…)
    return Assignments(a, log_terms, torch.logsumexp(log_terms, 0))


@dataclass
class Transition:
    """RAG-Token's first decoding step for one question: what its beam search ranks, token by token."""

    log_p_next: torch.Tensor   # (K, V) log p_θ(y_1|x,z) under each passage
    log_p_z: torch.Tensor      # (K,) log p(z|x)
    marginal: torch.Tensor     # (V,) log p'(y_1|x) = log Σ_z p(z|x) p_θ(y_1|x,z): a distribution over tokens


@torch.no_grad()
def first_step_transition(model, question: str, k: int) -> Transition:
    """The marginal transition p'(y_1|x) RAG-Token's beam search extends its beams with, over the vocabulary
    (`model` a ragedu.model.RagModel; passed in, not imported: this module is maths)."""
    from ragedu.marginalize import rag_token_marginal

    generator, retrieved = model.generator, model.retriever.retrieve([question], k)
    ids, mask = generator.context_inputs(retrieved.titles, retrieved.texts, retrieved.questions)   # (1, K, L)
    rows = generator.encode(ids, mask)[0]                                                          # (K, L, D)
    start = torch.full((k, 1), generator.decoder_prefix[0], dtype=torch.long)
    log_p_next, _ = generator.next_token_log_probs(start, rows)                                   # (K, V)
    return Transition(log_p_next, retrieved.log_p_z[0], rag_token_marginal(retrieved.log_p_z, log_p_next[None])[0])
