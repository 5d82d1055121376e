"""Views of the memory: the hot-swap table, what index kinds cost, and what the top-K truncation drops.   (notebook 6)

Each `plot_x(ax, data)` draws what ragedu.hotswap, ragedu.index_costs and ragedu.truncation return.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.ticker import FuncFormatter

from ragedu.marginalize import Truncation
from ragedu.viz import VARIANT_COLORS, VARIANT_NAMES


def plot_hot_swap(ax, changed_facts: dict, title: str | None = None):
    """The paper's hot-swap table as a heatmap: rows the edition of the index, columns the edition whose gold
    answers are scored    {index edition: {answer edition: accuracy}}"""
    rows = list(changed_facts)
    cols = list(next(iter(changed_facts.values())))
    table = np.array([[changed_facts[r][c] for c in cols] for r in rows], dtype=float)  # (R, C)
    ax.imshow(table, vmin=0, vmax=1, cmap="Greens")
    ax.set_xticks(np.arange(len(cols)), labels=[f"gold answers\nof {c}" for c in cols])
    ax.set_yticks(np.arange(len(rows)), labels=[f"index of {r}" for r in rows])
    for i in range(len(rows)):
        for j in range(len(cols)):
            ax.text(j, i, f"{table[i, j]:.0%}", ha="center", va="center", fontsize=14,
                    color="white" if table[i, j] > 0.6 else "black")
    ax.set_xlabel("whose facts count as right")
    ax.set_ylabel("memory the model reads")
    ax.set_title(title or "Changed facts: answers follow the memory")
    return ax


def plot_index_tradeoff(ax, rows: Sequence[dict], title: str | None = None):
    """One point per index kind: bytes per vector (log scale) against recall@10 of exact search, labelled with
    queries/s    rows: dicts with kind, n, bytes, recall_at_10, queries_per_s (ragedu.index_costs)"""
    for i, row in enumerate(rows):
        x, y = row["bytes"] / row["n"], row["recall_at_10"]
        ax.scatter([x], [y], s=80, label=row["kind"])
        ax.annotate(f"{row['kind']}\n{row['queries_per_s']:,.0f} queries/s", (x, y), textcoords="offset points",
                    xytext=(8, 4 if i % 2 == 0 else -28))  # above, below, above: neighbours don't overlap
    ax.set_xscale("log")
    per_passage = [row["bytes"] / row["n"] for row in rows]
    ax.set_xlim(min(per_passage) / 2, max(per_passage) * 4)  # room for the labels right of each point
    ax.set_ylim(0, 1.15)
    ax.set_xlabel("bytes per passage in the index (log scale)")
    ax.set_ylabel("recall@10 against exact search")
    ax.set_title(title or f"Index types over {rows[0]['n']:,} vectors: memory against recall")
    return ax


def plot_truncation_mass(ax, ks: Sequence[int], mass: Sequence[float], question: str | None = None):
    """Σ_{z ∈ top-K} p(z|x) under the full-corpus softmax, against K: what the top-K keeps of the posterior."""
    ax.plot(list(ks), np.asarray(mass, dtype=float), marker=".", color="black")
    ax.axhline(1.0, color="grey", linestyle=":", linewidth=1)
    ax.set_ylim(0, 1.05)
    ax.set_xlim(min(ks), max(ks))
    ax.set_xlabel("K, passages kept")
    ax.set_ylabel("posterior mass held by the top-K")
    ax.set_title(f"What the top-K keeps of p(z|x): {question}" if question else "What the top-K keeps of p(z|x)")
    return ax


def plot_truncation_log_p(ax, ks: Sequence[int], log_p_y: dict, exact: dict, question: str | None = None):
    """log p(y|x) under the top-K approximation (solid, one line per variant) against K, beside the exact
    marginal over the whole corpus (dashed)    log_p_y: variant -> (C,) ; exact: variant -> float"""
    for variant, values in log_p_y.items():
        colour, name = VARIANT_COLORS[variant], VARIANT_NAMES[variant]
        ax.plot(list(ks), np.asarray(values, dtype=float), marker=".", color=colour, label=f"{name}, top-K")
        ax.axhline(float(exact[variant]), color=colour, linestyle="--", label=f"{name}, all passages")
    ax.set_xlim(min(ks), max(ks))
    ax.set_xlabel("K, passages kept")
    ax.set_ylabel("log p(y | x)")
    ax.set_title(f"Top-K against the exact marginal: {question}" if question else "Top-K against the exact marginal")
    ax.legend()
    return ax


def plot_truncation_gap(ax, ks: Sequence[int], log_p_y: dict, exact: dict, marked: int = 5):
    """How far the top-K estimate of log p(y|x) is from the exact marginal, |log p_top-K − log p_all| in nats on
    a log axis, one line per variant; K = `marked` (what training and `ragedu ask` use) drawn as a line."""
    for variant, values in log_p_y.items():
        gap = np.abs(np.asarray(values, dtype=float) - float(exact[variant]))
        ax.plot(list(ks), np.maximum(gap, 1e-6), marker=".", color=VARIANT_COLORS[variant], label=VARIANT_NAMES[variant])
    ax.set_yscale("log")
    plain = FuncFormatter(lambda value, _: f"{value:g}" if f"{value:.0e}"[0] in "125" else "")  # 0.2, 0.5, 1, 2
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(plain)
    if min(ks) <= marked <= max(ks):
        ax.axvline(marked, color="grey", linestyle=":", linewidth=1.5)
        ax.annotate(f"K = {marked}: training and ragedu ask", (marked, 1), xycoords=("data", "axes fraction"),
                    xytext=(6, -16), textcoords="offset points", color="0.3")
    ax.set_xlim(min(ks), max(ks))
    ax.set_xlabel("K, passages kept")
    ax.set_ylabel("|top-K − exact| log p(y|x), nats")
    ax.set_title("What the top-K truncation gets wrong: its gap to the exact marginal")
    ax.legend()
    return ax


def plot_truncation(axes, truncation: Truncation, question: str | None = None, b: int = 0, marked: int = 5):
    """Question b of a Truncation (ragedu.truncation): the posterior mass the top-K keeps, log p(y|x) under top-K
    beside the exact marginal, and (with a third Axes) the gap between the two with K = `marked` drawn
    axes: two or three Axes"""
    log_p_y = {v: lp[b] for v, lp in truncation.log_p_y.items()}
    exact = {v: e[b] for v, e in truncation.exact.items()}
    plot_truncation_mass(axes[0], truncation.ks, truncation.mass[b], question)
    plot_truncation_log_p(axes[1], truncation.ks, log_p_y, exact, question)
    if len(axes) > 2:
        plot_truncation_gap(axes[2], truncation.ks, log_p_y, exact, marked)
    return axes
