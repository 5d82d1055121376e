"""The RAG model: both likelihoods from one forward, the loss, and which weights it can move."""
import pytest
import torch

from ragedu.marginalize import rag_sequence_log_likelihood, rag_token_log_likelihood

Q = ["Which country is Town 3 in?", "What is the population of Town 41?"]
A = ["Land 3", "2,517"]


def test_score_ties_retriever_generator_and_marginalization(toy_rag):
    with torch.no_grad():
        s = toy_rag.score(Q, A, k=5)
    B, K, T = s.log_p_yi.shape
    assert (B, K) == (2, 5) and s.y.shape == (2, T)
    torch.testing.assert_close(s.log_p_y_sequence, rag_sequence_log_likelihood(s.log_p_z, s.log_p_yi))
    torch.testing.assert_close(s.log_p_y_token, rag_token_log_likelihood(s.log_p_z, s.log_p_yi))
    assert (s.log_p_y_sequence < 0).all() and (s.log_p_y_token < 0).all()


def test_loss_is_the_mean_negative_log_likelihood(toy_rag):
    with torch.no_grad():
        s = toy_rag.score(Q, A, k=5)
        for variant, log_p_y in [("sequence", s.log_p_y_sequence), ("token", s.log_p_y_token)]:
            torch.testing.assert_close(toy_rag.loss(Q, A, variant, k=5), -log_p_y.mean())
        # 'both', as `ragedu train` uses it: the mean of the two models' losses
        torch.testing.assert_close(toy_rag.loss(Q, A, "both", k=5),
                                   -(s.log_p_y_sequence.mean() + s.log_p_y_token.mean()) / 2)
    with pytest.raises(ValueError, match="unknown RAG variant 'all'"):
        toy_rag.loss(Q, A, "all", k=5)
    with pytest.raises(ValueError, match="2 questions but 1 answers"):
        toy_rag.score(Q, A[:1], k=5)


def test_a_step_moves_query_encoder_and_generator_never_the_index(toy_rag):
    params = [p for p in toy_rag.parameters() if p.requires_grad]
    before = {n: p.detach().clone() for n, p in toy_rag.named_parameters()}
    d_z, index_vectors = toy_rag.retriever.d_z.clone(), toy_rag.retriever.index.reconstruct_n(0, 60).copy()
    optimizer = torch.optim.SGD(params, lr=1e-2)
    for variant in ("sequence", "token"):
        toy_rag.zero_grad()
        toy_rag.loss(Q, A, variant, k=5).backward()
        optimizer.step()
    moved = {n for n, p in toy_rag.named_parameters() if not torch.equal(p, before[n])}
    try:
        assert any(n.startswith("retriever.query_encoder.") for n in moved)
        assert any(n.startswith("generator.model.") for n in moved)
        assert not any(n.startswith("retriever.doc_encoder.") for n in moved)
        assert torch.equal(toy_rag.retriever.d_z, d_z)
        assert (toy_rag.retriever.index.reconstruct_n(0, 60) == index_vectors).all()
    finally:  # the fixture is shared: put the weights back
        with torch.no_grad():
            for n, p in toy_rag.named_parameters():
                p.copy_(before[n])


def test_losses_are_finite_for_fifty_passages_and_64_target_tokens(toy_rag):
    answer = "1" * 62  # a space, 62 digits and </s>: 64 tokens
    with torch.no_grad():
        s = toy_rag.score(Q[:1], [answer], k=50)
    assert s.log_p_yi.shape == (1, 50, 64)
    assert torch.isfinite(s.log_p_y_sequence).all() and torch.isfinite(s.log_p_y_token).all()
