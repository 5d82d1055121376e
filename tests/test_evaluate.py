"""Evaluation: answer normalisation, claim labels from one token, and the figures of `ragedu eval`."""
import pytest
import torch

from ragedu.evaluate import classify_claims, exact_match, normalize_answer


@pytest.mark.parametrize("prediction,answer,same", [
    ("Nairobi", "Nairobi", True), (" nairobi. ", "Nairobi", True), ("the euro", "euro", True),
    ("2,750,547", "2750547", True), ("Nairobi City", "Nairobi", False), ("Niger", "Nigeria", False),
])
def test_exact_match_normalises_like_squad(prediction, answer, same):
    assert exact_match(prediction, answer) is same
    assert normalize_answer("  The  Gambia!") == "gambia"


def test_claim_labels_are_the_same_under_both_variants(toy_rag):
    claims = [f"Town {i} lies in Land {i % 5}." for i in range(12)]
    labels = classify_claims(toy_rag, claims, k=5)
    assert set(labels) == {"sequence", "token"}
    assert labels["sequence"] == labels["token"]  # one target token: Σ_z and Π_i commute
    assert set(labels["token"]) <= {"supports", "refutes"} and len(labels["token"]) == 12


def test_one_token_scores_are_equal_but_two_token_scores_are_not(toy_rag):
    from ragedu.marginalize import rag_sequence_log_likelihood, rag_token_log_likelihood
    with torch.no_grad():
        s = toy_rag.score(["Town 3 lies in Land 3."], ["supports"], k=5)
    one = s.log_p_yi[:, :, :1]
    torch.testing.assert_close(rag_sequence_log_likelihood(s.log_p_z, one), rag_token_log_likelihood(s.log_p_z, one))
    assert s.y.shape[1] == 2  # the label token and </s>
