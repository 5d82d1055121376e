"""The exact marginal over the whole corpus against the top-K truncation: brute force, invariants, the toy model."""
import math

import torch

from ragedu.marginalize import exact_log_likelihood, top_k_log_likelihood, truncation_curve
from ragedu.truncation import all_passages_log_p_yi, truncation


def brute_force(log_p_z, log_p_yi, keep):
    """Both variants by loops over passages and tokens, p(z|x) renormalised over the rows in `keep`."""
    p_z = [math.exp(log_p_z[z]) for z in keep]
    p_z = [p / sum(p_z) for p in p_z]
    T = len(log_p_yi[0])
    sequence = sum(p * math.exp(sum(log_p_yi[z][i] for i in range(T))) for p, z in zip(p_z, keep))
    token = 1.0
    for i in range(T):
        token *= sum(p * math.exp(log_p_yi[z][i]) for p, z in zip(p_z, keep))
    return math.log(sequence), math.log(token)


def test_top_k_and_exact_agree_with_brute_force():
    torch.manual_seed(0)
    B, N, T = 2, 9, 3
    log_p_z = torch.randn(B, N, dtype=torch.float64).log_softmax(-1)
    log_p_yi = torch.rand(B, N, T, dtype=torch.float64).log()
    for b in range(B):
        order = sorted(range(N), key=lambda z: -log_p_z[b, z].item())
        for k in (1, 3, N):
            seq, tok = brute_force(log_p_z[b].tolist(), log_p_yi[b].tolist(), order[:k])
            assert math.isclose(top_k_log_likelihood("sequence", log_p_z, log_p_yi, k)[b].item(), seq, rel_tol=1e-9)
            assert math.isclose(top_k_log_likelihood("token", log_p_z, log_p_yi, k)[b].item(), tok, rel_tol=1e-9)
        seq, tok = brute_force(log_p_z[b].tolist(), log_p_yi[b].tolist(), list(range(N)))
        assert math.isclose(exact_log_likelihood("sequence", log_p_z, log_p_yi)[b].item(), seq, rel_tol=1e-9)
        assert math.isclose(exact_log_likelihood("token", log_p_z, log_p_yi)[b].item(), tok, rel_tol=1e-9)


def test_the_curve_ends_at_the_exact_marginal_and_mass_grows_to_one():
    torch.manual_seed(1)
    B, N, T = 3, 12, 4
    log_p_z = (3 * torch.randn(B, N, dtype=torch.float64)).log_softmax(-1)
    log_p_yi = torch.rand(B, N, T, dtype=torch.float64).log()
    curve = truncation_curve(log_p_z, log_p_yi, ks=range(1, 51))
    assert curve.ks == list(range(1, N + 1))                      # K beyond N is dropped
    assert (curve.mass.diff(dim=-1) >= 0).all() and torch.allclose(curve.mass[:, -1], torch.ones(B, dtype=torch.float64))
    torch.testing.assert_close(curve.mass[:, 0], log_p_z.max(-1).values.exp())
    for v in ("sequence", "token"):
        torch.testing.assert_close(curve.log_p_y[v][:, -1], curve.exact[v])
    torch.testing.assert_close(curve.log_p_y["sequence"][:, 0], curve.log_p_y["token"][:, 0])  # K = 1: equal


def test_on_the_toy_model_top_k_is_what_the_model_scores(toy_rag, toy_corpus, one_thread):
    question, answer = "Which country is Town 3 in?", "Land 3"
    with torch.no_grad():
        scored = toy_rag.score([question], [answer], k=5)
        log_p_yi = all_passages_log_p_yi(toy_rag, question, answer, batch_size=16)   # (1, N, T), in chunks
    assert log_p_yi.shape[:2] == (1, len(toy_corpus))
    torch.testing.assert_close(log_p_yi[0, scored.retrieved.rows[0]], scored.log_p_yi[0], atol=1e-5, rtol=1e-5)
    curve = truncation(toy_rag, question, answer, ks=[1, 5, 60])
    torch.testing.assert_close(curve.log_p_y["sequence"][:, 1], scored.log_p_y_sequence, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(curve.log_p_y["token"][:, 1], scored.log_p_y_token, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(curve.log_p_y["token"][:, 2], curve.exact["token"])
