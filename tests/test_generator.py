"""The generator: RAG's input format, per-token log-probs against a direct computation, padding."""
import pytest
import torch

from ragedu.generator import flatten_passages, shift_right

TITLES = [["Town 1", "Town 2"], ["Town 3", "Town 4"]]
TEXTS = [["Town 1 is a city in Land 1.", "Town 2 is a city in Land 2. " * 30], ["Short.", "Also short."]]
QUESTIONS = ["Which country is Town 1 in?", "What is the population of Town 3?"]


def test_input_is_title_text_question_and_keeps_the_question(toy_rag):
    g = toy_rag.generator
    ids, mask = g.context_inputs(TITLES, TEXTS, QUESTIONS)
    assert ids.shape[:2] == (2, 2) and ids.shape[2] <= g.max_input_len
    first = g.tokenizer.decode(ids[0, 0][mask[0, 0] == 1])
    assert first == "<s> Town 1 / Town 1 is a city in Land 1. // Which country is Town 1 in?</s>"
    long = g.tokenizer.decode(ids[0, 1][mask[0, 1] == 1])  # the passage was cut, not the question
    assert long.startswith("<s> Town 2 / Town 2 is a city") and long.endswith(" // Which country is Town 1 in?</s>")
    assert mask[0, 1].sum() == g.max_input_len


def test_log_p_yi_equals_a_direct_forward_per_passage(toy_rag):
    g = toy_rag.generator
    ids, mask = g.context_inputs(TITLES, TEXTS, QUESTIONS)
    y, y_mask = g.targets(["Land 1", "1,111"])
    with torch.no_grad():
        log_p_yi = g.log_p_yi(ids, mask, y, y_mask)  # (B, K, T)
        for b in range(2):
            for k in range(2):
                n = int(mask[b, k].sum())
                tokens = y[b][y_mask[b] == 1]
                decoder_input = torch.cat([torch.tensor([g.start_id]), tokens[:-1]])
                logits = g.model(input_ids=ids[b, k, :n][None], decoder_input_ids=decoder_input[None]).logits[0]
                direct = logits.log_softmax(-1)[torch.arange(len(tokens)), tokens]
                torch.testing.assert_close(log_p_yi[b, k, :len(tokens)], direct, atol=1e-5, rtol=1e-5)
                assert (log_p_yi[b, k, len(tokens):] == 0).all()


def test_targets_end_with_eos_and_pad(toy_rag):
    g = toy_rag.generator
    y, y_mask = g.targets(["Land 1", "a much longer answer than that"])
    assert y[0, y_mask[0].sum() - 1] == g.tokenizer.eos_token_id
    assert (y[0][y_mask[0] == 0] == g.pad_id).all() and y_mask[1].all()
    assert g.tokenizer.decode(y[0][y_mask[0] == 1]) == " Land 1</s>"


def test_bad_inputs_are_refused(toy_rag):
    g = toy_rag.generator
    with pytest.raises(ValueError, match="at most 80 are allowed"):
        g.context_inputs([["T"]], [["x"]], ["why " * 100])
    with pytest.raises(ValueError, match="answer 1 is empty"):
        g.targets(["ok", " "])


def test_helpers_shapes():
    x = torch.arange(24).view(2, 3, 4)
    assert flatten_passages(x).shape == (6, 4) and flatten_passages(x)[4].tolist() == x[1, 1].tolist()
    assert shift_right(torch.tensor([[5, 6, 7]]), 1).tolist() == [[1, 5, 6]]
