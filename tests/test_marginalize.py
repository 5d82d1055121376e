"""Both RAG likelihoods and their posteriors against brute force, and their invariants."""
import itertools
import math

import pytest
import torch

from ragedu.marginalize import (rag_log_likelihood, rag_sequence_log_likelihood, rag_token_log_likelihood,
                                rag_token_marginal, sequence_posterior, token_posterior)


def random_inputs(B, K, T, seed=0):
    g = torch.Generator().manual_seed(seed)
    log_p_z = torch.randn(B, K, generator=g, dtype=torch.float64).log_softmax(-1)
    # per-token log-probs of a random generator over a vocabulary of 7, gathered at a random target
    log_p_yi = torch.randn(B, K, T, 7, generator=g, dtype=torch.float64).log_softmax(-1)[..., 0]
    return log_p_z, log_p_yi


def brute_sequence(p_z, p_yi):
    """Σ_z p(z|x) Π_i p(y_i|x,z,y<i), by loops in probability space"""
    K, T = p_yi.shape
    total = 0.0
    for z in range(K):
        prod = 1.0
        for i in range(T):
            prod *= p_yi[z, i]
        total += p_z[z] * prod
    return math.log(total)


def brute_token(p_z, p_yi):
    """Π_i Σ_z p(z|x) p(y_i|x,z,y<i), by loops in probability space"""
    K, T = p_yi.shape
    prod = 1.0
    for i in range(T):
        prod *= sum(p_z[z] * p_yi[z, i] for z in range(K))
    return math.log(prod)


def brute_token_by_paths(p_z, p_yi):
    """RAG-Token as a sum over every assignment of a passage to each token: Σ_{z_1..z_T} Π_i p(z_i|x) p(y_i|z_i)"""
    K, T = p_yi.shape
    total = 0.0
    for path in itertools.product(range(K), repeat=T):
        term = 1.0
        for i, z in enumerate(path):
            term *= p_z[z] * p_yi[z, i]
        total += term
    return math.log(total)


@pytest.mark.parametrize("B,K,T", [(1, 1, 1), (2, 3, 4), (3, 5, 2)])
def test_likelihoods_equal_brute_force(B, K, T):
    log_p_z, log_p_yi = random_inputs(B, K, T)
    seq = rag_sequence_log_likelihood(log_p_z, log_p_yi)
    tok = rag_token_log_likelihood(log_p_z, log_p_yi)
    for b in range(B):
        p_z, p_yi = log_p_z[b].exp().tolist(), log_p_yi[b].exp()
        assert seq[b].item() == pytest.approx(brute_sequence(p_z, p_yi), rel=1e-12)
        assert tok[b].item() == pytest.approx(brute_token(p_z, p_yi), rel=1e-12)
        assert tok[b].item() == pytest.approx(brute_token_by_paths(p_z, p_yi), rel=1e-12)


def test_the_two_models_differ_in_general():
    log_p_z, log_p_yi = random_inputs(4, 3, 5)
    gap = rag_token_log_likelihood(log_p_z, log_p_yi) - rag_sequence_log_likelihood(log_p_z, log_p_yi)
    assert (gap.abs() > 1e-3).all()


def test_one_token_or_one_passage_makes_the_models_equal():
    for K, T in [(6, 1), (1, 6)]:
        log_p_z, log_p_yi = random_inputs(4, K, T)
        torch.testing.assert_close(rag_sequence_log_likelihood(log_p_z, log_p_yi),
                                   rag_token_log_likelihood(log_p_z, log_p_yi))


def test_padding_changes_nothing():
    log_p_z, log_p_yi = random_inputs(3, 4, 5)
    padded = torch.cat([log_p_yi, torch.zeros(3, 4, 7, dtype=log_p_yi.dtype)], dim=-1)  # pads carry log-prob 0
    for f in (rag_sequence_log_likelihood, rag_token_log_likelihood):
        torch.testing.assert_close(f(log_p_z, padded), f(log_p_z, log_p_yi))


def test_posteriors_sum_to_one_and_match_bayes():
    log_p_z, log_p_yi = random_inputs(2, 4, 3)
    post_tok = token_posterior(log_p_z, log_p_yi).exp()   # (B, K, T)
    post_seq = sequence_posterior(log_p_z, log_p_yi).exp()
    torch.testing.assert_close(post_tok.sum(1), torch.ones(2, 3, dtype=torch.float64))
    torch.testing.assert_close(post_seq.sum(1), torch.ones(2, 3, dtype=torch.float64))
    for b, z, i in itertools.product(range(2), range(4), range(3)):
        p_z, p_yi = log_p_z[b].exp(), log_p_yi[b].exp()
        assert post_tok[b, z, i].item() == pytest.approx((p_z[z] * p_yi[z, i] / (p_z * p_yi[:, i]).sum()).item())
        prefix = p_yi[:, :i + 1].prod(-1)  # (K,)
        assert post_seq[b, z, i].item() == pytest.approx((p_z[z] * prefix[z] / (p_z * prefix).sum()).item())


def test_marginal_transition_is_a_distribution():
    g = torch.Generator().manual_seed(1)
    log_p_z = torch.randn(2, 5, generator=g).log_softmax(-1)
    log_p_next = torch.randn(2, 5, 11, generator=g).log_softmax(-1)  # (B, K, V)
    torch.testing.assert_close(rag_token_marginal(log_p_z, log_p_next).exp().sum(-1), torch.ones(2))


def test_losses_are_finite_for_many_passages_and_long_targets():
    log_p_z, log_p_yi = random_inputs(2, 50, 64)
    log_p_yi = log_p_yi - 30.0  # tiny probabilities: products underflow in probability space, not in logs
    for variant in ("sequence", "token"):
        assert torch.isfinite(rag_log_likelihood(variant, log_p_z.float(), log_p_yi.float())).all()


def test_unknown_variant_and_bad_shapes_are_refused():
    log_p_z, log_p_yi = random_inputs(2, 3, 4)
    with pytest.raises(ValueError, match="sequence"):
        rag_log_likelihood("seq2seq", log_p_z, log_p_yi)
    with pytest.raises(AssertionError, match=r"\(B, K, T\)"):
        rag_token_log_likelihood(log_p_z, log_p_yi[:, :2])


def test_hugging_faces_prior_at_one_target_position_is_the_same_rag_sequence_sum():
    from ragedu.marginalize import prior_at_position_log_likelihood

    g = torch.Generator().manual_seed(3)
    log_p_z = torch.randn(2, 4, generator=g, dtype=torch.float64).log_softmax(-1)
    log_p_yi = -torch.rand(2, 4, 5, generator=g, dtype=torch.float64) * 3
    for position in (0, 1, 4):
        assert torch.allclose(prior_at_position_log_likelihood(log_p_z, log_p_yi, position),
                              rag_sequence_log_likelihood(log_p_z, log_p_yi))
    assert not torch.allclose(torch.logsumexp(log_p_yi.sum(-1), -1), rag_sequence_log_likelihood(log_p_z, log_p_yi))
