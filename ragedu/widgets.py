"""The explorer's widget: type a question (or pick a "try this" one), move K, the decoding mode and the beam
size, watch the probabilities move.   (notebook 9)

Three layers, as every view in ragedu (STYLE.md, practice 8):
    ExplorerState.view(settings)    compute (ragedu.explorer): runs the model, caches, returns an ExplorerView
    passages_html, answers_html     draw an ExplorerView: tables, p(z|x) as bars (a table redraws in no time)
    viz_explorer.figure2_html       both models' posteriors (the paper's Figure 2) as two heatmap tables
                                    (figure2_figure draws it as a figure for `explore` outside Jupyter)
    viz_explorer.matrix_html        RAG-Sequence's hypothesis × passage matrix, a table (matrix_figure draws it
                                    as a figure for `explore` outside Jupyter, ragedu.viz_decoding)
    Explorer                        ipywidgets controls whose callbacks call ExplorerState.view
`explore(model)` opens the widget in Jupyter, and elsewhere prints the view and draws static figures.
"""
from __future__ import annotations

import html

from matplotlib.colors import to_hex

from ragedu.decoding import MODES
from ragedu.explorer import DEFAULT_QUESTION, MAX_BEAMS, ExplorerState, ExplorerView
from ragedu.marginalize import VARIANTS
from ragedu.model import RagModel
from ragedu.try_this import TryThis, load_try_this
from ragedu.viz import NEUTRAL_COLOR, VARIANT_NAMES, plot_doc_posterior
from ragedu.viz_decoding import plot_hypothesis_matrix
from ragedu.viz_explorer import PRIOR_LABEL, figure2_html, matrix_html, plot_figure2

__all__ = ["Explorer", "ExplorerState", "ExplorerView", "explore"]

NON_INTERACTIVE = ("agg", "pdf", "svg", "ps", "cairo", "template")  # matplotlib backends without a window


# ---------------------------------------------------------------------------------------------------------
# Draw: figures and HTML from an ExplorerView (no model here)
# ---------------------------------------------------------------------------------------------------------

def _figure(new_figure, width: float, height: float, left: float, bottom: float):
    """A figure with fixed margins in inches, for the labels: a layout engine would cost a second draw, and
    a redraw must stay under 0.3 s. By default a bare matplotlib Figure: no pyplot, nothing global."""
    if new_figure is None:
        from matplotlib.figure import Figure as new_figure
    fig = new_figure(figsize=(width, height))
    fig.subplots_adjust(left=left / width, bottom=bottom / height, right=1 - 0.2 / width, top=1 - 0.45 / height)
    return fig


def _label_inches(labels: list[str]) -> float:
    return 0.3 + 0.1 * max((len(s) for s in labels), default=1)    # 12-point text, roughly


def doc_posterior_figure(view: ExplorerView, new_figure=None):
    """p(z|x) as bars; `new_figure` makes the figure (e.g. pyplot.figure, to show it in a window)."""
    left = _label_inches(view.titles)
    fig = _figure(new_figure, left + 5, 1.3 + 0.3 * len(view.p_z), left, 0.7)
    plot_doc_posterior(fig.add_subplot(), view.p_z, view.titles)
    return fig


def figure2_figure(view: ExplorerView, new_figure=None):
    """The paper's Figure 2 for both models on the shown answer, side by side (ragedu.viz_explorer)."""
    K, T = view.posteriors["token"].shape
    left, tall = _label_inches(view.titles) + 0.35, 0.3 + 0.1 * max(len(PRIOR_LABEL), *map(len, view.tokens))
    width = min(10, left + 1.2 + 2 * max(3.3, 0.26 * (T + 1)))    # inches: at most 10, as every course figure
    fig = _figure(new_figure, width, 1.1 + 0.3 * max(K, 4) + tall + 0.4, left, tall + 0.4)   # K = 1 still reads
    fig.subplots_adjust(top=1 - 1.05 / fig.get_figheight(), right=1 - 0.9 / width, wspace=0.08)
    axes = fig.subplots(1, 2, sharey=True)
    plot_figure2(axes, view.p_z, view.posteriors, view.tokens, view.titles, answer_of=view.variant)
    return fig


def _shorten(text: str, n: int) -> str:
    return text if len(text) <= n else text[:n - 1] + "…"


MATRIX_ROWS = 3  # hypotheses drawn per ranking: each row costs a redraw about 0.03 s


def matrix_figure(view: ExplorerView, new_figure=None, rows: int = MATRIX_ROWS):
    """RAG-Sequence's hypothesis × passage matrix at the view's K and mode (ragedu.viz_decoding): the best
    `rows` hypotheses of each ranking, thorough and fast (at most 2·rows), long answers cut in the labels (the
    answers table has them whole)."""
    matrix = view.matrix
    shown = matrix.best_of_both(rows)
    labels = [f"{_shorten(matrix.texts[h], 34)!r}  p(y|x)=0.000" for h in shown]
    left, K = 0.2 + 0.085 * max(map(len, labels)) + 0.5, len(view.titles)    # 12-pt labels, then the y label
    width = min(10, left + 1.4 + max(4.8, 0.62 * K))    # room for the title and legend at K = 1
    bottom = 0.75 + 0.085 * max(len(f"{t}  0.00") for t in view.titles + ["p(z|x)="])   # the passage labels
    fig = _figure(new_figure, width, 1.2 + 0.5 * len(shown) + bottom, left, bottom)
    fig.subplots_adjust(top=1 - 0.95 / fig.get_figheight())
    ax = fig.add_subplot()
    plot_hypothesis_matrix(ax, matrix, view.titles, rows=shown,
                           title=f"RAG-Sequence, {view.mode} decoding: p_θ(y | x, z)")
    ax.tick_params(axis="x", labelrotation=90)
    labels = [t.get_text().rpartition("  p(y|x)=") for t in ax.get_yticklabels()]   # (answer, sep, number)
    ax.set_yticks(ax.get_yticks(), labels=[_shorten(y, 36) + sep + p for y, sep, p in labels])
    return fig


def matrix_caption(view: ExplorerView) -> str:
    """What the matrix shows, in one sentence that changes with the mode and the beam size."""
    matrix = view.matrix
    cells = [s for row in matrix.source for s in row]
    missed = "rescored by an extra pass (thorough)" if view.mode == "thorough" else "assumed 0 (fast: no extra pass)"
    return (f"<p class='ragedu-matrix-caption'>RAG-Sequence: {len(matrix.hypotheses)} hypotheses y from the "
            f"{view.k} passages' beams of {view.num_beams}; {cells.count('beam')} of the {len(cells)} cells "
            f"p_θ(y|x,z) come from a beam, {len(cells) - cells.count('beam')} are {missed}. The matrix draws the "
            f"best {MATRIX_ROWS} y of each mode.</p>")


def passages_html(view: ExplorerView) -> str:
    """The K passages with p(z|x) as a table with bars: the numbers `plot_doc_posterior` draws, in HTML
    because a table redraws in no time and a figure takes a tenth of a second."""
    bar = f"<div style='background:{to_hex(NEUTRAL_COLOR)};height:12px;width:{{:.0f}}px'></div>"  # the retriever's colour
    clip = "max-width:560px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap"  # the whole text on hover
    rows = "".join(
        f"<tr title='{html.escape(t + ': ' + x, quote=True)}'><td>{i + 1}</td><td class='title'>{html.escape(t)}"
        f"</td><td style='width:160px'>{bar.format(160 * p)}</td><td class='p'>{p:.3f}</td>"
        f"<td class='text' style='{clip}'>{html.escape(x)}</td></tr>"
        for i, (t, x, p) in enumerate(zip(view.titles, view.texts, view.p_z)))
    return ("<table class='ragedu-passages'><tr><th>#</th><th>passage z</th><th colspan=2>p(z|x)</th><th>text</th></tr>"
            f"{rows}</table>")


def answers_html(view: ExplorerView) -> str:
    rows = "".join(
        f"<tr class='ragedu-{v}'><td>{VARIANT_NAMES[v]}{' (' + view.mode + ')' if v == 'sequence' else ''}</td>"
        f"<td class='answer'><b>{html.escape(a) or '(empty)'}</b></td><td class='p'>{p:.3f}</td></tr>"
        for v, (a, p) in view.answers.items())
    return f"<table class='ragedu-answers'><tr><th>model</th><th>answer y</th><th>p(y|x)</th></tr>{rows}</table>"


def describe(view: ExplorerView) -> str:
    """The view as plain text, for a terminal."""
    if view.message:
        return view.message
    lines = [f"Q: {view.question}   (K={view.k}, beams {view.num_beams})"]
    lines += [f"  {i + 1:>2}. p(z|x)={p:.3f}  {t}" for i, (t, p) in enumerate(zip(view.titles, view.p_z))]
    lines += [f"  {VARIANT_NAMES[v]:<12} {a!r}  p(y|x)={p:.3f}" for v, (a, p) in view.answers.items()]
    lines += [f"  note: {view.memory_note}"] if view.memory_note else []
    return "\n".join(lines)



# ---------------------------------------------------------------------------------------------------------
# Widgets: controls wired to ExplorerState.view
# ---------------------------------------------------------------------------------------------------------

class Explorer:
    """The interactive explorer. Its controls are attributes (question, k, variant, mode, num_beams, try_this):
    setting one's .value, as a user does, redraws the outputs (busy, message, answers, figure2, matrix_caption,
    matrix, passages); `view` is the ExplorerView on screen. `widget` is what Jupyter displays, the answers
    and the posterior figure first, so that at K = 10 they are on screen without scrolling."""

    def __init__(self, model: RagModel, question: str = DEFAULT_QUESTION, k: int = 5, variant: str = "token",
                 mode: str = "thorough", num_beams: int = 4, k_max: int = 10, threads: int = 1,
                 try_this: list[TryThis] | None = None):
        import ipywidgets as w

        self.state = ExplorerState(model, k_max=k_max, threads=threads)
        if not isinstance(k, int) or not 1 <= k <= k_max:
            raise ValueError(f"K must be an integer between 1 and k_max={k_max}, got {k!r}")
        wide = {"description_width": "initial"}
        self.question = w.Text(value=question, description="Question x (press Enter):", continuous_update=False,
                               style=wide, layout=w.Layout(width="640px"))
        self.k = w.IntSlider(value=k, min=1, max=k_max, description="K passages retrieved:",
                             continuous_update=False, style=wide)
        self.num_beams = w.IntSlider(value=num_beams, min=1, max=MAX_BEAMS, description="beam size (1 = greedy):",
                                     continuous_update=False, style=wide)
        self.variant = w.ToggleButtons(options=[(VARIANT_NAMES[v], v) for v in VARIANTS], value=variant,
                                       description="posteriors explain the answer of:", style=wide)
        self.mode = w.ToggleButtons(options=list(MODES), value=mode, description="RAG-Sequence decoding:",
                                    style=wide)
        self.entries = load_try_this() if try_this is None else list(try_this)
        self.try_this = w.Dropdown(options=[("choose one…", -1)] + [(e.label(), i) for i, e in enumerate(self.entries)],
                                   value=-1, description="Try this:", style=wide, layout=w.Layout(width="640px"))
        self.hint = w.HTML()
        self.busy = w.HTML()
        self.message = w.HTML()
        self.answers = w.HTML()
        self.figure2 = w.HTML()                              # tables too: the PNG cost 0.1–0.2 s a redraw
        self.matrix_caption = w.HTML()
        self.matrix = w.HTML()                               # a table: a figure would cost 0.2 s a redraw
        self.passages = w.HTML()
        self._holding = False                                # True while a "try this" sets several controls
        for name in ("question", "k", "variant", "mode", "num_beams", "try_this"):
            control = getattr(self, name)
            control.add_class(f"ragedu-{name.replace('_', '-')}")  # for the browser test to find it
            control.observe(self.choose if name == "try_this" else self.update, names="value")
        self.figure2.add_class("ragedu-figure2")
        self.widget = w.VBox([self.question, w.HBox([self.try_this, self.busy]), self.hint,
                              w.HBox([self.k, self.num_beams]), w.HBox([self.variant, self.mode]),
                              self.message, self.answers, self.figure2, self.matrix_caption, self.matrix,
                              self.passages])
        self.widget.add_class("ragedu-explorer")
        self.update()

    def choose(self, change=None) -> None:
        """A "try this" entry: set its question and settings, then compute once."""
        if self.try_this.value < 0:
            return
        entry = self.entries[self.try_this.value]
        self._holding = True
        try:
            self.question.value, self.k.value, self.num_beams.value = entry.question, entry.k, entry.num_beams
            self.mode.value, self.variant.value = entry.mode, entry.variant
        finally:
            self._holding = False
        self.update()

    def update(self, change=None) -> ExplorerView | None:
        """The callback of every control: say it is busy, compute (cached), draw, then show all at once."""
        if self._holding:
            return None
        self.busy.value = "<b class='ragedu-busy' style='color:#8a5a00'>computing…</b>"  # no emoji: fonts lack them
        try:
            view = self._show(self.state.view(self.question.value, self.k.value, self.variant.value,
                                              self.mode.value, self.num_beams.value))
        finally:
            self.busy.value = ""
        return view

    def _show(self, view: ExplorerView) -> ExplorerView:
        chosen = self.entries[self.try_this.value] if self.try_this.value >= 0 else None
        if chosen is not None and chosen.question != view.question:   # typed another question
            self.try_this.unobserve(self.choose, names="value")
            self.try_this.value, chosen = -1, None
            self.try_this.observe(self.choose, names="value")
        self.hint.value = "" if chosen is None else f"<p class='ragedu-hint'><b>Look:</b> {html.escape(chosen.sentence())}</p>"
        if view.message:
            self.message.value = f"<p class='ragedu-message' style='color:#b00'>{html.escape(view.message)}</p>"
            self.answers.value = self.passages.value = self.matrix_caption.value = self.matrix.value = ""
            self.figure2.value = ""
        else:
            self.figure2.value = figure2_html(view.p_z, view.posteriors, view.tokens, view.titles, view.texts,
                                              answer_of=view.variant)
            self.message.value = ("" if view.memory_note is None else
                                  f"<p class='ragedu-memory-note' style='color:#8a5a00'>{html.escape(view.memory_note)}</p>")
            self.matrix_caption.value = matrix_caption(view)
            self.matrix.value = matrix_html(view.matrix, view.titles, view.matrix.best_of_both(MATRIX_ROWS))
            self.answers.value, self.passages.value = answers_html(view), passages_html(view)
        self.view = view
        return view

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


def in_jupyter() -> bool:
    """True inside a running Jupyter kernel, where widgets can be displayed."""
    try:
        from IPython import get_ipython

        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def explore(model: RagModel | None = None, question: str = DEFAULT_QUESTION, k: int = 5, variant: str = "token",
            mode: str = "thorough", num_beams: int = 4, k_max: int = 10):
    """Open the explorer. In Jupyter: display the widget and return the Explorer. Elsewhere: print the view,
    draw its two figures (shown if matplotlib has a window to show them in) and return the ExplorerView."""
    if model is None:
        from ragedu.pretrained import load_default

        model = load_default()
    if in_jupyter():
        from IPython.display import display

        explorer = Explorer(model, question, k, variant, mode, num_beams, k_max)
        display(explorer.widget)
        return explorer
    view = ExplorerState(model, k_max=k_max).view(question, k, variant, mode, num_beams)
    print(describe(view))
    if not view.message:
        import matplotlib.pyplot as plt

        doc_posterior_figure(view, plt.figure)
        figure2_figure(view, plt.figure)
        matrix_figure(view, plt.figure)
        if plt.get_backend().lower() not in NON_INTERACTIVE:  # a window to show them in
            plt.show()
    return view

