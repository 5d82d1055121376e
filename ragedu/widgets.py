"""The explorer's widget: type a question, move K, the variant, the decoding mode and the beam size, watch the
probabilities move.   (notebook 9)

Three layers, as every view in ragedu (STYLE.md, practice 8):
    ExplorerState.view(settings)    compute (ragedu.explorer): runs the model, caches, returns an ExplorerView
    passages_html, answers_html     draw an ExplorerView: tables, p(z|x) as bars (a table redraws in no time)
    plot_token_posterior            the heatmap (ragedu.viz); outside Jupyter also plot_doc_posterior
    Explorer                        ipywidgets controls whose callbacks call ExplorerState.view
`explore(model)` opens the widget in Jupyter, and elsewhere prints the view and draws static figures.
"""
from __future__ import annotations

import html
import io

from ragedu.decoding import MODES
from ragedu.explorer import DEFAULT_QUESTION, MAX_BEAMS, ExplorerState, ExplorerView
from ragedu.marginalize import VARIANTS
from ragedu.model import RagModel
from ragedu.viz import VARIANT_NAMES, plot_doc_posterior, plot_token_posterior

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


def token_posterior_figure(view: ExplorerView, new_figure=None):
    """The posterior over passages for each token of the shown answer, as a heatmap."""
    K, T = view.posterior.shape
    left = _label_inches(view.titles)
    width = min(10, left + max(5.5, 1.8 + 0.45 * T))   # inches: at most 10, as every figure of the course
    fig = _figure(new_figure, width, 1.8 + 0.3 * K + 0.08 * max(map(len, view.tokens)),
                  left, 0.9 + 0.08 * max(map(len, view.tokens)))
    plot_token_posterior(fig.add_subplot(), view.posterior, view.tokens, view.titles, title=view.posterior_title)
    return fig


def png(fig, dpi: int = 100) -> tuple[bytes, int]:
    """The figure as PNG bytes, and its width in pixels."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, pil_kwargs={"compress_level": 1})  # speed over file size
    return buffer.getvalue(), round(fig.get_figwidth() * dpi)


def passages_html(view: ExplorerView) -> str:
    """The K passages with p(z|x) as a table with bars: the numbers `plot_doc_posterior` draws, in HTML
    because a table redraws in no time and a figure takes a tenth of a second."""
    bar = "<div style='background:#1f77b4;height:12px;width:{:.0f}px'></div>"
    rows = "".join(
        f"<tr><td>{i + 1}</td><td class='title'>{html.escape(t)}</td><td style='width:160px'>"
        f"{bar.format(160 * p)}</td><td class='p'>{p:.3f}</td>"
        f"<td>{html.escape(x[:90])}{'…' if len(x) > 90 else ''}</td></tr>"
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
    """The interactive explorer. Its controls are attributes (question, k, variant, mode, num_beams): setting
    one's .value, as a user does, redraws the outputs (message, answers, passages, token_figure); `view` is
    the ExplorerView on screen. `widget` is what Jupyter displays."""

    def __init__(self, model: RagModel, question: str = DEFAULT_QUESTION, k: int = 5, variant: str = "token",
                 mode: str = "thorough", num_beams: int = 4, k_max: int = 10):
        import ipywidgets as w

        self.state = ExplorerState(model, k_max=k_max)
        if not isinstance(k, int) or not 1 <= k <= k_max:
            raise ValueError(f"K must be an integer between 1 and k_max={k_max}, got {k!r}")
        self.question = w.Text(value=question, description="Question", continuous_update=False,
                               layout=w.Layout(width="600px"))
        self.k = w.IntSlider(value=k, min=1, max=k_max, description="K", continuous_update=False)
        self.variant = w.ToggleButtons(options=[(VARIANT_NAMES[v], v) for v in VARIANTS], value=variant,
                                       description="heatmap")
        self.mode = w.ToggleButtons(options=list(MODES), value=mode, description="RAG-Seq")
        self.num_beams = w.IntSlider(value=num_beams, min=1, max=MAX_BEAMS, description="beams",
                                     continuous_update=False)
        self.message = w.HTML()
        self.answers = w.HTML()
        self.passages = w.HTML()
        self.token_figure = w.Image(format="png")
        self._figures: dict[tuple, tuple[bytes, int]] = {}  # PNGs already drawn, by what they show
        for name in ("question", "k", "variant", "mode", "num_beams"):
            control = getattr(self, name)
            control.add_class(f"ragedu-{name.replace('_', '-')}")  # for the browser test to find it
            control.observe(self.update, names="value")
        self.widget = w.VBox([self.question, w.HBox([self.k, self.num_beams]), self.variant, self.mode,
                              self.message, self.answers, self.passages, self.token_figure])
        self.widget.add_class("ragedu-explorer")
        self.update()

    def update(self, change=None) -> ExplorerView:
        """The callback of every control: compute (cached), draw, then show all at once."""
        view = self.state.view(self.question.value, self.k.value, self.variant.value, self.mode.value,
                               self.num_beams.value)
        if view.message:
            self.message.value = f"<p class='ragedu-message' style='color:#b00'>{html.escape(view.message)}</p>"
            self.answers.value = self.passages.value = ""
            self.token_figure.layout.display = "none"
        else:
            key = (view.question, view.k, view.variant, tuple(view.tokens), view.posterior.tobytes())
            if key not in self._figures:
                self._figures[key] = png(token_posterior_figure(view))
            image, width = self._figures[key]
            # the figure first: when the tables change in the browser, the heatmap beside them is already new
            self.token_figure.value, self.token_figure.width = image, f"{width}px"  # a stretched PNG blurs
            self.token_figure.layout.display = None
            self.message.value = ("" if view.memory_note is None else
                                  f"<p class='ragedu-memory-note' style='color:#8a5a00'>{html.escape(view.memory_note)}</p>")
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
        token_posterior_figure(view, plt.figure)
        if plt.get_backend().lower() not in NON_INTERACTIVE:  # a window to show them in
            plt.show()
    return view

