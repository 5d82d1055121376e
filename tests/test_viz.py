"""The views: each plot function on constructed data, checked for what it drew (bars, labels, colour scales, titles);
and the data-shaping helpers behind them (the beam tree, the training log, the moving average)."""
import json

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.colors import to_hex
from matplotlib.patches import Rectangle

from ragedu.checkpoint import read_train_log
from ragedu.errors import RagEduError
from ragedu.variants import VARIANT_COLORS
from ragedu.decoding import sequence_trace
from ragedu.traces import RagTokenTrace, TokenStep
from ragedu.viz import plot_copy, plot_doc_posterior, plot_likelihoods, plot_token_log_probs, plot_token_posterior, token_labels
from ragedu.viz_decoding import beam_tree, plot_beam_tree, plot_hypothesis_matrix
from ragedu.viz_results import plot_eval_table, plot_results_vs_paper
from ragedu.viz_training import moving_average, plot_loss_curves, plot_posterior_change

plt.switch_backend("Agg")  # draw off-screen: the tests read what was drawn, nobody looks

TITLES = ["Vienna", "Austria", "Viana"]


@pytest.fixture
def ax():
    fig, ax = plt.subplots()
    yield ax
    plt.close(fig)


def tick_texts(ticks):
    return [t.get_text() for t in ticks]


def bar_widths(ax):
    return [p.get_width() for p in ax.patches if isinstance(p, Rectangle)]


def test_doc_posterior_draws_one_bar_per_passage_best_on_top(ax):
    plot_doc_posterior(ax, [0.7, 0.2, 0.1], TITLES, "What is the capital of Austria?")
    assert bar_widths(ax) == pytest.approx([0.7, 0.2, 0.1])
    assert tick_texts(ax.get_yticklabels()) == TITLES
    assert ax.yaxis_inverted() and ax.get_xlim() == (0, 1)
    assert "capital of Austria" in ax.get_title()


def test_token_posterior_is_a_heatmap_on_a_fixed_0_1_scale(ax):
    posterior = np.array([[0.9, 0.1], [0.05, 0.8], [0.05, 0.1]])  # (K, T)
    plot_token_posterior(ax, posterior, [" Vienna", "</s>"], TITLES)
    (image,) = ax.get_images()
    assert image.get_clim() == (0, 1) and image.get_array().shape == (3, 2)
    assert tick_texts(ax.get_xticklabels()) == [" Vienna", "</s>"] and tick_texts(ax.get_yticklabels()) == TITLES


def test_copy_view_is_one_pointer_column_per_target_token_labelled_with_its_copied_share(ax):
    a = np.array([[0.1, 0.8, 0.1], [0.3, 0.3, 0.4]])  # (T, L) = (2, 3)
    plot_copy(ax, a, [0.93, 0.05], ["Its", "Nairobi", "?"], ["Nairobi", "</s>"])
    (image,) = ax.get_images()
    assert image.get_clim() == (0, 1) and image.get_array().shape == (3, 2)   # (L, T): input tokens are rows
    np.testing.assert_allclose(image.get_array(), (np.array([[0.93], [0.05]]) * a).T)
    assert image.get_array()[:, 1].max() <= 0.05                            # the gated-off token stays dark
    assert tick_texts(ax.get_yticklabels()) == ["Its", "Nairobi", "?"]
    assert tick_texts(ax.get_xticklabels()) == ["Nairobi (93%)", "</s> (5%)"]
    assert all(t.get_rotation() == 0 for t in ax.get_yticklabels())         # input tokens read level
    assert ax.get_xlabel() and ax.get_ylabel() and "copy head" in ax.get_title()


def test_token_log_probs_heatmap_runs_from_the_floor_to_zero(ax):
    log_p_yi = np.array([[-0.1, -20.0], [-3.0, -0.5], [-7.0, -1.0], [-0.2, -0.3]])  # (K, T) = (4, 2)
    plot_token_log_probs(ax, log_p_yi[:3], ["a", "b"], TITLES, floor=-8)
    (image,) = ax.get_images()
    assert image.get_clim() == (-8, 0)
    assert image.get_array().shape == (3, 2)
    assert tick_texts(ax.get_yticklabels()) == TITLES and tick_texts(ax.get_xticklabels()) == ["a", "b"]
    colorbar = ax.figure.axes[-1]
    assert "-8" in colorbar.get_ylabel()
    assert "log p(y_i | x, z, y<i)" in ax.get_title()


def test_likelihoods_draw_a_pair_of_bars_per_answer(ax):
    plot_likelihoods(ax, ["Q1 → A1", "Q2 → A2"], [-1.0, -2.5], [-1.5, -2.0])
    assert sorted(bar_widths(ax)) == pytest.approx(sorted([-1.0, -2.5, -1.5, -2.0]))
    assert tick_texts(ax.get_yticklabels()) == ["Q1 → A1", "Q2 → A2"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["RAG-Sequence", "RAG-Token"]
    assert {t.get_text().strip() for t in ax.texts} == {"-1.00", "-2.50", "-1.50", "-2.00"}


def test_likelihood_labels_overlap_nothing_when_one_bar_is_far_longer_than_the_rest():
    # notebook 3's case: one clue far less likely under RAG-Token, four short answers near 0
    fig, ax = plt.subplots(figsize=(10, 4.5))
    labels = ["Prague → This city of 1,165,581 peopl…", "Which city is the capital of Austria? → Vienna",
              "What is the currency of Austria? → euro", "Austria is part of which continent? → Europe",
              "Which country is Vienna in? → Austria"]
    plot_likelihoods(ax, labels, [-1.33, -0.08, -0.06, -0.17, -0.14], [-7.05, -0.13, -0.07, -0.17, -0.13])
    fig.tight_layout()
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in ax.texts]
    inside = ax.get_window_extent(renderer)
    assert all(inside.x0 <= b.x0 and b.x1 <= inside.x1 for b in boxes)    # no value runs off the axes
    assert not [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:] if a.overlaps(b)]
    plt.close(fig)


def constructed_trace():
    """Two beams over tokens 5 ('a'), 6 ('b'), 2 (</s>): step 1 keeps a, b; step 2 keeps a a, b a and finishes
    'a </s>'; step 3 finishes 'a a </s>'. The returned answer is 'a </s>'."""
    def step(tokens, log_p, parent, done, scores):
        return TokenStep(tokens=tokens, log_p=torch.tensor(log_p), parent=torch.tensor(parent),
                         log_p_z_given_yt=torch.zeros(len(tokens), 2), done=done, done_scores=torch.tensor(scores))
    steps = [step([[5], [6]], [-0.1, -2.0], [0, 0], [], []),
             step([[5, 5], [6, 5]], [-3.0, -4.0], [0, 1], [[5, 2]], [-0.2]),
             step([[5, 5, 6], [6, 5, 5]], [-6.0, -7.0], [0, 1], [[5, 2], [5, 5, 2]], [-0.2, -1.5])]
    return RagTokenTrace(log_p_z=torch.zeros(2), steps=steps, ids=[[5, 2], [5, 5, 2]], log_p_z_given_yi=[])


class Spelling(dict):
    """A tokenizer of three tokens: decode([id]) is its text."""

    def decode(self, ids):
        return "".join(self[i] for i in ids)


def test_beam_tree_links_each_prefix_to_its_parent_and_marks_the_answer():
    names = {5: " a", 6: " b", 2: "</s>"}
    tree = beam_tree(constructed_trace(), Spelling(names))
    # root | a, b | a </s>, a a, b a | a a </s>, a a b, b a a: each step's new nodes by score, finished or not
    # (a finished prefix appears once, when it joined the pool)
    assert tree.prefixes == [(), (5,), (6,), (5, 2), (5, 5), (6, 5), (5, 5, 2), (5, 5, 6), (6, 5, 5)]
    assert tree.labels == ["<s>", " a", " b", "</s>", " a", " a", "</s>", " b", " a"]
    assert tree.texts == ["<s>", "a", "b", "a </s>", "a a", "b a", "a a </s>", "a a b", "b a a"]
    assert tree.step == [0, 1, 1, 2, 2, 2, 3, 3, 3]
    assert tree.rank == [0, 0, 1, 0, 1, 2, 0, 1, 2]
    assert tree.finished == [False, False, False, True, False, False, True, False, False]
    assert tree.chosen == [True, True, False, True, False, False, False, False, False]
    # one scale: live nodes log p'(y≤t|x) / t, finished ones their pool score (log p'(y|x) / |y|)
    assert tree.score == pytest.approx([0, -0.1, -2.0, -0.2, -1.5, -2.0, -1.5, -2.0, -7 / 3])
    assert tree.log_p == pytest.approx([0, -0.1, -2.0, -0.4, -3.0, -4.0, -4.5, -6.0, -7.0])
    for t in range(4):                                 # each column best first on that one scale
        column = [tree.score[i] for i in sorted(range(len(tree.step)), key=tree.rank.__getitem__) if tree.step[i] == t]
        assert column == sorted(column, reverse=True)
    parent = {tree.prefixes[c]: tree.prefixes[p] for p, c in tree.edges}
    assert len(tree.edges) == len(tree.prefixes) - 1  # a tree: every node but the root has one parent
    assert all(parent[y] == y[:-1] for y in parent)


def test_beam_tree_scores_live_prefixes_with_the_traces_length_penalty():
    trace = constructed_trace()
    trace.length_penalty = 0.0                         # α = 0: the score is log p'(y≤t|x) itself
    tree = beam_tree(trace, Spelling({5: " a", 6: " b", 2: "</s>"}))
    live = {y: s for y, s, done in zip(tree.prefixes, tree.score, tree.finished) if not done}
    assert live == pytest.approx({(): 0.0, (5,): -0.1, (6,): -2.0, (5, 5): -3.0, (6, 5): -4.0,
                                  (5, 5, 6): -6.0, (6, 5, 5): -7.0})
    assert tree.texts[tree.prefixes.index((5, 2))] == "a </s>"


def test_beam_tree_plot_draws_a_box_per_node_with_its_prefix_and_score(ax):
    tree = beam_tree(constructed_trace(), Spelling({5: " a", 6: " b", 2: "</s>"}))
    plot_beam_tree(ax, tree)
    assert len(ax.texts) == len(tree.prefixes)
    assert {t.get_text() for t in ax.texts} >= {"a </s>\n-0.20", "a a\n-1.50", "b a a\n-2.33", "<s>"}
    assert len(ax.lines) == len(tree.edges)
    red = [line for line in ax.lines if line.get_color() == "tab:red"]
    assert len(red) == 2  # root -> a -> a </s>
    assert tick_texts(ax.get_xticklabels()) == ["start", "step 1", "step 2", "step 3"]
    assert "beam search" in ax.get_title() and "/ t" in ax.get_title() and ax.get_xlabel()


def constructed_case(mode: str):
    """The constructed case of test_decoding as a trace: fast keeps 'a' (p 0.25, 0.20), thorough picks 'b' (0.40, 0.425)."""
    log_p_y_given_z = torch.tensor([[0.5, 0.3], [0.45, 0.4]]).log()
    on_beam = torch.tensor([[True, False], [False, True]])
    return sequence_trace(mode, ["a", "b"], torch.tensor([0.5, 0.5]).log(), log_p_y_given_z, on_beam)


def test_hypothesis_matrix_marks_beam_rescored_and_assumed_zero_cells(ax):
    plot_hypothesis_matrix(ax, constructed_case("fast"), ["passage 0", "passage 1"])
    (image,) = ax.get_images()
    assert image.get_clim() == (0, 1)                                       # the printed numbers' scale
    assert image.get_array().mask.tolist() == [[False, True], [True, False]]  # assumed zeros are not coloured
    assert image.get_array()[0, 0] == pytest.approx(0.5) and image.get_array()[1, 1] == pytest.approx(0.4)
    assert sorted(t.get_text() for t in ax.texts) == ["0.40", "0.50", "0?", "0?"]
    frames = [p for p in ax.patches if isinstance(p, Rectangle) and p.get_linewidth() == 2]
    assert len(frames) == 2 and {p.get_linestyle() for p in frames} == {"-"}
    labels = tick_texts(ax.get_yticklabels())
    assert labels[0].startswith("★ 'a'") and "0.250" in labels[0] and not labels[1].startswith("★")
    assert tick_texts(ax.get_xticklabels()) == ["passage 0\np(z|x)=0.50", "passage 1\np(z|x)=0.50"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["found by z's beam", "assumed 0 (fast)"]


def test_hypothesis_matrix_under_thorough_decoding_frames_rescored_cells_dashed(ax):
    trace = constructed_case("thorough")
    assert trace.best_of_both(1) == [1, 0]                                  # thorough's best, then fast's
    plot_hypothesis_matrix(ax, trace, ["passage 0", "passage 1"], rows=[1, 0])
    frames = [p for p in ax.patches if isinstance(p, Rectangle) and p.get_linewidth() == 2]
    assert len(frames) == 4 and sum(p.get_linestyle() == "--" for p in frames) == 2
    labels = tick_texts(ax.get_yticklabels())
    assert labels[0].startswith("★ 'b'") and labels[1].startswith("'a'")  # rows as asked, the star on the best
    image = ax.get_images()[0]
    assert not np.ma.is_masked(image.get_array())
    colour = lambda p: image.cmap(image.norm(p))  # noqa: E731
    assert np.abs(np.subtract(colour(0.30), colour(0.50))).max() > 0.1   # 0.30 and 0.50 look apart
    assert tick_texts(ax.get_xticklabels()) == ["passage 0\np(z|x)=0.50", "passage 1\np(z|x)=0.50"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["found by z's beam", "rescored (extra pass)"]


def test_hypothesis_matrix_at_k_10_slants_one_line_passage_labels(ax):
    K = 10
    log_p_z = torch.full((K,), 1 / K).log()
    log_p_y_given_z = torch.tensor([[0.9] + [1e-6] * (K - 1), [0.2] * K]).log()   # (H, K) = (2, 10)
    on_beam = torch.zeros(2, K, dtype=torch.bool)
    on_beam[0, 0] = on_beam[1, 1] = True
    plot_hypothesis_matrix(ax, sequence_trace("thorough", ["a", "b"], log_p_z, log_p_y_given_z, on_beam),
                           [f"Passage number {k}" for k in range(K)])
    labels = ax.get_xticklabels()
    assert tick_texts(labels) == [f"Passage number {k}  0.10" for k in range(K)]
    assert {t.get_rotation() for t in labels} == {40} and "p(z|x)" in ax.get_xlabel()
    assert "1e-6" in {t.get_text() for t in ax.texts}                      # four characters, to fit the cell


def test_train_log_is_read_per_stage_in_order(tmp_path):
    rows = [("denoise", 1, 8.0), ("denoise", 2, 7.0), ("rag", 1, 3.0), ("denoise", 3, 6.0)]
    path = tmp_path / "train_log.jsonl"
    path.write_text("".join(json.dumps({"stage": s, "step": i, "loss": v}) + "\n" for s, i, v in rows) + "\n")
    curves = read_train_log(path)
    assert list(curves) == ["denoise", "rag"]
    steps, losses = curves["denoise"]
    assert steps.tolist() == [1, 2, 3] and losses.tolist() == [8.0, 7.0, 6.0]


def test_moving_average_is_the_mean_of_the_last_window_values():
    values = np.array([4.0, 2.0, 6.0, 0.0, 8.0])
    expected = [4.0, 3.0, 4.0, 8 / 3, 14 / 3]  # windows of up to 3, shorter at the start
    assert moving_average(values, 3) == pytest.approx(expected)
    assert moving_average(values, 1) == pytest.approx(values)


def test_loss_curves_draw_each_stage_raw_and_smoothed():
    curves = {"denoise": (np.arange(1, 11), np.linspace(8, 1, 10)), "rag": (np.arange(1, 6), np.ones(5))}
    fig, axes = plt.subplots(1, 2)
    plot_loss_curves(axes, curves, window=4)
    for ax, (steps, losses) in zip(axes, curves.values()):
        raw, smooth = ax.lines
        assert raw.get_ydata().tolist() == losses.tolist()
        assert smooth.get_ydata() == pytest.approx(moving_average(losses, 4))
        assert ax.get_xlabel() == "step" and ax.get_ylim()[0] == 0
    assert axes[0].get_title().startswith("0 · denoise") and "RAG" in axes[1].get_title()
    plt.close(fig)


def test_posterior_change_pairs_before_and_after_bars(ax):
    plot_posterior_change(ax, [0.5, 0.3, 0.2], [0.9, 0.05, 0.05], TITLES, "Vienna?")
    assert bar_widths(ax) == pytest.approx([0.5, 0.3, 0.2, 0.9, 0.05, 0.05])
    assert tick_texts(ax.get_yticklabels()) == TITLES and ax.get_xlim() == (0, 1)
    assert len(ax.get_legend().get_texts()) == 2


def test_eval_table_draws_counts_of_questions_not_rates(ax):
    by_relation = {"capital": {"sequence": 1.0, "token": 0.0, "closed_book": 0.0},
                   "city_country": {"sequence": 0.75, "token": 0.5, "closed_book": 0.25}}
    plot_eval_table(ax, by_relation, counts={"capital": 1, "city_country": 12})
    heights = [p.get_height() for p in ax.patches]
    # the backdrops (questions asked), then each system's counts: capital rests on one question, drawn as 1 of 1
    assert heights == pytest.approx([1, 12, 1, 9, 0, 6, 0, 3])
    assert {t.get_text() for t in ax.texts} == {"1", "0", "9", "6", "3"}
    ax.clear()
    by_relation["city_country"] = {"sequence": 0.6667, "token": 0.3333, "closed_book": 0.0}  # evaluate's 4 places
    plot_eval_table(ax, by_relation, counts={"capital": 1, "city_country": 12})
    assert [p.get_height() for p in ax.patches] == pytest.approx([1, 12, 1, 8, 0, 4, 0, 0])
    assert tick_texts(ax.get_xticklabels()) == ["capital\n(1 asked)", "city →\ncountry\n(12 asked)"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["questions asked", "RAG-Sequence", "RAG-Token",
                                                                    "closed-book BART"]
    assert ax.get_ylabel() == "questions answered exactly" and ax.get_ylim()[1] > 12


def test_eval_table_refuses_counts_that_are_not_those_evaluated(ax):
    with pytest.raises(RagEduError, match="not a count out of 3"):
        plot_eval_table(ax, {"capital": {"sequence": 0.5}}, counts={"capital": 3})
    with pytest.raises(RagEduError, match="counts\\['capital'\\]"):
        plot_eval_table(ax, {"capital": {"sequence": 0.5}}, counts={})


def test_results_vs_paper_sets_ours_and_the_papers_in_two_panels():
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 5))
    ours = [{"sequence": 0.8, "token": 0.75, "closed_book": 0.05}, {"sequence": 0.5, "token": 0.5}]
    paper = [{"sequence": 0.445, "token": 0.441, "closed_book": 0.345}, {"sequence": 0.725, "token": 0.725}]
    plot_results_vs_paper((left, right), ["QA", "claims"], ours, ["NQ", "FEVER"], paper,
                          paper_names={"closed_book": "T5-11B (paper)"})
    for ax, expected in ((left, ours), (right, paper)):
        drawn = [p.get_height() for p in ax.patches if not np.isnan(p.get_height())]
        assert sorted(drawn) == pytest.approx(sorted(v for d in expected for v in d.values()))
    assert not [p for p in left.patches if p.get_hatch()]                  # ours solid, the paper's hatched
    assert all(p.get_hatch() == "//" for p in right.patches)
    assert tick_texts(left.get_xticklabels()) == ["QA", "claims"] and tick_texts(right.get_xticklabels()) == ["NQ", "FEVER"]
    assert left.get_title() != right.get_title() and "paper" in right.get_title()
    assert left.get_ylabel() != right.get_ylabel()                          # each panel its own axis
    assert [t.get_text() for t in left.get_legend().get_texts()] == ["RAG-Sequence (ours)", "RAG-Token (ours)",
                                                                      "closed-book BART (ours)"]
    assert [t.get_text() for t in right.get_legend().get_texts()] == ["RAG-Sequence (paper)", "RAG-Token (paper)",
                                                                       "T5-11B (paper)"]
    assert "0.445" in {t.get_text() for t in right.texts}  # the paper's figures keep their third digit
    plt.close(fig)


def test_every_view_colours_a_model_by_the_course_wide_colour(ax):
    plot_likelihoods(ax, ["Q → A"], [-1.0], [-2.0])
    bars = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert [to_hex(p.get_facecolor()) for p in bars] == [to_hex(VARIANT_COLORS["sequence"]),
                                                          to_hex(VARIANT_COLORS["token"])]
    ax.clear()
    plot_eval_table(ax, {"capital": {"token": 0.5, "closed_book": 0.0}}, counts={"capital": 2})
    assert [to_hex(p.get_facecolor()) for p in ax.patches[1:]] == [to_hex(VARIANT_COLORS["token"]),
                                                                    to_hex(VARIANT_COLORS["closed_book"])]
    ax.clear()                                           # what belongs to neither model is not drawn in their colours
    plot_doc_posterior(ax, [0.7, 0.3], TITLES[:2])
    plot_posterior_change(ax, [0.5, 0.5], [0.9, 0.1], TITLES[:2])
    plot_loss_curves([ax], {"rag": (np.arange(1, 4), np.ones(3))})
    drawn = {to_hex(p.get_facecolor()) for p in ax.patches} | {to_hex(line.get_color()) for line in ax.lines}
    assert not drawn & {to_hex(c) for c in VARIANT_COLORS.values()}


def test_token_labels_strip_the_leading_space_and_show_a_bare_space():
    class Spelling:
        def decode(self, ids):
            return {0: " This", 1: " ", 2: "</s>"}[ids[0]]
    assert token_labels(Spelling(), torch.tensor([0, 1, 2])) == ["This", "␣", "</s>"]
