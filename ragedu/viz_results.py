"""Views of the evaluation: exact match per relation as counts, and our figures beside the paper's.   (notebook 7)

Each `plot_x(ax, data)` draws numbers ragedu.evaluate returned (or the paper's, typed in); none runs a model.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

import ragedu.viz  # noqa: F401  the course's style (viz.COURSE_STYLE), also for views of this module alone
from ragedu.errors import RagEduError
from ragedu.variants import VARIANT_COLORS, VARIANT_NAMES


def correct_counts(by_relation: dict[str, dict[str, float]], counts: dict[str, int]) -> dict[str, dict[str, int]]:
    """relation -> system -> how many of the relation's `counts[relation]` questions were answered exactly,
    from the exact-match rates ragedu.evaluate returns (each rate is k / n for a whole k, rounded to 4 places)."""
    correct = {}
    for relation, rates in by_relation.items():
        n = counts.get(relation)
        if not isinstance(n, (int, np.integer)) or n < 1:
            raise RagEduError(f"counts[{relation!r}] must be how many questions the relation has (a whole number "
                              f"≥ 1), got {n!r}")
        correct[relation] = {}
        for system, rate in rates.items():
            k = round(rate * n)
            if abs(rate - k / n) > 0.5e-4 + 1e-9:        # ragedu.evaluate.mean rounds to 4 places
                raise RagEduError(f"exact match {rate!r} of {system!r} on {relation!r} is not a count out of "
                                  f"{n} questions: are the counts those of the questions evaluated?")
            correct[relation][system] = k
    return correct


def plot_eval_table(ax, by_relation: dict[str, dict[str, float]], counts: dict[str, int], title: str | None = None):
    """Per relation, how many questions each system ('sequence', 'token', 'closed_book') answered exactly, drawn
    as counts, not rates: a grey backdrop as tall as the questions asked (n, also under each relation's name),
    a bar per system labelled with its count. A relation resting on one question or a handful shows it as a low backdrop, not a 0 or 1.
    by_relation: relation -> system -> exact match (ragedu.evaluate); counts: relation -> questions asked"""
    correct = correct_counts(by_relation, counts)
    relations = list(by_relation)
    systems = [s for s in VARIANT_NAMES if any(s in by_relation[r] for r in relations)]
    width = 0.8 / len(systems)
    x = np.arange(len(relations))
    asked = [counts[r] for r in relations]
    ax.bar(x, asked, 0.9, color="0.9", edgecolor="0.6", label="questions asked")
    for j, system in enumerate(systems):
        values = [correct[r].get(system, np.nan) for r in relations]
        bars = ax.bar(x + (j - (len(systems) - 1) / 2) * width, values, width, color=VARIANT_COLORS[system],
                      label=VARIANT_NAMES[system])
        ax.bar_label(bars, labels=["" if np.isnan(v) else f"{v:.0f}" for v in values], padding=1)
    labels = [r.replace("_", " →\n") if r.startswith("city") else r for r in relations]
    ax.set_xticks(x, labels=[f"{label}\n({n} asked)" for label, n in zip(labels, asked)])
    ax.set_ylim(0, max(asked) * 1.1 + 0.5)      # room for the counts above the bars
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel("questions answered exactly")
    ax.set_xlabel("relation asked about")
    ax.set_title(title or "Questions answered exactly, per relation (entities never seen in training)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    return ax


def _panel(ax, rows: Sequence[str], scores: Sequence[dict], hatch: str | None, names: dict[str, str], title: str,
           ylabel: str):
    """Grouped bars of one source's scores: a group per row, a bar per system, each bar labelled."""
    systems = [s for s in VARIANT_NAMES if any(s in d for d in scores)]
    width = 0.8 / len(systems)
    x = np.arange(len(rows))
    for j, system in enumerate(systems):
        values = [d.get(system, np.nan) for d in scores]
        bars = ax.bar(x + (j - (len(systems) - 1) / 2) * width, values, width, color=VARIANT_COLORS[system],
                      hatch=hatch, edgecolor="black", linewidth=0.5, label=names.get(system, VARIANT_NAMES[system]))
        ax.bar_label(bars, labels=["" if np.isnan(v) else f"{v:.3g}" for v in values])
    ax.set_xticks(x, labels=list(rows))
    ax.set_ylim(0, 1.15)
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.32), frameon=False)


def plot_results_vs_paper(axes, ours_rows: Sequence[str], ours: Sequence[dict], paper_rows: Sequence[str],
                          paper: Sequence[dict], paper_names: dict[str, str] | None = None,
                          titles: tuple[str, str] | None = None):
    """Our figures and the paper's in two panels, each with its own title, rows and axis: they are measured on
    different data (our templated test split; NQ, FEVER), so they are set beside each other, not on one axis.
    axes: two Axes (ours, the paper's); ours[i]: system -> value in [0, 1] for ours_rows[i], the same for paper;
    a system missing from a row draws no bar. paper_names: system -> legend name of the paper's bars, where the
    paper's system is another model (its closed-book rows are T5-11B and BART)."""
    if len(axes) != 2:
        raise RagEduError(f"plot_results_vs_paper draws two panels, ours and the paper's: pass two Axes, got {len(axes)}")
    titles = titles or ("Ours: small RAG, our test split", "The paper (Lewis et al. 2020): NQ, FEVER")
    _panel(axes[0], ours_rows, ours, None, {s: f"{n} (ours)" for s, n in VARIANT_NAMES.items()}, titles[0],
           "our score (fraction)")
    _panel(axes[1], paper_rows, paper, "//", {**{s: f"{n} (paper)" for s, n in VARIANT_NAMES.items()},
                                               **(paper_names or {})}, titles[1], "the paper's score (fraction)")
    return axes
