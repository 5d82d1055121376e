"""The explorer's view of the paper's Figure 2: both models' posteriors over passages on one answer, each after a
first column for the prior p(z|x).   (notebook 9)

Dims: K retrieved passages · T answer tokens

    RAG-Token      p(z | x, y_i, y<i) ∝ p(z|x) p_θ(y_i|x,z,y<i)              each token chooses afresh
    RAG-Sequence   p(z | x, y≤i)      ∝ p(z|x) Π_{j≤i} p_θ(y_j|x,z,y<j)      the evidence accumulates
Before any token both are the prior p(z|x): the first column of each panel. Draws plain data; runs no model.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

import ragedu.viz  # noqa: F401  the course's style (viz.COURSE_STYLE)
from ragedu.viz import VARIANT_COLORS, VARIANT_NAMES

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
