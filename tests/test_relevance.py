"""The memory signal: computed from the raw scores d(z)ᵀq(x), not the renormalised p(z|x); calibrated on dev
questions; saved with the model; shown by `ragedu ask`; and, on the shipped model, quiet on questions the memory
answers and speaking on questions it holds nothing on."""
import dataclasses
import json

import pytest
import torch

import ragedu
from ragedu.cli import main
from ragedu.evaluate import out_of_corpus_questions, signal_speaks
from ragedu.phrasings import held_out_examples
from ragedu.pretrained import load, save
from ragedu.relevance import calibrate, memory_signals
from ragedu.retriever import EncoderConfig
from ragedu.generator import GeneratorConfig


def test_the_signal_reads_raw_scores_not_the_renormalised_posterior():
    scores = torch.tensor([[9.0, 8.0, 7.0], [3.0, 2.0, 1.0]])  # the same p(z|x) for both questions
    torch.testing.assert_close(scores[0].log_softmax(-1), scores[1].log_softmax(-1))
    signals = memory_signals(scores, threshold=5.0)
    assert [s.speaks for s in signals] == [False, True]
    assert [s.score for s in signals] == [9.0, 3.0]
    assert "nothing" in signals[1].sentence and "guess" in signals[1].sentence
    assert memory_signals(scores, None) is None


def test_calibration_is_the_quantile_of_the_best_scores():
    best = torch.arange(100, dtype=torch.float)
    assert calibrate(best, 0.05) == pytest.approx(4.95)
    assert sum(b < calibrate(best, 0.05) for b in best.tolist()) == 5
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        calibrate(best, 1.0)
    with pytest.raises(ValueError, match="at least 10"):
        calibrate(best[:3], 0.1)


def test_the_threshold_is_saved_loaded_and_carried_by_retrieval(toy_rag, toy_tokenizer, tmp_path):
    small = dict(vocab_size=len(toy_tokenizer), dim=32, layers=1, heads=2)
    toy_rag.retriever.relevance_threshold = 0.25
    try:
        path = save(toy_rag, tmp_path / "m", EncoderConfig(**small), GeneratorConfig(**small))
    finally:
        toy_rag.retriever.relevance_threshold = None
    model = load(path)
    assert json.loads((path / "config.json").read_text())["relevance_threshold"] == 0.25
    with torch.no_grad():
        retrieved = model.retriever.retrieve(["Which country is Town 3 in?", "Town 7"], 3)
    signals = retrieved.memory_signals
    assert [s.speaks for s in signals] == [s < 0.25 for s in retrieved.scores.max(-1).values.tolist()]
    assert dataclasses.replace(retrieved, threshold=None).memory_signals is None


@pytest.fixture(scope="module")
def shipped():
    return ragedu.load_default()


def test_the_shipped_model_is_calibrated(shipped):
    assert isinstance(shipped.retriever.relevance_threshold, float)


def test_ask_says_when_the_memory_holds_nothing_and_answers_anyway(capsys):
    assert main(["ask", "Who wrote Hamlet?", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["memory_signal"]["speaks"] is True
    assert result["memory_signal"]["score"] < result["memory_signal"]["threshold"]
    assert all(a["answer"] for a in result["answers"].values())   # RAG still answers
    assert main(["ask", "Who wrote Hamlet?"]) == 0
    assert "note: The memory seems to hold nothing on this question" in capsys.readouterr().out
    assert main(["ask", "What is the capital of Kenya?", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["memory_signal"]["speaks"] is False


def test_on_the_shipped_model_it_is_quiet_on_held_out_phrasings_and_speaks_out_of_corpus(shipped):
    questions = out_of_corpus_questions()
    assert len(questions) >= 30
    assert signal_speaks(shipped, questions) >= 0.9
    held_out = [e.question for task in ("qa", "claims") for e in held_out_examples(task, "test")]
    assert 1 - signal_speaks(shipped, held_out) >= 0.95
