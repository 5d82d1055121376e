"""Views: each `plot_x(ax, data)` draws plain data the library returned; none runs a model.   (all notebooks)

Sized for a classroom projector: passage titles as labels, probabilities on fixed 0–1 axes.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.patches import Patch, Rectangle


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
    """Heatmap of the copy head's pointer a_t over the input, one row per target token, each row labelled with
    how much that token was copied, 1 − g_t    (T, L) a, (T,) 1 − g"""
    a, copy_share = np.asarray(a, dtype=float), np.asarray(copy_share, dtype=float)
    image = ax.imshow(a, vmin=0, vmax=1, cmap="magma", aspect="auto")
    ax.set_xticks(np.arange(len(input_tokens)), labels=list(input_tokens), rotation=90, fontsize=8)
    ax.set_yticks(np.arange(len(target_tokens)),
                  labels=[f"{t}  (copied {c:.0%})" for t, c in zip(target_tokens, copy_share)])
    ax.set_xlabel("input token x_j (passage // question)")
    ax.set_ylabel("target token y_t (share copied, 1 − g_t)")
    ax.set_title(title or "Where the copy head points while writing each token")
    ax.figure.colorbar(image, ax=ax, label="pointer weight a_tj")
    return ax


# ---- marginalization (notebook 3) ----

VARIANT_COLORS = {"sequence": "tab:blue", "token": "tab:orange", "closed_book": "tab:gray"}
VARIANT_NAMES = {"sequence": "RAG-Sequence", "token": "RAG-Token", "closed_book": "closed-book BART"}


def plot_likelihoods(ax, labels: Sequence[str], log_p_y_sequence, log_p_y_token, title: str | None = None):
    """Side-by-side bars of log p(y|x) under RAG-Sequence and RAG-Token, one pair per (question, answer)."""
    sequence, token = np.asarray(log_p_y_sequence, dtype=float), np.asarray(log_p_y_token, dtype=float)
    rows = np.arange(len(labels))
    ax.barh(rows - 0.2, sequence, height=0.4, color=VARIANT_COLORS["sequence"], label="RAG-Sequence")
    ax.barh(rows + 0.2, token, height=0.4, color=VARIANT_COLORS["token"], label="RAG-Token")
    ax.set_yticks(rows, labels=list(labels))
    ax.invert_yaxis()
    for row, (s, t) in enumerate(zip(sequence, token)):  # the value just beyond each bar's tip
        ax.text(s, row - 0.2, f"{s:.2f} ", va="center", ha="right", fontsize=10)
        ax.text(t, row + 0.2, f"{t:.2f} ", va="center", ha="right", fontsize=10)
    ax.margins(x=0.15)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel("log p(y | x)   (0 = certain; further left = less likely)")
    ax.set_title(title or "The same answer under the two models")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1))
    return ax


# ---- decoding (notebook 4) ----

@dataclass
class BeamTree:
    """RAG-Token's beam search as a tree of prefixes: one node per prefix a step kept, an edge to its parent."""

    prefixes: list[tuple[int, ...]]   # token ids y_1 … y_t of each node; () is the root, the decoder start
    labels: list[str]                 # the node's last token, as text
    value: list[float]                # live: log p'(y≤t | x); finished: its pool score log p'(y|x) / |y|^α
    step: list[int]                   # t = |y≤t|: the decoding step that made the node
    rank: list[int]                   # its row among the nodes of its step: live beams best first, then finished
    finished: list[bool]              # ended in </s> and joined the pool of finished hypotheses
    chosen: list[bool]                # on the path of the returned best answer
    edges: list[tuple[int, int]]      # (parent node, child node)


def beam_tree(trace, token_text) -> BeamTree:
    """A RagTokenTrace as a BeamTree; `token_text(id)` spells one token (e.g. lambda i: tokenizer.decode([i])).

    Every live beam of every step is a node, and so is every hypothesis the step it joined the finished pool.
    A node's parent is its prefix one token shorter, which the previous step kept alive."""
    best = tuple(trace.ids[0]) if trace.ids else None
    tree = BeamTree([()], ["<s>"], [0.0], [0], [0], [False], [True], [])
    nodes: dict[tuple[int, ...], int] = {(): 0}
    for step in trace.steps:
        live = [(tuple(y), float(v), False) for y, v in zip(step.tokens, step.log_p)]
        done = [(tuple(y), float(v), True) for y, v in zip(step.done, step.done_scores)]
        new = [node for node in live + done if node[0] not in nodes]
        for rank, (y, value, is_done) in enumerate(new):
            nodes[y] = len(tree.prefixes)
            tree.prefixes.append(y)
            tree.labels.append(token_text(y[-1]))
            tree.value.append(value)
            tree.step.append(len(y))
            tree.rank.append(rank)
            tree.finished.append(is_done)
            tree.chosen.append(best is not None and best[:len(y)] == y)
            if y[:-1] in nodes:
                tree.edges.append((nodes[y[:-1]], nodes[y]))
    return tree


def plot_beam_tree(ax, tree: BeamTree, title: str | None = None):
    """RAG-Token beam search drawn left to right: a column per step, a box per kept prefix,
    finished hypotheses in green, the returned answer's path in red."""
    for parent, child in tree.edges:
        on_path = tree.chosen[parent] and tree.chosen[child]
        ax.plot([tree.step[parent], tree.step[child]], [-tree.rank[parent], -tree.rank[child]],
                color="tab:red" if on_path else "0.6", linewidth=3 if on_path else 1, zorder=1)
    for i, label in enumerate(tree.labels):
        value = "" if i == 0 else f"\n{tree.value[i]:.2f}"
        face = "#c7e9c0" if tree.finished[i] else "white"
        edge = "tab:red" if tree.chosen[i] else "0.4"
        ax.text(tree.step[i], -tree.rank[i], label.strip() + value, ha="center", va="center", fontsize=11,
                zorder=2, bbox={"boxstyle": "round", "facecolor": face, "edgecolor": edge,
                                "linewidth": 2 if tree.chosen[i] else 1})
    steps, ranks = max(tree.step), max(tree.rank)
    ax.set_xlim(-0.6, steps + 0.6)
    ax.set_ylim(-ranks - 0.7, 0.7)
    ax.set_xticks(range(steps + 1), labels=["start"] + [f"step {t}" for t in range(1, steps + 1)])
    ax.set_yticks([])
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.set_title(title or "RAG-Token beam search: log p'(y≤t|x) under each kept prefix\n"
                 "(green: ended with </s>, scored log p'/|y|; red: the answer returned)")
    return ax


HYPOTHESIS_MARKS = {"beam": "found by z's beam", "rescored": "rescored (extra pass)",
                    "assumed zero": "assumed 0 (fast)"}


def plot_hypothesis_matrix(ax, log_p_y_given_z, source: Sequence[Sequence[str]], hypotheses: Sequence[str],
                           titles: Sequence[str], log_p_y, rows: Sequence[int] | None = None, log_p_z=None,
                           title: str | None = None, floor: float = -12.0):
    """RAG-Sequence's hypothesis × passage matrix of p_θ(y|x,z), each cell marked by where its number came from:
    'beam' (solid frame), 'rescored' (dashed frame), 'assumed zero' (grey, hatched: fast decoding's 0).
    The row labels carry p(y|x) = Σ_z p(z|x) p_θ(y|x,z) as the mode computed it; the best row is starred.
    `rows` picks which hypotheses to draw, in that order (default: all); the star stays on the best of all.
    With `log_p_z` (K,) each passage's label also shows p(z|x).
    (H, K) log p_θ(y|x,z), H × K marks, H hypothesis texts, K passage titles, (H,) log p(y|x)"""
    log_p_y = np.asarray(log_p_y, dtype=float)
    best_y = hypotheses[int(np.argmax(log_p_y))]
    rows = list(range(len(hypotheses))) if rows is None else list(rows)
    log_p = np.asarray(log_p_y_given_z, dtype=float)[rows]
    log_p_y, hypotheses, source = log_p_y[rows], [hypotheses[h] for h in rows], [source[h] for h in rows]
    H, K = log_p.shape
    zero = np.array([[s == "assumed zero" for s in row] for row in source], dtype=bool).reshape(H, K)
    shown = np.ma.masked_array(np.maximum(log_p, floor), mask=zero)
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="0.85")  # masked cells: light grey
    image = ax.imshow(shown, vmin=floor, vmax=0, cmap=cmap, aspect="auto")
    for h in range(H):
        for k in range(K):
            mark = source[h][k]
            if mark == "assumed zero":
                ax.add_patch(Rectangle((k - 0.5, h - 0.5), 1, 1, fill=False, hatch="//", edgecolor="0.5", linewidth=0))
                ax.text(k, h, "0?", ha="center", va="center", fontsize=11, color="0.3")
                continue
            p = np.exp(log_p[h, k])
            ax.add_patch(Rectangle((k - 0.46, h - 0.46), 0.92, 0.92, fill=False, edgecolor="black",
                                   linewidth=2, linestyle="-" if mark == "beam" else "--"))
            ax.text(k, h, f"{p:.2f}" if p >= 0.01 else f"{p:.0e}", ha="center", va="center", fontsize=11,
                    color="white" if log_p[h, k] < floor / 2 else "black")
    labels = [f"{'★ ' if text == best_y else ''}{text!r}  p(y|x)={np.exp(v):.3f}"
              for text, v in zip(hypotheses, log_p_y)]
    ax.set_yticks(np.arange(H), labels=labels)
    if log_p_z is not None:
        titles = [f"{t}\np(z|x)={p:.2f}" for t, p in zip(titles, np.exp(np.asarray(log_p_z, dtype=float)))]
    ax.set_xticks(np.arange(K), labels=list(titles))
    ax.set_xlabel("passage z")
    ax.set_ylabel("hypothesis y (union of the beams)")
    ax.set_title(title or "p_θ(y | x, z) for every hypothesis and passage", pad=30)
    ax.figure.colorbar(image, ax=ax, label="log p_θ(y | x, z)", extend="min")
    handles = {"beam": Patch(fill=False, edgecolor="black", linewidth=2, label=HYPOTHESIS_MARKS["beam"]),
               "rescored": Patch(fill=False, edgecolor="black", linewidth=2, linestyle="--",
                                 label=HYPOTHESIS_MARKS["rescored"]),
               "assumed zero": Patch(facecolor="0.85", hatch="//", edgecolor="0.5",
                                     label=HYPOTHESIS_MARKS["assumed zero"])}
    used = [handles[mark] for mark in handles if any(mark in row for row in source)]  # only the marks drawn
    ax.legend(handles=used, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(used), frameon=False)
    return ax


# ---- training (notebook 5) ----

def read_train_log(path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """train_log.jsonl ({"stage", "step", "loss"} a line) -> stage -> (steps, losses), stages in log order."""
    curves: dict[str, tuple[list, list]] = {}
    for line in Path(path).read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            steps, losses = curves.setdefault(row["stage"], ([], []))
            steps.append(row["step"])
            losses.append(row["loss"])
    return {stage: (np.asarray(steps), np.asarray(losses, dtype=float)) for stage, (steps, losses) in curves.items()}


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
    `axes` holds one ax per stage; `curves` is what read_train_log returns."""
    for ax, (stage, (steps, losses)) in zip(axes, curves.items()):
        ax.plot(steps, losses, color="tab:blue", alpha=0.3, linewidth=0.8, label="each step")
        ax.plot(steps, moving_average(losses, window), color="tab:blue", linewidth=2.5,
                label=f"mean of last {window}")
        ax.set_title(STAGE_TITLES.get(stage, stage))
        ax.set_xlabel("step")
        ax.set_ylim(0, None)
    axes[0].set_ylabel("training loss")
    axes[0].legend(loc="best")
    return axes


def plot_posterior_change(ax, p_before, p_after, titles: Sequence[str], question: str | None = None):
    """p(z|x) for the same passages before and after fine-tuning the query encoder, as paired bars."""
    p_before, p_after = np.asarray(p_before, dtype=float), np.asarray(p_after, dtype=float)
    rows = np.arange(len(titles))
    ax.barh(rows - 0.2, p_before, height=0.4, color="0.6", label="before: stage-1 encoder")
    ax.barh(rows + 0.2, p_after, height=0.4, color="tab:blue", label="after: RAG fine-tuned q(x)")
    ax.set_yticks(rows, labels=list(titles))
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("p(z | x) over the whole corpus")
    ax.set_title(f"Fine-tuning the query encoder: {question}" if question else "p(z|x) before and after fine-tuning")
    ax.legend(loc="lower right")
    return ax


# ---- RAG vs closed-book (notebook 7) ----

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
        ax.bar_label(bars, fmt="%.2f", fontsize=9)
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
            ax.bar_label(bars, labels=["" if np.isnan(v) else f"{v:.3g}" for v in values], fontsize=9)
    ax.set_xticks(x, labels=list(rows))
    ax.set_ylim(0, 1.15)
    ax.set_ylabel("score (fraction)")
    ax.set_title(title or "Our small RAG beside the paper's numbers")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=9)
    return ax


# ---- memory (notebook 6)

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
    queries/s    rows: dicts with kind, n, bytes, recall_at_10, queries_per_s (benchmarks/index.py)"""
    for i, row in enumerate(rows):
        x, y = row["bytes"] / row["n"], row["recall_at_10"]
        ax.scatter([x], [y], s=80, label=row["kind"])
        ax.annotate(f"{row['kind']}\n{row['queries_per_s']:,.0f} queries/s", (x, y), textcoords="offset points",
                    xytext=(8, 4 if i % 2 == 0 else -28), fontsize=9)  # above, below, above: neighbours don't overlap
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
    ax.plot(list(ks), np.asarray(mass, dtype=float), marker=".", color="tab:blue")
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
    colours = {"sequence": "tab:orange", "token": "tab:green"}
    for variant, values in log_p_y.items():
        colour = colours.get(variant)
        ax.plot(list(ks), np.asarray(values, dtype=float), marker=".", color=colour, label=f"RAG-{variant}, top-K")
        ax.axhline(float(exact[variant]), color=colour, linestyle="--", label=f"RAG-{variant}, all passages")
    ax.set_xlim(min(ks), max(ks))
    ax.set_xlabel("K, passages kept")
    ax.set_ylabel("log p(y | x)")
    ax.set_title(f"Top-K against the exact marginal: {question}" if question else "Top-K against the exact marginal")
    ax.legend()
    return ax
