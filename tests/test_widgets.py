"""The explorer: its cached computation (ExplorerState), its widget driven as a user would, and its fallback
outside Jupyter. The brute-force references are the library's own uncached calls: retrieve(K), decode(K)."""
import dataclasses

import matplotlib
import numpy as np
import pytest
import torch

import ragedu
import ragedu.explorer as explorer_module
import ragedu.widgets as widgets
from ragedu.decoding import decode
from ragedu.explorer import rag_sequence_at_k
from ragedu.widgets import Explorer, ExplorerState, explore
from ragedu.relevance import EmptyPassage

matplotlib.use("Agg")

QUESTION = "What is the capital of Austria?"
OTHER = "What is the currency of Japan?"


@pytest.fixture(scope="module")
def model():
    return ragedu.load_default()


@pytest.fixture(scope="module")
def explorer(model, one_thread):
    return Explorer(model, QUESTION, k=5, num_beams=2, k_max=8)


def test_top_k_of_a_larger_retrieval_is_retrieve_k(toy_rag, one_thread):
    """Subtle: p(z|x) is renormalised over the top K, so slicing log p(z|x) would be wrong; re-softmaxing the
    sliced scores d(z)ᵀq(x) is exactly what retrieve(K) computes."""
    questions = ["Which country is Town 3 in?", "What is the population of Town 12?"]
    with torch.no_grad():
        wide = toy_rag.retriever.retrieve(questions, 20)
        for k in (1, 4, 20):
            sliced, direct = wide.top(k), toy_rag.retriever.retrieve(questions, k)
            assert sliced.ids == direct.ids and sliced.titles == direct.titles
            assert torch.equal(sliced.rows, direct.rows)
            torch.testing.assert_close(sliced.log_p_z, direct.log_p_z, atol=1e-5, rtol=0)
            torch.testing.assert_close(sliced.log_p_z.exp().sum(-1), torch.ones(2))
    assert not torch.allclose(wide.top(4).log_p_z, wide.log_p_z[:, :4])  # plain slicing is not p_K(z|x)
    with pytest.raises(ValueError, match="between 1 and 20, the passages retrieved per question"):
        wide.top(21)


@pytest.mark.parametrize("mode", ["thorough", "fast"])
def test_rag_sequence_sliced_from_k_max_equals_decoding_at_k(toy_rag, one_thread, mode):
    """Each p_θ(y|x,z) depends on one passage, so one thorough trace at K_max answers every K ≤ K_max."""
    question = "What is the population of Town 5?"
    with torch.no_grad():
        wide = toy_rag.retriever.retrieve([question], 6)
    trace = decode(toy_rag, [question], "sequence", 6, mode="thorough", num_beams=3, max_len=8, trace=True,
                   retrieved=wide).trace[0]
    for k in (1, 2, 4, 6):
        direct = decode(toy_rag, [question], "sequence", k, mode=mode, num_beams=3, max_len=8, retrieved=wide)
        ids, log_p_y = rag_sequence_at_k(trace, wide.top(k).log_p_z[0], mode)
        assert ids == direct.ids[0][0], f"K={k} {mode}"
        assert log_p_y == pytest.approx(direct.log_p_y[0][0], abs=1e-4)


def counting(monkeypatch, owner, name: str) -> list:
    """Replace owner.name by a wrapper that records each call."""
    calls, original = [], getattr(owner, name)

    def wrapper(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, wrapper)
    return calls


def test_changing_k_variant_mode_or_beams_never_encodes_the_question_again(model, monkeypatch, one_thread):
    state = ExplorerState(model, k_max=8)
    encoded = counting(monkeypatch, model.retriever, "encode_questions")
    decoded = counting(monkeypatch, explorer_module, "decode")
    first = state.view(QUESTION, 5, "token", "thorough", 2)
    assert len(encoded) == 1 and len(decoded) == 2          # RAG-Token at K=5, RAG-Sequence once at K_max
    state.view(QUESTION, 3, "token", "thorough", 2)          # K: a new RAG-Token search, nothing else
    assert len(encoded) == 1 and len(decoded) == 3
    state.view(QUESTION, 3, "sequence", "thorough", 2)       # variant: only the heatmap's teacher-forced pass
    state.view(QUESTION, 3, "sequence", "fast", 2)           # mode: a slice of the RAG-Sequence trace
    assert len(encoded) == 1 and len(decoded) == 3
    state.view(QUESTION, 3, "sequence", "fast", 1)           # beams: new searches, the same passages
    assert len(encoded) == 1 and len(decoded) == 5
    before = list(state.computed)
    again = state.view(QUESTION, 5, "token", "thorough", 2)  # a setting seen before costs nothing
    assert state.computed == before and len(decoded) == 5
    assert again.answers == first.answers and np.array_equal(again.posterior, first.posterior)
    state.view(OTHER, 5, "token", "thorough", 2)
    assert len(encoded) == 2


def test_view_holds_the_numbers_to_draw(model, one_thread):
    view = ExplorerState(model, k_max=8).view(QUESTION, 6, "token", "fast", 2)
    assert view.message is None
    assert len(view.titles) == len(view.texts) == len(view.p_z) == 6
    assert sum(view.p_z) == pytest.approx(1, abs=1e-5) and view.p_z == sorted(view.p_z, reverse=True)
    assert set(view.answers) == {"token", "sequence"}
    assert all(0 <= p <= 1 for _, p in view.answers.values())
    assert view.posterior.shape == (6, len(view.tokens)) and view.tokens[-1] == "</s>"
    np.testing.assert_allclose(view.posterior.sum(axis=0), 1, atol=1e-5)  # each token's column sums to 1 over z
    seq = ExplorerState(model, k_max=8).view(QUESTION, 6, "sequence", "fast", 2)
    np.testing.assert_allclose(seq.posterior.sum(axis=0), 1, atol=1e-5)
    assert "RAG-Sequence" in seq.posterior_title and "RAG-Token" in view.posterior_title


def test_the_widget_redraws_when_k_or_the_question_changes(explorer):
    passages, answers, figure = explorer.passages.value, explorer.answers.value, bytes(explorer.token_figure.value)
    assert passages.count("<tr>") == 1 + 5 and figure.startswith(b"\x89PNG")
    explorer.k.value = 2                                    # as a user drags the slider
    assert explorer.passages.value.count("<tr>") == 1 + 2 and explorer.passages.value != passages
    assert explorer.view.k == 2 and explorer.view.p_z[0] > 0.5 and bytes(explorer.token_figure.value) != figure
    explorer.question.value = OTHER                         # as a user types and presses Enter
    assert explorer.view.titles != explorer.state.view(QUESTION, 2, num_beams=2).titles
    assert explorer.passages.value != passages and explorer.message.value == ""
    explorer.variant.value, explorer.mode.value, explorer.num_beams.value = "sequence", "fast", 1
    assert (explorer.view.variant, explorer.view.mode, explorer.view.num_beams) == ("sequence", "fast", 1)
    assert "RAG-Sequence (fast)" in explorer.answers.value
    explorer.question.value, explorer.k.value = QUESTION, 5  # back where it started: the same numbers
    explorer.variant.value, explorer.mode.value, explorer.num_beams.value = "token", "thorough", 2
    assert explorer.passages.value == passages and explorer.answers.value == answers


@pytest.mark.parametrize("bad", ["", "   ", "why " * 200])
def test_bad_questions_show_a_message_not_an_exception(explorer, bad):
    explorer.question.value = bad
    assert "question" in explorer.message.value.lower()
    assert explorer.passages.value == "" and explorer.answers.value == ""
    explorer.question.value = QUESTION
    assert explorer.message.value == "" and explorer.passages.value


def test_bad_settings_give_a_message(model):
    state = ExplorerState(model, k_max=4)
    assert "K must be an integer between 1 and 4, the passages retrieved per question" in state.view(QUESTION, 9).message
    assert "beam size" in state.view(QUESTION, 2, num_beams=0).message
    assert "variant" in state.view(QUESTION, 2, variant="both").message
    with pytest.raises(ValueError, match="k_max"):
        ExplorerState(model, k_max=0)


def test_figures_draw_the_view(model, one_thread):
    view = ExplorerState(model, k_max=8).view(QUESTION, 4, "token", "thorough", 1)
    bars = widgets.doc_posterior_figure(view).axes[0]
    assert len(bars.patches) == 4 and [t.get_text() for t in bars.get_yticklabels()] == view.titles
    heat = widgets.token_posterior_figure(view).axes[0]
    assert heat.images[0].get_array().shape == (4, len(view.tokens))
    assert heat.images[0].get_clim() == (0, 1)
    assert [t.get_text() for t in heat.get_xticklabels()] == view.tokens


def test_explore_outside_jupyter_prints_and_draws_without_a_display(model, capsys, monkeypatch, one_thread):
    monkeypatch.delenv("DISPLAY", raising=False)
    view = explore(model, QUESTION, k=3, num_beams=1, k_max=4)
    out = capsys.readouterr().out
    assert view.message is None and "p(z|x)=" in out and "RAG-Token" in out and view.titles[0] in out
    assert "type a question" in explore(model, "", k_max=4).message
    import matplotlib.pyplot as plt
    plt.close("all")


def test_the_explorer_shows_the_memory_signal_and_still_answers(toy_rag, one_thread):
    toy_rag.retriever.relevance_threshold = 1e6   # every question: the memory 'holds nothing'
    toy_rag.retriever.empty_passage = EmptyPassage(32)
    try:
        explorer = Explorer(toy_rag, "Who wrote Hamlet?", k=3, num_beams=1, k_max=5)
        view = explorer.view
        assert view.memory_note and "hold nothing" in view.memory_note
        assert "ragedu-memory-note" in explorer.message.value and view.answers   # shown, and answered anyway
        assert "note:" in widgets.describe(view)
        toy_rag.retriever.relevance_threshold = -1e6
        explorer.question.value = "Which country is Town 3 in?"
        assert explorer.view.memory_note is None and explorer.message.value == ""
    finally:
        toy_rag.retriever.relevance_threshold = toy_rag.retriever.empty_passage = None


def test_the_explorers_figures_read_from_the_back_row(toy_rag, one_thread):
    """At most 10 inches wide, no text under 12 pt, drawn at 100 dpi (issue 15), also for a long answer."""
    from conftest import projector_problems

    explorer = Explorer(toy_rag, "Which country is Town 3 in?", k=5, num_beams=1, k_max=5)
    view = explorer.view
    long = dataclasses.replace(view, tokens=[f"tok{i}" for i in range(40)], posterior=np.full((5, 40), 0.2))
    for fig in (widgets.doc_posterior_figure(view), widgets.token_posterior_figure(view),
                widgets.token_posterior_figure(long)):
        assert projector_problems(fig) == []
        assert widgets.png(fig)[1] == round(fig.get_figwidth() * 100)
