"""The explorer: its cached computation (ExplorerState), its widget driven as a user would, and its fallback
outside Jupyter. The brute-force references are the library's own uncached calls: retrieve(K), decode(K)."""
import dataclasses
import re

import matplotlib
import numpy as np
import pytest
import torch

import ragedu
import ragedu.explorer as explorer_module
import ragedu.widgets as widgets
from ragedu.decoding import decode
from ragedu.explorer import rag_sequence_at_k, sequence_matrix_at_k
from ragedu.widgets import Explorer, ExplorerState, explore
from ragedu.relevance import EmptyPassage
from ragedu.viz_explorer import figure2_html, matrix_html

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


def test_passages_between_two_ranks_are_renormalised_over_themselves(toy_rag):
    wide = toy_rag.retriever.retrieve(["Which city is the capital of Kenya?"], 6)
    assert wide.between(0, 4).ids == wide.top(4).ids
    torch.testing.assert_close(wide.between(0, 4).log_p_z, wide.top(4).log_p_z)
    middle = wide.between(2, 5)                                          # passages 3, 4 and 5
    assert middle.ids[0] == wide.ids[0][2:5] and middle.titles[0] == wide.titles[0][2:5]
    torch.testing.assert_close(middle.log_p_z, wide.log_p_z[:, 2:5] - wide.log_p_z[:, 2:5].logsumexp(-1, keepdim=True))
    for start, stop in ((3, 3), (0, 7), (-1, 2)):
        with pytest.raises(ValueError):
            wide.between(start, stop)


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


def test_the_matrix_at_k_is_the_matrix_decoding_at_k_draws(toy_rag, one_thread):
    """Y_K and its marks, sliced from K_max, equal what decode(K, trace=True) finds: the explorer's matrix."""
    question = "What is the population of Town 5?"
    with torch.no_grad():
        wide = toy_rag.retriever.retrieve([question], 6)
    trace = decode(toy_rag, [question], "sequence", 6, mode="thorough", num_beams=3, max_len=8, trace=True,
                   retrieved=wide).trace[0]
    for k, mode in ((1, "fast"), (3, "thorough"), (4, "fast"), (6, "thorough")):
        direct = decode(toy_rag, [question], "sequence", k, mode=mode, num_beams=3, max_len=8, trace=True,
                        retrieved=wide).trace[0]
        sliced = sequence_matrix_at_k(trace, wide.top(k).log_p_z[0], mode)
        assert sorted(sliced.hypotheses) == sorted(direct.hypotheses) and sliced.mode == mode
        mine = {tuple(y): (row, p) for y, row, p in zip(sliced.hypotheses, sliced.source, sliced.log_p_y.tolist())}
        for y, row, p in zip(map(tuple, direct.hypotheses), direct.source, direct.log_p_y.tolist()):
            assert mine[y][0] == row, f"K={k} {mode} {y!r}"
            assert mine[y][1] == pytest.approx(p, abs=1e-4)


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
    state.view(QUESTION, 3, "sequence", "thorough", 2)       # variant: only the posteriors' teacher-forced pass
    state.view(QUESTION, 3, "sequence", "fast", 2)           # mode: a slice of the RAG-Sequence trace
    assert len(encoded) == 1 and len(decoded) == 3
    state.view(QUESTION, 3, "sequence", "fast", 1)           # beams: new searches, the same passages
    assert len(encoded) == 1 and len(decoded) == 5
    before = list(state.computed)
    again = state.view(QUESTION, 5, "token", "thorough", 2)  # a setting seen before costs nothing
    assert state.computed == before and len(decoded) == 5
    assert again.answers == first.answers and np.array_equal(again.posteriors["token"], first.posteriors["token"])
    state.view(OTHER, 5, "token", "thorough", 2)
    assert len(encoded) == 2


def test_view_holds_the_numbers_to_draw(model, one_thread):
    view = ExplorerState(model, k_max=8).view(QUESTION, 6, "token", "fast", 2)
    assert view.message is None
    assert len(view.titles) == len(view.texts) == len(view.p_z) == 6
    assert sum(view.p_z) == pytest.approx(1, abs=1e-5) and view.p_z == sorted(view.p_z, reverse=True)
    assert set(view.answers) == {"token", "sequence"}
    assert all(0 <= p <= 1 for _, p in view.answers.values())
    assert view.tokens[-1] == "</s>"
    for variant in ("token", "sequence"):
        assert view.posteriors[variant].shape == (6, len(view.tokens))
        np.testing.assert_allclose(view.posteriors[variant].sum(axis=0), 1, atol=1e-5)  # each column over z
    matrix = view.matrix
    assert matrix.mode == "fast" and matrix.log_p_y_given_z.shape == (len(matrix.texts), 6)
    assert view.answers["sequence"][0] == matrix.texts[matrix.rank_fast[0]]
    torch.testing.assert_close(matrix.log_p_z.exp(), torch.tensor(view.p_z))


def test_the_widget_redraws_when_k_or_the_question_changes(explorer):
    passages, answers, figure = explorer.passages.value, explorer.answers.value, explorer.figure2.value
    assert passages.count("<tr") == 1 + 5 and figure.count("<tr>") == 2 * (1 + 5)   # header + K rows, 2 panels
    explorer.k.value = 2                                    # as a user drags the slider
    assert explorer.passages.value.count("<tr") == 1 + 2 and explorer.passages.value != passages
    assert explorer.view.k == 2 and explorer.view.p_z[0] > 0.5 and explorer.figure2.value.count("<tr>") == 2 * 3
    assert explorer.busy.value == ""                        # the busy sign is gone once it is drawn
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
    token, sequence = widgets.figure2_figure(view).axes[:2]
    for ax, variant in ((token, "token"), (sequence, "sequence")):
        shown = ax.images[0].get_array()
        assert shown.shape == (4, 1 + len(view.tokens)) and ax.images[0].get_clim() == (0, 1)
        np.testing.assert_allclose(shown[:, 0], view.p_z, atol=1e-6)                 # the prior first
        np.testing.assert_allclose(shown[:, 1:], view.posteriors[variant], atol=1e-6)
        assert [t.get_text() for t in ax.get_xticklabels()] == ["p(z|x)", *view.tokens]
    matrix = widgets.matrix_figure(view).axes[0]
    assert matrix.images[0].get_array().shape == (len(view.matrix.best_of_both(3)), 4)
    table = matrix_html(view.matrix, view.titles, view.matrix.best_of_both(3))   # the widget's matrix: a table
    assert table.count("<tr>") == 1 + len(view.matrix.best_of_both(3)) and all(t[:21] in table for t in view.titles)


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
    """At most 10 inches wide and no text under 12 pt (issue 15), also for a long answer; the widget's Figure 2,
    a table, in 16 px (12 pt) text with columns at least as wide as a vertical label."""
    from conftest import projector_problems

    explorer = Explorer(toy_rag, "Which country is Town 3 in?", k=5, num_beams=1, k_max=5)
    view = explorer.view
    long = dataclasses.replace(view, tokens=[f"tok{i}" for i in range(40)],
                               posteriors={v: np.full((5, 40), 0.2) for v in ("token", "sequence")})
    for fig in (widgets.doc_posterior_figure(view), widgets.figure2_figure(view), widgets.figure2_figure(long),
                widgets.matrix_figure(view)):
        assert projector_problems(fig) == []
    assert "font-size:16px" in explorer.figure2.value
    for shown in (view, long):
        html = figure2_html(shown.p_z, shown.posteriors, shown.tokens, shown.titles, shown.texts, "token")
        widths = {int(w) for w in re.findall(r"<div style='width:(\d+)px", html)}
        assert len(widths) == 1 and 20 <= widths.pop() <= 32


def test_mode_and_beams_change_what_the_matrix_draws(model, one_thread):
    explorer = Explorer(model, QUESTION, k=5, num_beams=2, k_max=8, try_this=[])
    thorough, caption = explorer.matrix.value, explorer.matrix_caption.value
    assert "rescored by an extra pass" in caption and explorer.view.matrix.mode == "thorough"
    assert "class='rescored'" in thorough and "0?" not in thorough
    explorer.mode.value = "fast"
    assert "assumed 0" in explorer.matrix_caption.value and explorer.matrix.value != thorough
    assert "class='assumed-zero'" in explorer.matrix.value and "class='rescored'" not in explorer.matrix.value
    marks = sum(explorer.view.matrix.source, [])
    assert "assumed zero" in marks and "rescored" not in marks
    explorer.num_beams.value = 4
    assert explorer.view.matrix.texts != explorer.state.view(QUESTION, 5, mode="fast", num_beams=2).matrix.texts
    assert explorer.matrix_caption.value != caption.replace("rescored", "") and "beams of 4" in explorer.matrix_caption.value


def test_a_try_this_entry_sets_the_controls_and_says_what_to_look_at(model, monkeypatch, one_thread):
    from ragedu.try_this import TryThis

    entry = TryThis("k", OTHER, 1, 1, "fast", "sequence", k_to=5)
    explorer = Explorer(model, QUESTION, k=5, num_beams=2, k_max=8, try_this=[entry])
    views = counting(monkeypatch, explorer.state, "view")
    explorer.try_this.value = 0                               # as a user picks it from the list
    assert len(views) == 1                                    # five controls set, one computation
    assert (explorer.view.question, explorer.view.k, explorer.view.num_beams) == (OTHER, 1, 1)
    assert (explorer.view.mode, explorer.view.variant) == ("fast", "sequence")
    assert "Move K from 1 to 5" in explorer.hint.value
    explorer.question.value = QUESTION                        # another question: the hint goes
    assert explorer.hint.value == "" and explorer.try_this.value == -1


def test_passages_show_their_whole_text_on_hover(model):
    view = ExplorerState(model, k_max=4).view(QUESTION, 4, num_beams=1)
    table = widgets.passages_html(view)
    longest = max(view.texts, key=len)
    assert f"title='{view.titles[view.texts.index(longest)]}: {longest}" in table.replace("&#x27;", "'")
    assert "text-overflow:ellipsis" in table


def test_the_explorer_computes_with_its_threads_and_gives_them_back(model):
    before = torch.get_num_threads()
    seen = []
    state = ExplorerState(model, k_max=4, threads=1)
    original = state._view
    state._view = lambda *a: seen.append(torch.get_num_threads()) or original(*a)
    state.view(QUESTION, 2, num_beams=1)
    assert seen == [1] and torch.get_num_threads() == before
    with pytest.raises(ValueError, match="threads"):
        ExplorerState(model, k_max=4, threads=0)


def test_a_new_beam_size_searches_only_the_passages_shown_and_grows_to_k_max_once(model, monkeypatch, one_thread):
    state = ExplorerState(model, k_max=8)
    decoded = counting(monkeypatch, explorer_module, "decode")
    grown_searches = counting(monkeypatch, explorer_module, "search_each_passage")   # grown_trace's: (1, K', L, ·)
    state.view(QUESTION, 5, "token", "thorough", 2)           # the question's first search: RAG-Sequence at K_max
    state.view(QUESTION, 3, "sequence", "thorough", 3)        # a new beam size at K = 3
    sequence_ks = lambda: ([call[3] for call in decoded if call[2] == "sequence"]  # noqa: E731
                           + [call[1].mask.shape[1] for call in grown_searches])
    assert sequence_ks() == [8, 3]
    small = state.view(QUESTION, 2, "sequence", "fast", 3)    # K = 2 ≤ 3: a slice, no search
    assert sequence_ks() == [8, 3]
    grown = state.view(QUESTION, 6, "sequence", "thorough", 3)  # K outgrows the trace: the 5 passages it lacks
    state.view(QUESTION, 7, "sequence", "fast", 3)
    assert sequence_ks() == [8, 3, 5]
    whole = decode(model, [QUESTION], "sequence", 8, mode="thorough", num_beams=3, max_len=state.max_len,
                   trace=True, retrieved=state.retrieved(QUESTION)).trace[0]   # one search over all 8 passages
    grown_trace = state.sequence_trace(QUESTION, 3, 8)
    assert grown_trace.hypotheses == whole.hypotheses and grown_trace.source == whole.source
    torch.testing.assert_close(grown_trace.log_p_y_given_z, whole.log_p_y_given_z, atol=1e-5, rtol=1e-5)
    fresh = ExplorerState(model, k_max=8)                     # the same views from K_max traces only
    for view in (small, grown):
        again = fresh.view(QUESTION, view.k, view.variant, view.mode, 3)
        assert again.answers["sequence"][0] == view.answers["sequence"][0]
        assert abs(again.answers["sequence"][1] - view.answers["sequence"][1]) < 1e-5
        assert sorted(again.matrix.texts) == sorted(view.matrix.texts)
