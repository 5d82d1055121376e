"""Views of training: the loss of every stage, and what training did to the retriever.   (notebook 5)

The loss log is read by ragedu.checkpoint.read_train_log; these functions only draw.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

import ragedu.viz  # noqa: F401  the course's style (viz.COURSE_STYLE), also for views of this module alone
from ragedu.variants import NEUTRAL_COLOR


def moving_average(values, window: int) -> np.ndarray:
    """The mean of the last `window` values at each point (fewer at the start): same length as `values`."""
    values = np.asarray(values, dtype=float)
    sums = np.cumsum(np.insert(values, 0, 0.0))
    counts = np.minimum(np.arange(1, len(values) + 1), window)
    return (sums[1:] - sums[np.arange(1, len(values) + 1) - counts]) / counts


STAGE_TITLES = {"denoise": "0 · denoise (BART pre-training)", "retriever": "1 · retriever (DPR)",
                "reader": "2 · reader warm-up", "rag": "3 · RAG fine-tuning: −log p(y|x)",
                "closed_book": "closed-book baseline"}


def plot_loss_curves(axes, curves: dict[str, tuple], window: int = 25):
    """One panel per training stage: the loss at each step (thin) and its moving average (thick).
    `axes` is a grid (or row) of at least one ax per stage, e.g. plt.subplots(2, 3); panels left over are hidden.
    `curves` is what read_train_log returns. Every panel has its own y scale and label: the stages' losses differ
    (a denoising loss per token, a retrieval loss per question)."""
    axes = list(np.ravel(axes))
    for ax, (stage, (steps, losses)) in zip(axes, curves.items()):
        ax.plot(steps, losses, color=NEUTRAL_COLOR, alpha=0.3, linewidth=0.8, label="each step")
        ax.plot(steps, moving_average(losses, window), color=NEUTRAL_COLOR, linewidth=2.5,
                label=f"mean of last {window}")
        ax.set_title(STAGE_TITLES.get(stage, stage))
        ax.set_xlabel("step")
        ax.set_ylabel("training loss")
        ax.set_ylim(0, None)
    for ax in axes[len(curves):]:
        ax.set_visible(False)
    axes[0].legend(loc="best")
    return axes


def plot_posterior_change(ax, p_before, p_after, titles: Sequence[str], question: str | None = None):
    """p(z|x) for the same passages before and after fine-tuning the query encoder, as paired bars."""
    p_before, p_after = np.asarray(p_before, dtype=float), np.asarray(p_after, dtype=float)
    rows = np.arange(len(titles))
    ax.barh(rows - 0.2, p_before, height=0.4, color="0.6", label="before: stage-1 encoder")
    ax.barh(rows + 0.2, p_after, height=0.4, color=NEUTRAL_COLOR, label="after: RAG fine-tuned q(x)")
    ax.set_yticks(rows, labels=list(titles))
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("p(z | x) over the whole corpus")
    ax.set_title(f"Fine-tuning the query encoder: {question}" if question else "p(z|x) before and after fine-tuning")
    ax.legend(loc="lower right")
    return ax

