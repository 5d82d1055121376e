"""The explorer's Figure 2 (ragedu.viz_explorer): what it draws from plain data, no model."""
import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.patches import Rectangle

from ragedu.viz import VARIANT_COLORS
from ragedu.viz_explorer import leaning, plot_figure2, with_prior

matplotlib.use("Agg")

P_Z = [0.6, 0.3, 0.1]
TOKENS = ["Port", "of", "Spain", "</s>"]
TITLES = ["Port of Spain", "Port Moresby", "Spain"]
POSTERIORS = {"token": np.array([[0.9, 0.1, 0.8, 0.5], [0.05, 0.8, 0.1, 0.3], [0.05, 0.1, 0.1, 0.2]]),  # (K, T)
              "sequence": np.array([[0.9, 0.7, 0.9, 0.9], [0.05, 0.25, 0.05, 0.05], [0.05, 0.05, 0.05, 0.05]])}


def test_the_prior_is_the_first_column_and_each_token_leans_where_its_column_peaks():
    shown = with_prior(P_Z, POSTERIORS["token"])
    assert shown.shape == (3, 5)
    np.testing.assert_array_equal(shown[:, 0], P_Z)
    np.testing.assert_array_equal(shown[:, 1:], POSTERIORS["token"])
    assert leaning(POSTERIORS["token"]) == [0, 1, 0, 0]
    with pytest.raises(AssertionError, match=r"posterior must be \(K, T\) with K = 2"):
        with_prior([0.5, 0.5], POSTERIORS["token"])


def test_figure2_draws_both_models_side_by_side_on_one_answer():
    fig = plt.figure(figsize=(9, 4.5))
    fig.subplots_adjust(left=0.22, bottom=0.3, top=0.75)
    token, sequence = plot_figure2(fig.subplots(1, 2, sharey=True), P_Z, POSTERIORS, TOKENS, TITLES, "token")
    for ax, variant in ((token, "token"), (sequence, "sequence")):
        np.testing.assert_array_equal(ax.images[0].get_array(), with_prior(P_Z, POSTERIORS[variant]))
        assert ax.images[0].get_clim() == (0, 1)
        assert [t.get_text() for t in ax.get_xticklabels()] == ["p(z|x)", *TOKENS]
        frames = [p for p in ax.patches if isinstance(p, Rectangle)]
        assert [(round(f.get_x() + 0.5), round(f.get_y() + 0.5)) for f in frames] == \
               [(t + 1, z) for t, z in enumerate(leaning(POSTERIORS[variant]))]     # (column, row) of each peak
        assert all(matplotlib.colors.same_color(f.get_edgecolor(), VARIANT_COLORS[variant]) for f in frames)
    assert "RAG-Token" in token.get_title() and "y_i, y<i" in token.get_title()
    assert "RAG-Sequence" in sequence.get_title() and "y≤i" in sequence.get_title()
    fig.canvas.draw()
    assert [t.get_text() for t in token.get_yticklabels()] == TITLES
    assert not any(t.get_visible() and t.get_text() for t in sequence.get_yticklabels())  # rows labelled once
    assert "RAG-Token's answer" in fig._suptitle.get_text()
    plt.close(fig)


def test_the_matrix_table_prints_and_colours_each_cell_by_its_probability_and_marks_its_source():
    import re

    import torch
    from matplotlib.colors import to_hex

    from ragedu.decoding import sequence_trace
    from ragedu.viz_decoding import HYPOTHESIS_CMAP
    from ragedu.viz_explorer import matrix_html

    log_p = torch.tensor([[0.5, 0.3], [0.30, 1e-3], [0.2, 0.6]]).log()      # (H, K) p_θ(y|x,z)
    found = torch.tensor([[True, False], [True, False], [False, True]])
    titles = ["Port of Spain", "Port Moresby"]
    for mode in ("thorough", "fast"):
        trace = sequence_trace(mode, ["Port of Spain", "Port Moresby", "Spain"], torch.tensor([0.7, 0.3]).log(),
                               log_p, found)
        table = matrix_html(trace, titles, rows=[0, 1])                     # the third hypothesis left out
        cells = [(mark, (re.search(r"background:(#[0-9a-f]{6})", style) or [None, ""])[1], number) for mark, style, number
                 in re.findall(r"<td class='([\w-]+)' style='([^']*)'>([^<]*)</td>", table)]
        missed = "rescored" if mode == "thorough" else "assumed-zero"
        assert [c[0] for c in cells] == ["beam", missed, "beam", missed] and table.count("<tr>") == 3
        shown = np.exp(trace.log_p_y_given_z.numpy().astype(float))[:2].ravel()   # the numbers the table prints
        np.testing.assert_allclose(shown, [0.5, 0.3, 0.30, 1e-3], rtol=1e-5)
        for (mark, colour, number), p in zip(cells, shown):
            if mark == "assumed-zero":
                assert number == "0?" and not colour               # hatched grey, no number
            else:
                assert colour == to_hex(matplotlib.colormaps[HYPOTHESIS_CMAP](p))   # 0.30 and 0.50 look apart
                assert number == (f"{p:.2f}" if p >= 0.01 else f"{p:.0e}")
        p_y = trace.log_p_y.exp().tolist()
        assert f"{p_y[0]:.3f}</td>" in table and "★" in table and "Spain'" not in table.split("<tr>")[-1]
        assert all(f"p(z|x)</i>={q:.2f}" in table for q in (0.7, 0.3)) and f"({mode})" in table


def test_the_explorers_figure2_table_colours_each_cell_by_its_probability_and_frames_each_tokens_peak():
    import re

    from matplotlib.colors import to_hex

    from ragedu.viz_explorer import FIGURE2_CMAP, cell_width, figure2_html

    table = figure2_html(P_Z, POSTERIORS, TOKENS, TITLES, ["text 1", "text 2", "text 3"], "token")
    panels = {v: table[table.index(f"ragedu-figure2-{v}"):] for v in ("token", "sequence")}
    panels["token"] = panels["token"][:panels["token"].index("ragedu-figure2-sequence")]
    for variant, panel in panels.items():
        heads = re.findall(r"rotate\(180deg\)[^>]*>([^<]*)</div>", panel)
        assert heads == ["p(z|x)", *TOKENS[:3], "&lt;/s&gt;"]
        cells = re.findall(r"<td class='(\w+)'[^>]*><div style='[^']*background:(#[0-9a-f]{6});([^']*)'>", panel)
        shown = with_prior(P_Z, POSTERIORS[variant])                               # (K, 1 + T), row by row
        assert [c[1] for c in cells] == [to_hex(matplotlib.colormaps[FIGURE2_CMAP](p)) for p in shown.ravel()]
        peaks = [(i // shown.shape[1], i % shown.shape[1]) for i, c in enumerate(cells) if c[0] == "peak"]
        assert peaks == sorted((z, t + 1) for t, z in enumerate(leaning(POSTERIORS[variant])))   # (row, column)
        assert all(to_hex(VARIANT_COLORS[variant]) in c[2] for c in cells if c[0] == "peak")
        assert all(title in panel for title in TITLES) == (variant == "token")   # rows labelled once, on the left
    assert "RAG-Token's answer" in table and "title='Port Moresby: text 2'" in table   # the passage on hover
    assert cell_width(1 + 4) == 32 and cell_width(1 + 40) == 20                  # a long answer: narrower, wraps
