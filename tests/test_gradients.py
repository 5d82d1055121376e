"""ragedu.gradients: the gradient of −log p(y|x) with respect to each score s(z) = d(z)ᵀq(x), by autograd, by the
closed form p(z|x) − p(z|x,y), and by brute force (loops in probability space, finite differences) on toy sizes."""
import math

import pytest
import torch

from ragedu.gradients import autograd_score_gradient, score_gradient, score_gradient_formula
from ragedu.marginalize import sequence_posterior


def toy(B=3, K=4, T=5, V=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    scores = 3 * torch.randn(B, K, generator=g, dtype=torch.float64)                     # (B, K) s(z)
    log_p = torch.randn(B, K, T, V, generator=g, dtype=torch.float64).log_softmax(-1)    # (B, K, T, V)
    y = torch.randint(V, (B, T), generator=g)
    log_p_yi = log_p.gather(-1, y[:, None, :, None].expand(B, K, T, 1)).squeeze(-1)     # (B, K, T)
    return scores, log_p_yi


def brute_force_neg_log_p_y(scores, log_p_yi, variant):
    """−log p(y|x) of one example by loops over every passage and token, in probability space."""
    K, T = log_p_yi.shape
    p_z = [math.exp(s) for s in scores.tolist()]
    p_z = [p / sum(p_z) for p in p_z]
    p_yi = log_p_yi.exp().tolist()
    if variant == "sequence":
        return -math.log(sum(p_z[z] * math.prod(p_yi[z][i] for i in range(T)) for z in range(K)))
    return -sum(math.log(sum(p_z[z] * p_yi[z][i] for z in range(K))) for i in range(T))


@pytest.mark.parametrize("variant", ["sequence", "token"])
def test_autograd_equals_the_closed_form(variant):
    scores, log_p_yi = toy()
    assert torch.allclose(autograd_score_gradient(scores, log_p_yi, variant),
                          score_gradient_formula(scores, log_p_yi, variant), atol=1e-10)


@pytest.mark.parametrize("variant", ["sequence", "token"])
def test_the_closed_form_equals_finite_differences_of_a_brute_force_loss(variant):
    scores, log_p_yi = toy(B=1, K=3, T=4)
    formula = score_gradient_formula(scores, log_p_yi, variant)[0]
    eps = 1e-6
    for z in range(3):
        up, down = scores[0].clone(), scores[0].clone()
        up[z] += eps
        down[z] -= eps
        numeric = (brute_force_neg_log_p_y(up, log_p_yi[0], variant)
                   - brute_force_neg_log_p_y(down, log_p_yi[0], variant)) / (2 * eps)
        assert abs(numeric - formula[z].item()) < 1e-6, (z, numeric, formula[z].item())


def test_the_sequence_posterior_is_bayes_rule_by_loops():
    scores, log_p_yi = toy(B=1, K=3, T=4)
    p_z = scores[0].softmax(-1).tolist()
    joint = [p_z[z] * math.prod(log_p_yi[0, z].exp().tolist()) for z in range(3)]
    posterior = sequence_posterior(scores.log_softmax(-1), log_p_yi)[0, :, -1].exp()   # p(z|x,y): its last column
    assert torch.allclose(posterior, torch.tensor([j / sum(joint) for j in joint], dtype=torch.float64))


@pytest.mark.parametrize("variant", ["sequence", "token"])
def test_the_gradient_sums_to_zero_and_ignores_padding(variant):
    scores, log_p_yi = toy()
    grad = score_gradient_formula(scores, log_p_yi, variant)
    assert torch.allclose(grad.sum(-1), torch.zeros(3, dtype=torch.float64), atol=1e-12)  # a shift of s changes nothing
    padded = torch.cat([log_p_yi, torch.zeros(3, 4, 2, dtype=torch.float64)], -1)          # two padded positions
    assert torch.allclose(score_gradient_formula(scores, padded, variant), grad, atol=1e-12)
    assert torch.allclose(autograd_score_gradient(scores, padded, variant), grad, atol=1e-12)


def test_one_token_makes_the_two_gradients_equal():
    scores, log_p_yi = toy(T=1)
    assert torch.allclose(score_gradient_formula(scores, log_p_yi, "sequence"),
                          score_gradient_formula(scores, log_p_yi, "token"), atol=1e-12)


def test_a_passage_that_explains_the_answer_is_pushed_up_and_the_others_down():
    scores = torch.zeros(1, 3, dtype=torch.float64)                                        # uniform prior
    log_p_yi = torch.tensor([[[-0.1, -0.1], [-5.0, -5.0], [-5.0, -5.0]]], dtype=torch.float64)
    push = -score_gradient_formula(scores, log_p_yi, "sequence")[0]
    assert push[0] > 0 and (push[1:] < 0).all()


def test_score_gradient_on_a_model_agrees_with_its_formula(toy_rag, one_thread):
    for variant in ("sequence", "token"):
        g = score_gradient(toy_rag, "Which country is Town 3 in?", "Land 3", k=4, variant=variant)
        assert g.grad.shape == g.formula.shape == g.p_z.shape == (4,) and len(g.titles) == 4
        assert torch.allclose(g.grad, g.formula, atol=1e-5)
        assert torch.allclose(g.push, -g.grad)
    assert torch.allclose(g.p_z.sum(), torch.tensor(1.0)) and torch.allclose(g.p_z_given_y.sum(), torch.tensor(1.0))
