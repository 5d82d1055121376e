"""Views: each `plot_x(ax, data)` draws plain data the library returned; none runs a model.   (all notebooks)

Sized for a classroom projector: passage titles as labels, probabilities on fixed 0–1 axes.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def plot_doc_posterior(ax, p_z: Sequence[float], titles: Sequence[str], question: str | None = None):
    """Horizontal bars of p(z|x) over the retrieved passages, best at the top."""
    p_z = np.asarray(p_z, dtype=float)
    rows = np.arange(len(p_z))
    ax.barh(rows, p_z, color="tab:blue")
    ax.set_yticks(rows, labels=list(titles))
    ax.invert_yaxis()  # rank 1 at the top
    ax.set_xlim(0, 1)
    ax.set_xlabel("p(z | x): how much the retriever trusts each passage")
    ax.set_title(f"Retrieved passages for: {question}" if question else "Retrieved passages")
    for row, p in zip(rows, p_z):
        ax.text(min(p + 0.01, 0.9), row, f"{p:.2f}", va="center")
    return ax


def plot_token_posterior(ax, posterior, tokens: Sequence[str], titles: Sequence[str], title: str | None = None):
    """Heatmap of the posterior over passages for each target token (the paper's Figure 2)    (K, T)"""
    posterior = np.asarray(posterior, dtype=float)
    image = ax.imshow(posterior, vmin=0, vmax=1, cmap="Blues", aspect="auto")
    ax.set_xticks(np.arange(len(tokens)), labels=list(tokens), rotation=60, ha="right")
    ax.set_yticks(np.arange(len(titles)), labels=list(titles))
    ax.set_xlabel("target token y_i")
    ax.set_ylabel("passage z")
    ax.set_title(title or "p(z | x, y_i, y<i): which passage each token leans on")
    ax.figure.colorbar(image, ax=ax, label="posterior probability")
    return ax
