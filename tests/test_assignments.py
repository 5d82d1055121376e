"""ragedu.assignments: RAG-Token's p(y|x) as a sum over all K^T assignments of a passage to each token."""
import itertools
import math

import pytest
import torch

from ragedu.assignments import rag_token_assignments
from ragedu.errors import RagEduError
from ragedu.marginalize import rag_sequence_log_likelihood, rag_token_log_likelihood


def toy(K=3, T=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    log_p_z = torch.randn(K, generator=g, dtype=torch.float64).log_softmax(-1)
    log_p_yi = -torch.rand(K, T, generator=g, dtype=torch.float64) * 4                  # log-probabilities ≤ 0
    return log_p_z, log_p_yi


def test_the_sum_over_all_assignments_is_rag_token():
    log_p_z, log_p_yi = toy()
    s = rag_token_assignments(log_p_z, log_p_yi)
    assert s.a.shape == (3 ** 6, 6) and len(set(map(tuple, s.a.tolist()))) == 729
    assert torch.allclose(s.log_p_y, rag_token_log_likelihood(log_p_z[None], log_p_yi[None])[0])


def test_each_term_is_a_product_of_priors_and_token_probabilities_by_loops():
    log_p_z, log_p_yi = toy(K=2, T=3)
    s = rag_token_assignments(log_p_z, log_p_yi)
    p_z, p_yi = log_p_z.exp().tolist(), log_p_yi.exp().tolist()
    for row, assignment in enumerate(itertools.product(range(2), repeat=3)):
        assert s.a[row].tolist() == list(assignment)
        term = math.prod(p_z[z] * p_yi[z][i] for i, z in enumerate(assignment))
        assert s.log_terms[row].exp().item() == pytest.approx(term, rel=1e-12)


def test_one_passage_throughout_pays_its_prior_at_every_token_unlike_rag_sequence():
    log_p_z, log_p_yi = toy(K=3, T=4)
    s = rag_token_assignments(log_p_z, log_p_yi)
    constant = torch.stack([s.log_terms[(s.a == z).all(-1)][0] for z in range(3)])             # (K,)
    assert torch.allclose(constant, 4 * log_p_z + log_p_yi.sum(-1))
    sequence = rag_sequence_log_likelihood(log_p_z[None], log_p_yi[None])[0]
    assert not torch.allclose(torch.logsumexp(constant, 0), sequence)


def test_the_top_terms_are_sorted_probabilities():
    s = rag_token_assignments(*toy())
    p, a = s.top(5)
    assert p.shape == (5,) and a.shape == (5, 6) and (p[:-1] >= p[1:]).all() and p.sum() <= s.log_p_y.exp()


def test_too_many_assignments_are_refused_in_a_sentence():
    with pytest.raises(RagEduError, match="assignments"):
        rag_token_assignments(*toy(K=10, T=6))
