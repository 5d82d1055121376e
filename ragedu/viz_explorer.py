"""The explorer's view of the paper's Figure 2: both models' posteriors over passages on one answer, each after a
first column for the prior p(z|x).   (notebook 9)

Dims: K retrieved passages · T answer tokens

    RAG-Token      p(z | x, y_i, y<i) ∝ p(z|x) p_θ(y_i|x,z,y<i)              each token chooses afresh
    RAG-Sequence   p(z | x, y≤i)      ∝ p(z|x) Π_{j≤i} p_θ(y_j|x,z,y<j)      the evidence accumulates
Before any token both are the prior p(z|x): the first column of each panel. Draws plain data; runs no model.

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
        image = ax.imshow(shown, vmin=0, vmax=1, cmap="Blues", aspect="auto")
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
    scale = ", ".join(f"{_cell_color(q)[0]} {100 * q:.0f}%" for q in np.linspace(0, 1, 6))
    legend = (f"<div style='display:flex;gap:18px;align-items:center;margin-top:6px'>"
              f"<span>p_θ(y|x,z): 0 <span style='display:inline-block;width:160px;height:14px;vertical-align:middle;"
              f"background:linear-gradient(to right,{scale})'></span> 1</span>"
              + "".join(f"<span><span style='display:inline-block;width:14px;height:14px;vertical-align:middle;"
                        f"border:{_FRAMES[m].format(ink='#000')};{'background:' + _HATCH if m == 'assumed zero' else ''}'></span> "
                        f"{HYPOTHESIS_MARKS[m]}</span>" for m in HYPOTHESIS_MARKS
                        if any(m in trace.source[h] for h in rows)) + "</div>")
    return (f"<div class='ragedu-matrix' style='font-size:16px'><b>RAG-Sequence, {trace.mode} decoding: "
            f"p_θ(y | x, z) for each hypothesis y (rows) and passage z (columns)</b>"
            f"<table style='border-collapse:separate;border-spacing:3px'><tr><th style='text-align:left'>"
            f"hypothesis y (union of the beams)</th>{head}<th style='{cell}'>p(y|x)<br>({trace.mode})</th></tr>"
            + "".join(body) + f"</table>{legend}</div>")
