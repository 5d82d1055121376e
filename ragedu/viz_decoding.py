"""Views of decoding: RAG-Token's beam tree and RAG-Sequence's hypothesis × passage matrix.   (notebook 4)

Each `plot_x(ax, data)` draws a trace decoding returned (ragedu.traces); none runs a model.
"""
from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib
import numpy as np
from matplotlib.patches import Patch, Rectangle

import ragedu.viz  # noqa: F401  the course's style (viz.COURSE_STYLE), also for views of this module alone
from ragedu.traces import RagSequenceTrace, RagTokenTrace


@dataclass
class BeamTree:
    """RAG-Token's beam search as a tree of prefixes: one node per prefix a step kept, an edge to its parent.

    Every node carries the one score the search ranks by, score(y≤t) = log p'(y≤t|x) / t^α (α the length
    penalty): the finished pool is ranked by it, the stopping rule compares the best live beam with the pool on it,
    and the live beams of one step, all of length t, are ranked by it as by log p'(y≤t|x)."""

    prefixes: list[tuple[int, ...]]   # token ids y_1 … y_t of each node; () is the root, the decoder start
    labels: list[str]                 # the node's last token y_t, as text
    texts: list[str]                  # the whole prefix y_1 … y_t as text, "</s>" shown: what the node stands for
    log_p: list[float]                # log p'(y≤t|x)
    score: list[float]                # log p'(y≤t|x) / t^α, live and finished alike; 0 at the root
    step: list[int]                   # t = |y≤t|: the decoding step that made the node
    rank: list[int]                   # its row among the nodes of its step, best score first
    finished: list[bool]              # ended in </s> and joined the pool of finished hypotheses
    chosen: list[bool]                # on the path of the returned best answer
    edges: list[tuple[int, int]]      # (parent node, child node)
    length_penalty: float = 1.0       # α


def _prefix_text(tokenizer, prefix: tuple[int, ...], finished: bool) -> str:
    """y_1 … y_t as a reader sees it: the text so far, and "</s>" at the end of a finished hypothesis."""
    body = tokenizer.decode(list(prefix[:-1] if finished else prefix)).strip()
    return f"{body} </s>".strip() if finished else body


def beam_tree(trace: RagTokenTrace, tokenizer) -> BeamTree:
    """A RagTokenTrace as a BeamTree, each node labelled with its prefix as `tokenizer.decode` spells it.

    Every live beam of every step is a node, and so is every hypothesis the step it joined the finished pool.
    A node's parent is its prefix one token shorter, which the previous step kept alive."""
    alpha = float(trace.length_penalty)
    best = tuple(trace.ids[0]) if trace.ids else None
    tree = BeamTree([()], ["<s>"], ["<s>"], [0.0], [0.0], [0], [0], [False], [True], [], alpha)
    nodes: dict[tuple[int, ...], int] = {(): 0}
    for step in trace.steps:
        # live: the step's log p'(y≤t|x), scored / t^α; finished: the pool's score, log p'(y|x) = score · |y|^α
        live = [(tuple(y), float(v) / len(y) ** alpha, False) for y, v in zip(step.tokens, step.log_p)]
        done = [(tuple(y), float(v), True) for y, v in zip(step.done, step.done_scores)]
        new = sorted((node for node in live + done if node[0] not in nodes), key=_by_score)
        for rank, (y, score, is_done) in enumerate(new):
            nodes[y] = len(tree.prefixes)
            tree.prefixes.append(y)
            tree.labels.append(tokenizer.decode([y[-1]]))
            tree.texts.append(_prefix_text(tokenizer, y, is_done))
            tree.score.append(score)
            tree.log_p.append(score * len(y) ** alpha)
            tree.step.append(len(y))
            tree.rank.append(rank)
            tree.finished.append(is_done)
            tree.chosen.append(best is not None and best[:len(y)] == y)
            if y[:-1] in nodes:
                tree.edges.append((nodes[y[:-1]], nodes[y]))
    return tree


def _by_score(node: tuple[tuple[int, ...], float, bool]) -> float:
    return -node[1]                   # best score first


def plot_beam_tree(ax, tree: BeamTree, title: str | None = None):
    """RAG-Token beam search drawn left to right: a column per step, a box per kept prefix with its text and
    its score log p'(y≤t|x) / t^α (best at the top of each column), finished hypotheses in green, the returned
    answer's path in red."""
    for parent, child in tree.edges:
        on_path = tree.chosen[parent] and tree.chosen[child]
        ax.plot([tree.step[parent], tree.step[child]], [-tree.rank[parent], -tree.rank[child]],
                color="tab:red" if on_path else "0.6", linewidth=3 if on_path else 1, zorder=1)
    for i, text in enumerate(tree.texts):
        value = "" if i == 0 else f"\n{tree.score[i]:.2f}"
        face = "#c7e9c0" if tree.finished[i] else "white"
        edge = "tab:red" if tree.chosen[i] else "0.4"
        ax.text(tree.step[i], -tree.rank[i], text + value, ha="center", va="center",
                zorder=2, bbox={"boxstyle": "round", "facecolor": face, "edgecolor": edge,
                                "linewidth": 2 if tree.chosen[i] else 1})
    steps, ranks = max(tree.step), max(tree.rank)
    ax.set_xlim(-0.6, steps + 0.6)
    ax.set_ylim(-ranks - 0.7, 0.7)
    ax.set_xticks(range(steps + 1), labels=["start"] + [f"step {t}" for t in range(1, steps + 1)])
    ax.set_xlabel("decoding step t (each box: the prefix y≤t so far, and its score)")
    ax.set_yticks([])
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    alpha = "" if tree.length_penalty == 1 else f"^{tree.length_penalty:g}"
    ax.set_title(title or f"RAG-Token beam search, every box scored log p'(y≤t|x) / t{alpha}, what the search "
                 f"ranks by\n(green: ended with </s> and kept as finished; red: the answer returned)")
    return ax


HYPOTHESIS_MARKS = {"beam": "found by z's beam", "rescored": "rescored (extra pass)",
                    "assumed zero": "assumed 0 (fast)"}
HYPOTHESIS_CMAP = "viridis"   # the matrix's colours, probability 0 (dark) to 1 (light): the figure's and the table's


def probability_label(p: float, narrow: bool = False) -> str:
    """A cell's p_θ(y|x,z) as printed: 0.56, or 2e-06 below 0.01 (2e-6 when the column is narrow)."""
    if p >= 0.01:
        return f"{p:.2f}"
    return f"{p:.0e}".replace("e-0", "e-") if narrow else f"{p:.0e}"



def plot_hypothesis_matrix(ax, trace: RagSequenceTrace, titles: Sequence[str], rows: Sequence[int] | None = None,
                           title: str | None = None):
    """RAG-Sequence's hypothesis × passage matrix of p_θ(y|x,z), each cell marked by where its number came from:
    'beam' (solid frame), 'rescored' (dashed frame), 'assumed zero' (grey, hatched: fast decoding's 0).
    The row labels carry p(y|x) = Σ_z p(z|x) p_θ(y|x,z) as the trace's mode computed it; the best row is starred.
    `rows` picks which hypotheses to draw, in that order (default: all, or e.g. `trace.best_of_both(4)`); the
    star stays on the best of all. Each passage's label also shows p(z|x).
    Colours are on the printed numbers' scale, probability 0 to 1, so that 0.30 and 0.50 look apart.
    One question's RagSequenceTrace (ragedu.traces), K passage titles"""
    log_p_y_given_z, source, hypotheses, log_p_z = trace.log_p_y_given_z, trace.source, trace.texts, trace.log_p_z
    log_p_y = np.asarray(trace.log_p_y, dtype=float)
    best_y = hypotheses[int(np.argmax(log_p_y))]
    rows = list(range(len(hypotheses))) if rows is None else list(rows)
    log_p = np.asarray(log_p_y_given_z, dtype=float)[rows]
    log_p_y, hypotheses, source = log_p_y[rows], [hypotheses[h] for h in rows], [source[h] for h in rows]
    H, K = log_p.shape
    narrow = K > 5                                                        # columns under an inch wide
    zero = np.array([[s == "assumed zero" for s in row] for row in source], dtype=bool).reshape(H, K)
    shown = np.ma.masked_array(np.exp(log_p), mask=zero)                  # (H, K) p_θ(y|x,z)
    cmap = matplotlib.colormaps[HYPOTHESIS_CMAP].with_extremes(bad="0.85")  # masked cells: light grey
    image = ax.imshow(shown, vmin=0, vmax=1, cmap=cmap, aspect="auto")
    for h in range(H):
        for k in range(K):
            mark = source[h][k]
            if mark == "assumed zero":
                ax.add_patch(Rectangle((k - 0.5, h - 0.5), 1, 1, fill=False, hatch="//", edgecolor="0.5", linewidth=0))
                ax.text(k, h, "0?", ha="center", va="center", color="0.3")
                continue
            p = np.exp(log_p[h, k])
            ax.add_patch(Rectangle((k - 0.46, h - 0.46), 0.92, 0.92, fill=False, edgecolor="black",
                                   linewidth=2, linestyle="-" if mark == "beam" else "--"))
            ax.text(k, h, probability_label(p, narrow), ha="center", va="center",
                    color="white" if p < 0.5 else "black")
    labels = [f"{'★ ' if text == best_y else ''}{text!r}  p(y|x)={np.exp(v):.3f}"
              for text, v in zip(hypotheses, log_p_y)]
    ax.set_yticks(np.arange(H), labels=labels)
    p_z = np.exp(np.asarray(log_p_z, dtype=float))                         # (K,)
    if narrow:   # at K = 10 a 10-inch figure has about half an inch per passage: slanted labels, one line each
        ax.set_xticks(np.arange(K), labels=[f"{t}  {p:.2f}" for t, p in zip(titles, p_z)], rotation=40,
                      ha="right", rotation_mode="anchor")
        ax.set_xlabel("passage z, and its p(z|x)")
    else:
        ax.set_xticks(np.arange(K), labels=[f"{textwrap.fill(t, 16)}\np(z|x)={p:.2f}" for t, p in zip(titles, p_z)])
        ax.set_xlabel("passage z")
    ax.set_ylabel("hypothesis y (union of the beams)")
    ax.set_title(title or "p_θ(y | x, z) for every hypothesis and passage", pad=30)
    ax.figure.colorbar(image, ax=ax, label="p_θ(y | x, z)")
    handles = {"beam": Patch(fill=False, edgecolor="black", linewidth=2, label=HYPOTHESIS_MARKS["beam"]),
               "rescored": Patch(fill=False, edgecolor="black", linewidth=2, linestyle="--",
                                 label=HYPOTHESIS_MARKS["rescored"]),
               "assumed zero": Patch(facecolor="0.85", hatch="//", edgecolor="0.5",
                                     label=HYPOTHESIS_MARKS["assumed zero"])}
    used = [handles[mark] for mark in handles if any(mark in row for row in source)]  # only the marks drawn
    ax.legend(handles=used, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(used), frameon=False)
    return ax

