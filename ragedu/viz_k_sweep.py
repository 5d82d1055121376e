"""View of the effect of K at test time, the paper's Figure 3: exact match and recall@K against K.   (notebook 7)

Draws a `ragedu.k_sweep.KSweep` (or its saved JSON read back by `load_k_sweep`); runs no model.
"""
from __future__ import annotations

from ragedu.viz import VARIANT_COLORS, VARIANT_NAMES


def plot_k_sweep(axes, sweep, live=None):
    """Left: greedy QA exact match of both variants against K; right: recall@K of the gold passage.
    `live`: an optional smaller sweep computed in the notebook, drawn as hollow markers on top."""
    em, rec = axes
    for variant, values in sweep.exact_match.items():
        em.plot(sweep.ks, values, "o-", color=VARIANT_COLORS[variant], label=VARIANT_NAMES[variant])
        if live is not None:
            em.plot(live.ks, live.exact_match[variant], "o", markersize=11, markerfacecolor="none",
                    color=VARIANT_COLORS[variant], label=f"{VARIANT_NAMES[variant]}, live ({live.questions} q.)")
    rec.plot(sweep.ks, sweep.recall, "o-", color="0.3", label="recall@K")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xticks(sweep.ks, labels=[str(k) for k in sweep.ks])
        ax.minorticks_off()
        ax.set_xlabel("K, passages retrieved at test time")
        ax.set_ylim(0, 1.02)
        ax.axvline(5, color="0.6", linestyle=":", linewidth=1)
    em.set_ylabel("QA exact match (greedy)")
    em.set_title(f"Exact match against K ({sweep.questions} {sweep.split} questions)")
    em.legend(loc="lower right")
    rec.set_ylabel("share with the gold passage in the top K")
    rec.set_title("Retrieval recall@K")
    return axes
