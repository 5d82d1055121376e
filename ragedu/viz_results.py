"""Views of the evaluation: exact match per relation, and our figures beside the paper's.   (notebook 7)
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ragedu.viz import VARIANT_COLORS, VARIANT_NAMES


def plot_eval_table(ax, by_relation: dict[str, dict[str, float]], counts: dict[str, int] | None = None,
                    title: str | None = None):
    """Grouped bars of exact match per relation, one bar per system ('sequence', 'token', 'closed_book');
    with `counts` (relation -> questions) each relation's label says how many questions its bars rest on."""
    relations = list(by_relation)
    systems = [s for s in VARIANT_NAMES if any(s in by_relation[r] for r in relations)]
    width = 0.8 / len(systems)
    x = np.arange(len(relations))
    for j, system in enumerate(systems):
        values = [by_relation[r].get(system, np.nan) for r in relations]
        bars = ax.bar(x + (j - (len(systems) - 1) / 2) * width, values, width, color=VARIANT_COLORS[system],
                      label=VARIANT_NAMES[system])
        ax.bar_label(bars, fmt="%.2f")
    labels = [r.replace("_", " → ") if r.startswith("city") else r for r in relations]
    if counts is not None:
        labels = [f"{label}\n({counts.get(r, 0)} question{'' if counts.get(r, 0) == 1 else 's'})"
                  for label, r in zip(labels, relations)]
    ax.set_xticks(x, labels=labels)
    ax.set_ylim(0, 1.25)  # room for the legend above the bars
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_ylabel("exact match")
    ax.set_title(title or "Exact match per relation (entities never seen in training)")
    ax.legend(loc="upper left", ncol=len(systems))
    return ax


def plot_results_vs_paper(ax, rows: Sequence[str], ours: Sequence[dict], paper: Sequence[dict],
                          paper_names: dict[str, str] | None = None, title: str | None = None):
    """Our figures (solid) beside the paper's (hatched) for each row, e.g. a task; values in [0, 1].
    ours[i], paper[i]: system -> value for rows[i]; a system missing from a row draws no bar.
    paper_names: system -> legend name of the paper's bars, where the paper's system is another model."""
    systems = [s for s in VARIANT_NAMES if any(s in d for d in [*ours, *paper])]
    width = 0.8 / (2 * len(systems))
    x = np.arange(len(rows))
    for j, system in enumerate(systems):
        for i, (source, hatch, alpha) in enumerate(((ours, None, 1.0), (paper, "//", 0.45))):
            offset = (2 * j + i - (2 * len(systems) - 1) / 2) * width
            values = [d.get(system, np.nan) for d in source]
            name = f"{VARIANT_NAMES[system]} (ours)" if i == 0 else \
                (paper_names or {}).get(system, f"{VARIANT_NAMES[system]} (paper)")
            bars = ax.bar(x + offset, values, width, color=VARIANT_COLORS[system], alpha=alpha, hatch=hatch,
                          edgecolor="black", linewidth=0.5, label=name)
            ax.bar_label(bars, labels=["" if np.isnan(v) else f"{v:.3g}" for v in values])
    ax.set_xticks(x, labels=list(rows))
    ax.set_ylim(0, 1.15)
    ax.set_ylabel("score (fraction)")
    ax.set_title(title or "Our small RAG beside the paper's numbers")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1))
    return ax

