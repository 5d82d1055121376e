"""The views of the paper's lessons added in issue 14 (overview, assignments, transition, score gradient, collapse,
vectors, K sweep): each on constructed data, checked for what it drew and that it reads from the back row."""
import matplotlib.pyplot as plt
import torch
from matplotlib.patches import Rectangle

from conftest import projector_problems
from ragedu.collapse import CollapseRun, Monitor
from ragedu.gradients import ScoreGradient
from ragedu.k_sweep import KSweep
from ragedu.projection import VectorPicture
from ragedu.viz import VARIANT_COLORS, plot_assignments, plot_rag_overview, plot_transition
from ragedu.viz_k_sweep import plot_k_sweep
from ragedu.viz_training import plot_retrieval_collapse, plot_score_gradient, plot_vector_picture

plt.switch_backend("Agg")
TITLES = ["Austria", "Salzburg", "Tuvalu"]


def texts(fig):
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def bars(ax):
    return [p for p in ax.patches if isinstance(p, Rectangle) and p.get_height() > 0 and p.get_width() != 0]


def test_the_overview_names_every_piece_and_fills_in_the_question(tmp_path):
    fig, ax = plt.subplots(figsize=(10, 5.5))
    plot_rag_overview(ax, "What is the capital of Austria?", TITLES, [0.9, 0.07, 0.03],
                      {"sequence": "Vienna", "token": "Vienna"}, n_passages=2439)
    drawn = "\n".join(texts(fig))
    for piece in ("q(x)", "MIPS", "2,439", "p_θ", "marginalise", "Austria   0.90", "RAG-Token: Vienna", "Austria?"):
        assert piece in drawn.replace("\n", " ") or piece in drawn, piece
    assert "Figure 1" in ax.get_title() and projector_problems(fig) == []
    plt.close(fig)


def test_assignment_bars_are_shares_of_the_whole_sum_labelled_by_passage():
    fig, ax = plt.subplots(figsize=(6, 4))
    plot_assignments(ax, torch.tensor([0.02, 0.01]), torch.tensor([[0, 0, 1], [2, 0, 0]]), TITLES, 0.04, 27)
    assert [round(b.get_width(), 3) for b in bars(ax)] == [0.5, 0.25]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["1 1 2", "3 1 1"]
    assert "27" in ax.get_title() and "1 = Austria" in texts(fig)[0] and ax.get_xlabel()
    assert all(b.get_facecolor()[:3] == plt.matplotlib.colors.to_rgb(VARIANT_COLORS["token"]) for b in bars(ax))
    assert projector_problems(fig) == []
    plt.close(fig)


def test_the_transition_shows_the_likeliest_tokens_of_the_vocabulary():
    fig, ax = plt.subplots(figsize=(5, 4))
    marginal = torch.tensor([0.1, 0.6, 0.05, 0.25]).log()
    plot_transition(ax, marginal, ["a", "b", "c", "d"], n=2)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["b", "d"]
    assert [round(b.get_width(), 2) for b in bars(ax)] == [0.6, 0.25] and "4 tokens" in ax.get_title()
    plt.close(fig)


def test_the_score_gradient_is_green_up_and_red_down():
    g = ScoreGradient("q?", "a", "sequence", TITLES, torch.zeros(3), torch.tensor([0.5, 0.3, 0.2]),
                      torch.tensor([0.9, 0.1, 0.0]), torch.tensor([-0.4, 0.2, 0.2]), torch.tensor([-0.4, 0.2, 0.2]))
    fig, ax = plt.subplots(figsize=(10, 3.8))
    plot_score_gradient(ax, g)
    drawn = bars(ax)
    assert [round(b.get_width(), 2) for b in drawn] == [0.4, -0.2, -0.2]
    assert drawn[0].get_facecolor()[:3] == plt.matplotlib.colors.to_rgb("tab:green")
    assert drawn[1].get_facecolor()[:3] == plt.matplotlib.colors.to_rgb("tab:red")
    assert "0.50 → 0.90" in ax.get_yticklabels()[0].get_text() and ax.get_xlabel() and projector_problems(fig) == []
    plt.close(fig)


def test_the_collapse_panels_draw_the_run_and_the_healthy_retriever():
    counts = lambda values: torch.tensor(values + [0] * 5)  # noqa: E731
    run = CollapseRun([0, 3], [Monitor(1.5, 3, 1.0, counts([4, 3, 2])), Monitor(0.5, 1, 1.0, counts([9, 0, 0]))], [2.0, 1.0, 0.5])
    healthy = Monitor(0.8, 8, 0.5, torch.ones(8, dtype=torch.long))
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    plot_retrieval_collapse(axes, run, healthy)
    assert list(axes[0].lines[0].get_ydata()) == [1.5, 0.5]
    labels = [t.get_text() for t in axes[1].get_legend().get_texts()]
    assert labels == ["random start, step 0: 3 passages", "random start, step 3: 1 passages",
                      "shipped retriever: 8 passages"]
    assert all(ax.get_xlabel() and ax.get_ylabel() and ax.get_title() for ax in axes)
    assert projector_problems(fig) == []
    plt.close(fig)


def test_the_vector_picture_names_the_gold_passages_and_draws_both_query_vectors():
    pic = VectorPicture(["Austria", "Salzburg"], torch.tensor([[0.0, 1.0], [1.0, 0.0]]), ["q?"],
                        torch.tensor([[0.5, 0.5]]), torch.tensor([[0.0, 2.0]]), [0], 0.6)
    fig, ax = plt.subplots(figsize=(9, 6))
    plot_vector_picture(ax, pic)
    assert "Austria" in texts(fig) and "60%" in ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
    assert len(ax.collections) >= 4 and projector_problems(fig) == []
    plt.close(fig)


def test_the_k_sweep_draws_both_variants_in_their_colours_and_recall():
    sweep = KSweep([1, 5, 50], {"sequence": [0.5, 0.7, 0.8], "token": [0.5, 0.72, 0.6]}, [0.8, 0.95, 1.0], 64, "test", "")
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    plot_k_sweep(axes, sweep, live=sweep)
    em = axes[0]
    assert list(em.lines[0].get_ydata()) == [0.5, 0.7, 0.8] and em.lines[0].get_color() == VARIANT_COLORS["sequence"]
    assert list(axes[1].lines[0].get_ydata()) == [0.8, 0.95, 1.0]
    assert "64 test questions" in em.get_title() and all(ax.get_xlabel() for ax in axes)
    assert projector_problems(fig) == []
    plt.close(fig)
