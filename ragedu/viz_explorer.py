"""The explorer's view of the paper's Figure 2: both models' posteriors over passages on one answer, each after a
first column for the prior p(z|x).   (notebook 9)

Dims: K retrieved passages · T answer tokens

    RAG-Token      p(z | x, y_i, y<i) ∝ p(z|x) p_θ(y_i|x,z,y<i)              each token chooses afresh
    RAG-Sequence   p(z | x, y≤i)      ∝ p(z|x) Π_{j≤i} p_θ(y_j|x,z,y<j)      the evidence accumulates
Before any token both are the prior p(z|x): the first column of each panel. Draws plain data; runs no model.
`plot_figure2` draws it with matplotlib (notebook 3, `explore` outside Jupyter); `figure2_html` draws the same
for the explorer's widget, as a table that redraws in a millisecond.

Also RAG-Sequence's hypothesis × passage matrix as an HTML table (`matrix_html`): what
viz_decoding.plot_hypothesis_matrix draws, on the same colour scale and with the same marks, redrawn in about a
millisecond where the figure takes a fifth of a second.
"""
from __future__ import annotations

import html
from collections.abc import Sequence

import matplotlib
import numpy as np
from matplotlib.colors import to_hex

import ragedu.viz  # noqa: F401  the course's style (viz.COURSE_STYLE)
from ragedu.traces import RagSequenceTrace
from ragedu.viz import VARIANT_COLORS, VARIANT_NAMES
from ragedu.viz_decoding import HYPOTHESIS_CMAP, HYPOTHESIS_MARKS, probability_label

PRIOR_LABEL = "p(z|x)"
FIGURE2_CMAP = "Blues"   # both drawings of Figure 2: plot_figure2 and figure2_html
POSTERIOR_TITLES = {"token": "each token chooses: p(z | x, y_i, y<i)",
                    "sequence": "evidence so far: p(z | x, y≤i)"}


def with_prior(p_z: Sequence[float], posterior) -> np.ndarray:
    """The prior as column 0, then the posterior of each token    (K,), (K, T) -> (K, 1 + T)"""
    p_z, posterior = np.asarray(p_z, dtype=float), np.asarray(posterior, dtype=float)
    assert posterior.ndim == 2 and posterior.shape[0] == len(p_z), \
        f"posterior must be (K, T) with K = {len(p_z)}, got {posterior.shape}"
    return np.concatenate([p_z[:, None], posterior], axis=1)


def leaning(posterior) -> list[int]:
    """The passage each token leans on most, argmax_z of its column    (K, T) -> T passage rows"""
    return np.asarray(posterior).argmax(axis=0).tolist()


def plot_figure2(axes, p_z: Sequence[float], posteriors: dict[str, np.ndarray], tokens: Sequence[str],
                 titles: Sequence[str], answer_of: str | None = None):
    """The paper's Figure 2 for both models, side by side on the same answer: left RAG-Token's per-token
    posterior, right RAG-Sequence's accumulated posterior, each with p(z|x) as its first column (left of a
    white line) and the darkest cell of each token's column framed in its model's colour.
    axes: two matplotlib axes (the right one shares the left one's rows); p_z (K,); posteriors: variant ->
    (K, T); tokens: T labels; titles: K passage titles; answer_of: whose answer the tokens are."""
    image = None
    for ax, variant in zip(axes, ("token", "sequence")):
        shown = with_prior(p_z, posteriors[variant])                              # (K, 1 + T)
        K, columns = shown.shape
        image = ax.imshow(shown, vmin=0, vmax=1, cmap=FIGURE2_CMAP, aspect="auto")
        ax.axvline(0.5, color="white", linewidth=4)                               # prior | tokens
        for t, z in enumerate(leaning(posteriors[variant])):
            ax.add_patch(_frame(t + 1, z, VARIANT_COLORS[variant]))
        ax.set_xticks(np.arange(columns), labels=[PRIOR_LABEL, *tokens], rotation=90)
        ax.get_xticklabels()[0].set_fontweight("bold")
        ax.set_yticks(np.arange(K), labels=list(titles))
        ax.tick_params(axis="y", labelleft=variant == "token")    # the right panel shares the left one's rows
        ax.set_xlabel("prior, then token y_i")
        ax.set_title(f"{VARIANT_NAMES[variant]}\n{POSTERIOR_TITLES[variant]}", color=VARIANT_COLORS[variant])
    axes[0].set_ylabel("passage z")
    colorbar = axes[0].figure.colorbar(image, ax=list(axes), fraction=0.04, pad=0.02)
    colorbar.set_label("probability")
    if answer_of:
        axes[0].figure.suptitle(f"Which passage each token of {VARIANT_NAMES[answer_of]}'s answer leans on")
    return axes


FIGURE2_PANEL_PX = 440   # the heatmap part of a panel: two fit side by side in a notebook, with the titles


def cell_width(columns: int) -> int:
    """Pixels per heatmap column: 32 for a short answer, narrower for a long one down to 20, where a vertical
    16 px (12 pt) token label still fits; beyond that the two panels wrap, one above the other."""
    return max(20, min(32, FIGURE2_PANEL_PX // columns))


def _colour_bar(cmap: str) -> str:
    """The colour map from 0 to 1 as a 160 px bar, for a table's legend."""
    stops = ", ".join(f"{to_hex(c)} {100 * q:.0f}%" for q, c in zip(np.linspace(0, 1, 6),
                                                                     matplotlib.colormaps[cmap](np.linspace(0, 1, 6))))
    return (f"<span style='display:inline-block;width:160px;height:14px;vertical-align:middle;"
            f"background:linear-gradient(to right,{stops})'></span>")


def _panel_html(shown: np.ndarray, peaks: list[int], variant: str, header: list[str],
                titles: Sequence[str] | None, texts: Sequence[str]) -> str:
    """One panel of `figure2_html`: a (K, 1 + T) heatmap as a table, rows labelled if `titles` is given."""
    color = to_hex(VARIANT_COLORS[variant])
    colors = matplotlib.colormaps[FIGURE2_CMAP](shown)                          # (K, 1 + T, 4) RGBA
    width = cell_width(len(header))
    cell = f"width:{width}px;min-width:{width}px;height:26px;padding:0;"
    heads = "".join(
        f"<th style='{cell}height:auto;vertical-align:bottom;font-weight:{'bold' if c == 0 else 'normal'};"
        f"{'border-right:4px solid #fff;' if c == 0 else ''}'><div style='writing-mode:vertical-rl;"
        f"transform:rotate(180deg);white-space:nowrap;margin:0 auto'>{html.escape(label)}</div></th>"
        for c, label in enumerate(header))
    rows = []
    for z, row in enumerate(shown):
        label = ""
        if titles is not None:
            title = titles[z]
            label = (f"<th class='passage' title='{html.escape(title + ': ' + texts[z], quote=True)}' "
                     f"style='text-align:right;font-weight:normal;padding:0 8px 0 0;white-space:nowrap'>"
                     f"{html.escape(title if len(title) <= 24 else title[:23] + '…')}</th>")
        cells = []
        for c, p in enumerate(row):
            background = to_hex(colors[z, c])
            framed = c > 0 and peaks[c - 1] == z
            what = PRIOR_LABEL if c == 0 else f"p(z|…) at {header[c]!r}"
            # the frame on an inner div (a td's own border would shift the grid), with a white ring inside it
            # so that RAG-Sequence's blue reads on a dark blue cell
            frame = f"border:3px solid {color};box-shadow:inset 0 0 0 2px #fff;" if framed else ""
            cells.append(f"<td class='{'peak' if framed else 'cell'}' title='{html.escape(what, quote=True)} = {p:.3f}' "
                         f"style='padding:0;{'border-right:4px solid #fff;' if c == 0 else ''}'>"
                         f"<div style='{cell}box-sizing:border-box;background:{background};{frame}'></div></td>")
        rows.append(f"<tr>{label}{''.join(cells)}</tr>")
    corner = "<th style='text-align:right;vertical-align:bottom;padding:0 8px 4px 0'>passage z</th>" if titles else ""
    return (f"<div class='ragedu-figure2-{variant}'><div style='color:{color};margin-bottom:4px'>"
            f"<b>{VARIANT_NAMES[variant]}</b><br>{html.escape(POSTERIOR_TITLES[variant])}</div>"
            f"<table style='border-collapse:collapse'><tr>{corner}{heads}</tr>{''.join(rows)}</table>"
            f"<div style='text-align:center;margin-top:4px'>prior, then token y_i</div></div>")


def figure2_html(p_z: Sequence[float], posteriors: dict[str, np.ndarray], tokens: Sequence[str],
                 titles: Sequence[str], texts: Sequence[str], answer_of: str | None = None) -> str:
    """`plot_figure2` as HTML, for the explorer: the same two heatmaps on the same 0–1 scale (the prior first,
    left of a white line; each token's likeliest passage framed in its model's colour), drawn in a millisecond
    where the PNG takes 0.1–0.2 s, sharp at any zoom. Each cell's number and each passage's text on hover.
    p_z (K,); posteriors: variant -> (K, T); tokens: T labels; titles, texts: K passages."""
    header = [PRIOR_LABEL, *tokens]
    panels = "".join(_panel_html(with_prior(p_z, posteriors[v]), leaning(posteriors[v]), v, header,
                                 titles if v == "token" else None, texts)      # rows labelled once, on the left
                     for v in ("token", "sequence"))
    legend = (f"<div style='margin-top:6px'>probability: 0 {_colour_bar(FIGURE2_CMAP)} 1"
              f"&emsp;framed: the passage the token leans on most</div>")
    title = (f"<b>Which passage each token of {VARIANT_NAMES[answer_of]}'s answer leans on</b>" if answer_of else "")
    return (f"<div class='ragedu-figure2-table' style='font-size:16px'>{title}"
            f"<div style='display:flex;flex-wrap:wrap;gap:28px;align-items:flex-start;margin-top:6px'>{panels}</div>{legend}</div>")


def _frame(column: int, row: int, color: str):
    from matplotlib.patches import Rectangle

    return Rectangle((column - 0.5, row - 0.5), 1, 1, fill=False, edgecolor=color, linewidth=2)


# Frames by where a cell's number came from; a beam's frame is black with a white ring inside, seen on any colour
_FRAMES = {"beam": "3px solid #000;box-shadow:inset 0 0 0 2px #fff", "rescored": "2px dashed {ink}",
           "assumed zero": "1px solid #999"}   # ink: the colour of the cell's text
_HATCH = "repeating-linear-gradient(45deg,#d9d9d9 0 6px,#bfbfbf 6px 8px)"   # fast decoding's assumed 0


def _cell_color(p: float) -> tuple[str, str]:
    """Background on the probability scale, and a text colour that reads on it."""
    return to_hex(matplotlib.colormaps[HYPOTHESIS_CMAP](p)), "#fff" if p < 0.5 else "#000"   # as the figure's


def matrix_html(trace: RagSequenceTrace, titles: Sequence[str], rows: Sequence[int]) -> str:
    """RAG-Sequence's hypothesis × passage matrix as a table: one row per hypothesis y in `rows` (e.g.
    `trace.best_of_both(3)`), one column per passage z with its p(z|x), each cell p_θ(y|x,z) coloured on the
    0–1 scale of the printed number and framed by where it came from (solid: z's own beam; dashed: rescored by
    thorough decoding's extra pass; grey and hatched, '0?': assumed 0 by fast decoding), then p(y|x) as the
    trace's mode computes it, the best starred. Full texts on hover."""
    p = np.exp(np.asarray(trace.log_p_y_given_z, dtype=float))            # (H, K)
    p_y = np.exp(np.asarray(trace.log_p_y, dtype=float))                   # (H,)
    p_z = np.exp(np.asarray(trace.log_p_z, dtype=float))                   # (K,)
    best = int(np.argmax(p_y))
    cell = "padding:4px 6px;text-align:center;min-width:48px;"
    head = "".join(f"<th title='{html.escape(t, quote=True)}' style='{cell}max-width:96px;font-weight:normal'>"
                   f"{html.escape(t if len(t) <= 22 else t[:21] + '…')}<br><i>p(z|x)</i>={q:.2f}</th>"
                   for t, q in zip(titles, p_z))
    body = []
    for h in rows:
        cells = []
        for k, mark in enumerate(trace.source[h]):
            if mark == "assumed zero":
                cells.append(f"<td class='assumed-zero' style='{cell}background:{_HATCH};color:#444;"
                             f"border:{_FRAMES[mark]}'>0?</td>")
                continue
            background, ink = _cell_color(p[h, k])
            cells.append(f"<td class='{mark}' style='{cell}background:{background};color:{ink};"
                         f"border:{_FRAMES[mark].format(ink=ink)}'>{probability_label(p[h, k])}</td>")
        text = trace.texts[h]
        label = ("★ " if h == best else "") + html.escape(repr(text if len(text) <= 34 else text[:33] + "…"))
        body.append(f"<tr><th title='{html.escape(text, quote=True)}' style='text-align:left;padding-right:8px;"
                    f"font-weight:normal'>{label}</th>{''.join(cells)}<td style='{cell}'>{p_y[h]:.3f}</td></tr>")
    legend = (f"<div style='display:flex;gap:18px;align-items:center;margin-top:6px'>"
              f"<span>p_θ(y|x,z): 0 {_colour_bar(HYPOTHESIS_CMAP)} 1</span>"
              + "".join(f"<span><span style='display:inline-block;width:14px;height:14px;vertical-align:middle;"
                        f"border:{_FRAMES[m].format(ink='#000')};{'background:' + _HATCH if m == 'assumed zero' else ''}'></span> "
                        f"{HYPOTHESIS_MARKS[m]}</span>" for m in HYPOTHESIS_MARKS
                        if any(m in trace.source[h] for h in rows)) + "</div>")
    return (f"<div class='ragedu-matrix' style='font-size:16px'><b>RAG-Sequence, {trace.mode} decoding: "
            f"p_θ(y | x, z) for each hypothesis y (rows) and passage z (columns)</b>"
            f"<table style='border-collapse:separate;border-spacing:3px'><tr><th style='text-align:left'>"
            f"hypothesis y (union of the beams)</th>{head}<th style='{cell}'>p(y|x)<br>({trace.mode})</th></tr>"
            + "".join(body) + f"</table>{legend}</div>")
