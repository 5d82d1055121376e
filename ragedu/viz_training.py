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



def plot_score_gradient(ax, g, title: str | None = None):
    """Which passages one gradient step on −log p(y|x) pushes up and down: bars of −∂/∂s(z), beside the prior p(z|x)
    and the posterior p(z|x,y) that make it (`ragedu.gradients.ScoreGradient`)."""
    push = np.asarray(g.push, dtype=float)
    rows = np.arange(len(push))
    ax.barh(rows, push, color=["tab:green" if v > 0 else "tab:red" for v in push])
    ax.set_yticks(rows, labels=[f"{t}  ({p:.2f} → {q:.2f})" for t, p, q in zip(g.titles, g.p_z, g.p_z_given_y)])
    ax.invert_yaxis()
    ax.axvline(0, color="black", linewidth=0.8)
    lim = max(abs(push).max(), 1e-3) * 1.15
    ax.set_xlim(-lim, lim)
    ax.set_xlabel("−∂(−log p(y|x)) / ∂s(z): green = a step raises s(z), red = lowers it")
    ax.set_ylabel("passage (p(z|x) → p(z|x,y))")
    ax.set_title(title or f"One training step on: {g.question} → {g.answer}")
    return ax


def plot_retrieval_collapse(axes, run, healthy, healthy_label: str = "shipped retriever"):
    """Two panels for a short stage-3 run from a bad start (`ragedu.collapse.CollapseRun`) beside a healthy retriever
    (a `Monitor`): the mean entropy H(p(z|x)) along the run; and, rank by rank, how many questions retrieve each
    passage (most retrieved first), at the run's start and end and for the healthy retriever."""
    left, right = axes
    left.plot(run.steps, [m.entropy for m in run.monitors], "o-", color="tab:red", label="random q(x) start")
    left.axhline(healthy.entropy, color=NEUTRAL_COLOR, linestyle="--", label=healthy_label)
    left.set_ylim(0, None)
    left.set_xlabel("RAG fine-tuning step")
    left.set_ylabel("mean H(p(z|x)) over the top K, nats")
    left.set_title("Entropy of p(z|x)")
    left.legend(loc="lower left")
    for m, style, label in ((run.monitors[0], ":", "random start, step 0"),
                            (run.monitors[-1], "-", f"random start, step {run.steps[-1]}"),
                            (healthy, "-", healthy_label)):
        ranked = np.sort(np.asarray(m.counts))[::-1]
        ranked = ranked[ranked > 0]
        color = NEUTRAL_COLOR if m is healthy else "tab:red"   # the retriever's colour: neither model's blue
        right.step(np.arange(1, len(ranked) + 1), ranked, where="mid", linestyle=style, color=color, linewidth=2,
                   label=f"{label}: {m.distinct} passages")
    right.set_xscale("log")
    right.set_ylim(0, 1.5 * max(int(m.counts.max()) for m in (run.monitors[0], run.monitors[-1], healthy)))  # room for the key
    right.set_xlabel("passages, most retrieved first (rank)")
    right.set_ylabel("questions retrieving it")
    right.set_title("How often each passage is retrieved")
    right.legend(loc="upper right")
    return axes


def plot_vector_picture(ax, pic):
    """d(z) as grey dots (gold passages named), each question's q(x) before (hollow) and after (filled)
    fine-tuning, an arrow between them (`ragedu.projection.VectorPicture`)."""
    d = np.asarray(pic.d_z, dtype=float)
    ax.scatter(d[:, 0], d[:, 1], color="0.7", s=25, label="d(z), passages near the questions")
    for i in pic.gold:
        ax.scatter(*d[i], color="black", marker="D", s=40)
        ax.annotate(pic.titles[i], d[i], xytext=(4, 4), textcoords="offset points")
    before, after = np.asarray(pic.q_before, dtype=float), np.asarray(pic.q_after, dtype=float)
    ax.scatter(before[:, 0], before[:, 1], facecolors="none", edgecolors="tab:purple", s=60,
               label="q(x) before: stage-1 encoder")
    ax.scatter(after[:, 0], after[:, 1], color="tab:purple", s=60, label="q(x) after RAG fine-tuning")
    for b, a, i in zip(before, after, pic.gold):
        ax.annotate("", xy=a, xytext=b, arrowprops=dict(arrowstyle="->", color="tab:purple", linewidth=1.2))
        ax.plot(*zip(a, d[i]), color="0.5", linestyle=":", linewidth=1)   # to its gold passage
    ax.scatter([], [], color="black", marker="D", s=40, label="gold passage d(z)")
    ax.set_xlabel("first principal component")
    ax.set_ylabel("second principal component")
    ax.plot([], [], color="0.5", linestyle=":", label="q(x) after ··· its gold passage")
    ax.set_title(f"q(x) and d(z) in 2-D (PCA of each kind centred, {pic.explained:.0%} of the variance)")
    ax.legend(loc="best", fontsize=12)
    return ax
