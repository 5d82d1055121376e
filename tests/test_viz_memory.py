"""The memory views of notebook 6 draw what they are given: cells, points, lines, labels and limits."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from ragedu.marginalize import truncation_curve  # noqa: E402
from ragedu.viz import VARIANT_COLORS  # noqa: E402
from ragedu.viz_memory import (plot_hot_swap, plot_index_tradeoff, plot_truncation, plot_truncation_gap,  # noqa: E402
                               plot_truncation_log_p, plot_truncation_mass)


@pytest.fixture()
def ax():
    fig, ax = plt.subplots()
    yield ax
    plt.close(fig)


def test_hot_swap_is_a_labelled_2x2_table(ax):
    table = {"2000": {"2000": 0.7, "today": 0.1}, "today": {"2000": 0.05, "today": 0.9}}
    plot_hot_swap(ax, table)
    image = ax.images[0].get_array()
    assert image.shape == (2, 2) and image[0, 1] == pytest.approx(0.1) and image[1, 1] == pytest.approx(0.9)
    assert ax.images[0].get_clim() == (0, 1)
    assert [t.get_text() for t in ax.texts] == ["70%", "10%", "5%", "90%"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["index of 2000", "index of today"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["gold answers\nof 2000", "gold answers\nof today"]
    assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title()


def test_index_tradeoff_has_one_labelled_point_per_kind(ax):
    rows = [{"kind": "flat", "n": 1000, "bytes": 512_000, "recall_at_10": 1.0, "queries_per_s": 900.0},
            {"kind": "hnsw", "n": 1000, "bytes": 780_000, "recall_at_10": 0.99, "queries_per_s": 5000.0},
            {"kind": "ivfpq", "n": 1000, "bytes": 40_000, "recall_at_10": 0.7, "queries_per_s": 7000.0}]
    plot_index_tradeoff(ax, rows)
    assert len(ax.collections) == 3
    assert [c.get_offsets()[0][0] for c in ax.collections] == [512.0, 780.0, 40.0]   # bytes per vector
    assert [t.get_text().split("\n")[0] for t in ax.texts] == ["flat", "hnsw", "ivfpq"]
    assert "7,000 queries/s" in ax.texts[2].get_text()
    assert ax.get_xscale() == "log" and ax.get_ylim() == (0, 1.15) and "1,000" in ax.get_title()
    assert ax.get_xlim()[0] < 40 and ax.get_xlim()[1] > 780                      # every point inside


def test_truncation_mass_is_one_line_on_a_probability_axis(ax):
    plot_truncation_mass(ax, [1, 2, 3], [0.5, 0.8, 0.9], question="Q?")
    lines = [l for l in ax.lines if l.get_linestyle() == "-"]
    assert len(lines) == 1 and list(lines[0].get_ydata()) == [0.5, 0.8, 0.9]
    assert ax.get_ylim() == (0, 1.05) and ax.get_xlim() == (1, 3)
    assert "top-K" in ax.get_ylabel() and "Q?" in ax.get_title()


def test_truncation_log_p_has_a_line_and_an_exact_level_per_variant(ax):
    plot_truncation_log_p(ax, [1, 2], {"sequence": [-2.0, -1.5], "token": [-2.5, -1.0]},
                          {"sequence": -1.2, "token": -0.9})
    solid = [l for l in ax.lines if l.get_linestyle() == "-"]
    dashed = [l for l in ax.lines if l.get_linestyle() == "--"]
    assert len(solid) == 2 and len(dashed) == 2
    assert [d.get_ydata()[0] for d in dashed] == [-1.2, -0.9]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "RAG-Sequence, top-K", "RAG-Sequence, all passages", "RAG-Token, top-K", "RAG-Token, all passages"]
    assert [l.get_color() for l in solid] == [VARIANT_COLORS["sequence"], VARIANT_COLORS["token"]]  # as every view
    assert ax.get_ylabel() == "log p(y | x)"


def test_truncation_draws_both_panels_from_a_truncation():
    full_log_p_z = torch.tensor([[0.6, 0.3, 0.1]]).log()                       # (1, N)
    log_p_yi = torch.tensor([[[0.9], [0.5], [0.1]]]).log()                     # (1, N, T)
    fig, axes = plt.subplots(1, 2)
    plot_truncation(axes, truncation_curve(full_log_p_z, log_p_yi, ks=[1, 2, 3]), question="Q?")
    left, right = axes
    assert list(left.lines[0].get_ydata()) == pytest.approx([0.6, 0.9, 1.0])
    assert right.lines[1].get_ydata()[0] == pytest.approx(float(torch.tensor(0.6 * 0.9 + 0.3 * 0.5 + 0.1 * 0.1).log()))
    plt.close(fig)


def test_truncation_gap_is_the_distance_to_the_exact_marginal_on_a_log_axis_with_k_5_marked(ax):
    plot_truncation_gap(ax, [1, 5, 10], {"sequence": [-2.0, -1.5, -1.2], "token": [-0.5, -0.9, -1.0]},
                        {"sequence": -1.0, "token": -1.0})
    solid = [l for l in ax.lines if l.get_linestyle() == "-"]
    assert [list(l.get_ydata()) for l in solid] == [pytest.approx([1.0, 0.5, 0.2]), pytest.approx([0.5, 0.1, 1e-6])]
    assert [l.get_color() for l in solid] == [VARIANT_COLORS["sequence"], VARIANT_COLORS["token"]]
    marks = [l for l in ax.lines if l.get_linestyle() == ":"]
    assert len(marks) == 1 and list(marks[0].get_xdata()) == [5, 5] and "K = 5" in ax.texts[0].get_text()
    assert ax.get_yscale() == "log" and "exact" in ax.get_ylabel()


def test_truncation_draws_a_third_panel_for_the_gap():
    full_log_p_z = torch.tensor([[0.6, 0.3, 0.1]]).log()                       # (1, N)
    log_p_yi = torch.tensor([[[0.9], [0.5], [0.1]]]).log()                     # (1, N, T)
    fig, axes = plt.subplots(3, 1)
    curve = truncation_curve(full_log_p_z, log_p_yi, ks=[1, 2, 3])
    plot_truncation(axes, curve)
    exact = float(torch.tensor(0.6 * 0.9 + 0.3 * 0.5 + 0.1 * 0.1).log())
    assert axes[2].lines[0].get_ydata()[0] == pytest.approx(abs(float(torch.tensor(0.9).log()) - exact))
    assert axes[2].lines[0].get_ydata()[-1] == pytest.approx(1e-6)         # K = N: the top-K is exact
    plt.close(fig)
