"""Views of retrieval, the generator and the two marginals: each `plot_x(ax, data)` draws plain data the library
returned; none runs a model.   (notebooks 1, 2 and 3; the other notebooks' views are ragedu.viz_*)

Sized for a classroom projector: passage titles as labels, probabilities on fixed 0–1 axes.
"""
from __future__ import annotations

import textwrap
from collections.abc import Sequence

import matplotlib
import numpy as np

from ragedu.variants import NEUTRAL_COLOR, VARIANT_COLORS, VARIANT_NAMES  # noqa: F401  one colour per model

# Sized for the back row: every figure of the course is at most 10 inches wide (tests/test_projector.py checks the
# notebooks) and drawn at 100 dpi, and no text is smaller than 12 pt.
COURSE_STYLE = {"font.size": 12, "axes.titlesize": 13, "axes.labelsize": 12, "xtick.labelsize": 12,
                "ytick.labelsize": 12, "legend.fontsize": 12, "legend.title_fontsize": 12, "figure.titlesize": 13,
                "figure.dpi": 100, "savefig.dpi": 100}
MIN_FONT_SIZE = 12
matplotlib.rcParams.update(COURSE_STYLE)   # importing a view sets the course's style



def plot_doc_posterior(ax, p_z: Sequence[float], titles: Sequence[str], question: str | None = None):
    """Horizontal bars of p(z|x) over the retrieved passages, best at the top."""
    p_z = np.asarray(p_z, dtype=float)
    rows = np.arange(len(p_z))
    ax.barh(rows, p_z, color=NEUTRAL_COLOR)            # the retriever's, neither model's colour
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



# ---- the generator (notebook 2) ----

def token_labels(tokenizer, ids) -> list[str]:
    """One readable tick label per token id: the token's text without its leading space; '␣' for a bare space."""
    return [tokenizer.decode([int(i)]).strip() or "␣" for i in ids]


def plot_token_log_probs(ax, log_p_yi, tokens: Sequence[str], titles: Sequence[str], title: str | None = None,
                         floor: float = -10.0):
    """Heatmap of log p_θ(y_i | x, z, y<i): one row per passage, one column per target token    (K, T)
    Values below `floor` share its colour, so a few near-impossible tokens do not wash out the rest."""
    log_p_yi = np.asarray(log_p_yi, dtype=float)
    image = ax.imshow(log_p_yi, vmin=floor, vmax=0, cmap="viridis", aspect="auto")
    ax.set_xticks(np.arange(len(tokens)), labels=list(tokens), rotation=60, ha="right")
    ax.set_yticks(np.arange(len(titles)), labels=list(titles))
    ax.set_xlabel("target token y_i")
    ax.set_ylabel("passage z")
    ax.set_title(title or "log p(y_i | x, z, y<i): how sure the generator is of each token, per passage")
    ax.figure.colorbar(image, ax=ax, label=f"log-probability (≤ {floor:g} drawn as {floor:g})", extend="min")
    return ax


def plot_copy(ax, a, copy_share, input_tokens: Sequence[str], target_tokens: Sequence[str],
              title: str | None = None):
    """Heatmap of the copy mass (1 − g_t) a_tj: where the copy head points while writing each target token,
    weighted by how much that token was copied, so a token the gate switches to the vocabulary stays dark.
    Drawn transposed, one row per input token x_j (a passage reads top to bottom, every label level at 12 pt)
    and one column per target token y_t, labelled with its share copied, 1 − g_t    (T, L) a, (T,) 1 − g"""
    a, copy_share = np.asarray(a, dtype=float), np.asarray(copy_share, dtype=float)
    mass = copy_share[:, None] * a                                          # (T, L) (1 − g_t) a_tj
    image = ax.imshow(mass.T, vmin=0, vmax=1, cmap="magma", aspect="auto")  # (L, T)
    ax.set_yticks(np.arange(len(input_tokens)), labels=list(input_tokens))
    ax.set_xticks(np.arange(len(target_tokens)),
                  labels=[f"{t} ({c:.0%})" for t, c in zip(target_tokens, copy_share)], rotation=90)
    ax.set_ylabel("input token x_j (passage // question)")
    ax.set_xlabel("target token y_t (share copied, 1 − g_t)")
    ax.set_title(title or "Where the copy head points while writing each token")
    ax.figure.colorbar(image, ax=ax, label="copy mass (1 − g_t) a_tj")
    return ax



# ---- marginalization (notebook 3) ----

def plot_likelihoods(ax, labels: Sequence[str], log_p_y_sequence, log_p_y_token, title: str | None = None):
    """Side-by-side bars of log p(y|x) under RAG-Sequence and RAG-Token, one pair per (question, answer).
    Each bar's value is written at its tip: inside a long bar (in white), just beyond a short one, so that no
    label runs into another, off the axes, or into the question labels."""
    sequence, token = np.asarray(log_p_y_sequence, dtype=float), np.asarray(log_p_y_token, dtype=float)
    rows = np.arange(len(labels))
    span = max(1e-9, -min(0.0, sequence.min(initial=0.0), token.min(initial=0.0)))   # the longest bar's length
    for offset, values, variant in ((-0.2, sequence, "sequence"), (0.2, token, "token")):
        ax.barh(rows + offset, values, height=0.4, color=VARIANT_COLORS[variant], label=VARIANT_NAMES[variant])
        for row, v in zip(rows, values):
            inside = -v > 0.3 * span                                        # room for the label in the bar
            ax.annotate(f"{v:.2f}", (v, row + offset), xytext=(4 if inside else -4, 0), textcoords="offset points",
                        va="center", ha="left" if inside else "right", color="white" if inside else "black")
    ax.set_yticks(rows, labels=list(labels))
    ax.invert_yaxis()
    ax.set_xlim(-1.05 * span, 0)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel("log p(y | x)   (0 = certain; further left = less likely)")
    ax.set_title(title or "The same answer under the two models")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
    return ax



# ---- the whole model on one page, the paper's Figure 1 (notebook 1) ----

def _box(ax, x, y, text, color="white", width=28, **kw):
    return ax.text(x, y, textwrap.fill(text, width), ha="center", va="center", transform=ax.transAxes,
                   bbox=dict(boxstyle="round,pad=0.4", facecolor=color, edgecolor="0.3"), **kw)


def _arrow(ax, start, end):
    ax.annotate("", xy=end, xytext=start, xycoords="axes fraction",
                arrowprops=dict(arrowstyle="->", color="0.3", linewidth=1.5))


def plot_rag_overview(ax, question: str, titles: Sequence[str], p_z: Sequence[float], answers: dict[str, str],
                      n_passages: int):
    """RAG end to end, filled with one question's numbers: x → q(x) → MIPS over the d(z) of N passages → the top-K
    with p(z|x) → the generator p_θ under each → marginalise over z → y, one answer per model.
    `answers`: variant -> the answer that model decoded."""
    ax.set_axis_off()
    _box(ax, 0.14, 0.92, f"x: {question}", "lightyellow")
    _box(ax, 0.14, 0.62, "query encoder q(x) = BERT_q(x)", "#dde8f5")
    _box(ax, 0.14, 0.30, f"MIPS: the K largest d(z)ᵀq(x) among the d(z) of {n_passages:,} passages", "#dde8f5",
         width=24)
    _arrow(ax, (0.14, 0.85), (0.14, 0.69))
    _arrow(ax, (0.14, 0.55), (0.14, 0.40))
    K = len(titles)
    ys = np.linspace(0.82, 0.10, K)
    ax.text(0.50, 0.94, f"top-K passages z (K = {K}), p(z | x)", ha="center", va="center", transform=ax.transAxes)
    for y, title, p in zip(ys, titles, p_z):
        _box(ax, 0.50, y, f"{title}   {p:.2f}", "#eeeeee", width=30)
        _arrow(ax, (0.27, 0.30), (0.40, y))
        _arrow(ax, (0.61, y), (0.70, 0.78))
    _box(ax, 0.84, 0.78, "generator p_θ(y_i | x, z, y<i), BART, once per passage", "#e3f1e3", width=22)
    _box(ax, 0.84, 0.47, "marginalise over z: RAG-Sequence Σ_z Π_i, RAG-Token Π_i Σ_z", "#e3f1e3", width=22)
    _arrow(ax, (0.84, 0.69), (0.84, 0.56))
    lines = "\n".join(f"{VARIANT_NAMES[v]}: {a}" for v, a in answers.items())
    ax.text(0.84, 0.16, f"y\n{lines}", ha="center", va="center", transform=ax.transAxes,
            bbox=dict(boxstyle="round,pad=0.4", facecolor="lightyellow", edgecolor="0.3"))
    _arrow(ax, (0.84, 0.38), (0.84, 0.26))
    ax.set_title("RAG end to end (the paper's Figure 1), on one of our questions")
    return ax


# ---- RAG-Token as a sum over assignments (notebook 3) ----

def plot_assignments(ax, p_terms, assignments, titles: Sequence[str], p_y: float, n_assignments: int):
    """The largest terms Π_i p(a_i|x) p_θ(y_i|x,a_i,y<i) of RAG-Token's sum over assignments, one bar each,
    labelled by the passage (1…K) each token reads, as a share of the whole sum p(y|x)    (n,) p_terms, (n, T)"""
    p_terms = np.asarray(p_terms, dtype=float)
    rows = np.arange(len(p_terms))
    ax.barh(rows, p_terms / p_y, color=VARIANT_COLORS["token"])
    ax.set_yticks(rows, labels=[" ".join(str(int(z) + 1) for z in a) for a in np.asarray(assignments)])
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel(f"share of p(y|x) = {p_y:.3g} held by the term")
    ax.set_ylabel("passage read by token 1 … T")
    key = "\n".join(f"{z + 1} = {t}" for z, t in enumerate(titles))
    ax.text(0.97, 0.05, key, transform=ax.transAxes, ha="right", va="bottom",
            bbox=dict(boxstyle="round", facecolor="white", edgecolor="0.6"))
    ax.set_title(f"The largest of {n_assignments:,} assignments")
    return ax


def plot_transition(ax, marginal, labels: Sequence[str], n: int = 8, title: str | None = None):
    """The n likeliest first tokens under RAG-Token's marginal transition p'(y_1|x), a distribution over the
    generator's vocabulary    (V,) log p', V labels (e.g. token_labels of range(V))"""
    p = np.exp(np.asarray(marginal, dtype=float))
    top = np.argsort(-p)[:n]
    rows = np.arange(len(top))
    ax.barh(rows, p[top], color=VARIANT_COLORS["token"])
    ax.set_yticks(rows, labels=[labels[i] for i in top])
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("p'(y_1 | x) = Σ_z p(z|x) p_θ(y_1|x,z)")
    ax.set_ylabel("token of the vocabulary")
    ax.set_title(title or f"What the beam search extends by: {len(p):,} tokens")
    return ax
