"""The explorer: type a question, move K, the variant, the decoding mode and the beam size, watch the
probabilities move.   (notebook 9)

Dims: K retrieved passages · K_max passages retrieved once per question · H hypotheses · T answer tokens

Three layers, as every view in ragedu (STYLE.md, practice 8):
    ExplorerState.view(settings)    compute: runs the model, caches, returns an ExplorerView (plain data)
    passages_html, answers_html     draw an ExplorerView: tables, p(z|x) as bars (a table redraws in no time)
    plot_token_posterior            the heatmap (ragedu.viz); outside Jupyter also plot_doc_posterior
    Explorer                        ipywidgets controls whose callbacks call ExplorerState.view
`explore(model)` opens the widget in Jupyter, and elsewhere prints the view and draws static figures.

Nothing that did not change is recomputed:
    - a question is encoded and searched once, for K_max passages. p(z|x) for K ≤ K_max is the softmax of the
      top K scores d(z)ᵀq(x): the top K of the top K_max are the top K (`top_k`).
    - RAG-Sequence is decoded once per (question, beam size), at K_max, thorough, with its hypothesis × passage
      matrix of p_θ(y|x,z). Each entry depends on one passage only, so any K and either mode is a slice of it:
          Y_K = the hypotheses found by the beams of the first K passages
          thorough  p(y|x) = Σ_{z ≤ K} p_K(z|x) p_θ(y|x,z)
          fast      the same sum over the z ≤ K whose beam found y
      (`rag_sequence_at_k`). Subtle: p_K(z|x) is renormalised over the first K passages, not sliced.
    - RAG-Token mixes the K passages at every step, so it is decoded once per (question, K, beam size).
    - the posterior heatmap is one teacher-forced pass over the shown answer's tokens per setting.
Every result is memoised by its settings, so going back to a setting seen before costs nothing.
"""
from __future__ import annotations

import html
import io
from collections import OrderedDict
from dataclasses import dataclass, replace

import numpy as np
import torch

from ragedu.decoding import MODES, RagSequenceTrace, decode
from ragedu.marginalize import VARIANTS, check_variant, sequence_posterior, token_posterior
from ragedu.model import RagModel
from ragedu.retriever import Retrieved
from ragedu.viz import plot_doc_posterior, plot_token_posterior

DEFAULT_QUESTION = "What is the capital of Austria?"
VARIANT_NAMES = {"token": "RAG-Token", "sequence": "RAG-Sequence"}
MAX_BEAMS = 6  # thorough decoding at K_max costs |Y|·K_max passes; beyond 6 a redraw takes seconds
NON_INTERACTIVE = ("agg", "pdf", "svg", "ps", "cairo", "template")  # matplotlib backends without a window


# ---------------------------------------------------------------------------------------------------------
# Compute: plain functions and a caching state object, testable without a browser
# ---------------------------------------------------------------------------------------------------------

def top_k(retrieved: Retrieved, k: int) -> Retrieved:
    """The first K of passages retrieved for a larger K, with p(z|x) renormalised over them
        log p_K(z|x) = d(z)ᵀq(x) - log Σ_{z' in top K} exp d(z')ᵀq(x)        (B, K_max) -> (B, K)
    the same as `retriever.retrieve(questions, K)`, without encoding the questions again."""
    if not isinstance(k, int) or not 1 <= k <= retrieved.k:
        raise ValueError(f"K must be an integer between 1 and the {retrieved.k} passages retrieved, got {k!r}")
    scores = retrieved.scores[:, :k]                                       # (B, K) d(z)ᵀq(x)
    return replace(retrieved, ids=[r[:k] for r in retrieved.ids], titles=[r[:k] for r in retrieved.titles],
                   texts=[r[:k] for r in retrieved.texts], rows=retrieved.rows[:, :k], d_z=retrieved.d_z[:, :k],
                   scores=scores, log_p_z=scores.log_softmax(dim=-1))


def rag_sequence_at_k(trace: RagSequenceTrace, scores: torch.Tensor, k: int, mode: str) -> tuple[list[int], float]:
    """RAG-Sequence's best answer at K ≤ K_max, from one question's thorough trace at K_max    -> (ids, log p(y|x))

    trace.log_p_y_given_z (H, K_max) holds every p_θ(y|x,z); scores (K_max,) are d(z)ᵀq(x)."""
    if mode not in MODES:
        raise ValueError(f"unknown RAG-Sequence decoding mode {mode!r}; choose one of {MODES}")
    beam = torch.tensor([[s == "beam" for s in row[:k]] for row in trace.source], dtype=torch.bool,
                        device=scores.device)                              # (H, K) found by z's own beams
    in_y = beam.any(dim=-1)                                                # (H,) y ∈ Y_K: some z ≤ K found it
    log_p_z = scores[:k].log_softmax(dim=-1)                               # (K,) renormalised over the top K
    log_p_y_given_z = trace.log_p_y_given_z[:, :k]                         # (H, K)
    if mode == "fast":                                                     # p_θ(y|x,z) := 0 off z's beam
        log_p_y_given_z = log_p_y_given_z.masked_fill(~beam, float("-inf"))
    log_p_y = torch.logsumexp(log_p_z + log_p_y_given_z, dim=-1)           # (H,) log Σ_z p(z|x) p_θ(y|x,z)
    log_p_y = log_p_y.masked_fill(~in_y, float("-inf"))
    best = int(torch.sort(log_p_y, descending=True, stable=True).indices[0])  # ties: the first found, as decode
    return trace.hypotheses[best], float(log_p_y[best])


@dataclass
class ExplorerView:
    """Everything the explorer shows for one setting of its controls: plain data, drawn by ragedu.viz."""

    question: str
    k: int
    variant: str                          # whose answer the heatmap explains: "token" or "sequence"
    mode: str                             # RAG-Sequence decoding: "thorough" or "fast"
    num_beams: int
    titles: list[str]                     # K passage titles, best first
    texts: list[str]                      # K
    p_z: list[float]                      # K   p(z|x), renormalised over the top K
    answers: dict[str, tuple[str, float]]  # variant -> (answer, p(y|x)); for fast mode its estimate
    tokens: list[str]                     # T   the shown answer's tokens, </s> last
    posterior: np.ndarray                 # (K, T) token: p(z|x,y_i,y<i); sequence: p(z|x,y≤i)
    posterior_title: str
    message: str | None = None            # set, and the rest empty, when the input cannot be answered
    memory_note: str | None = None        # ragedu.relevance's sentence when it says the memory holds nothing on x


def empty_view(question: str, k: int, variant: str, mode: str, num_beams: int, message: str) -> ExplorerView:
    return ExplorerView(question, k, variant, mode, num_beams, titles=[], texts=[], p_z=[], answers={},
                        tokens=[], posterior=np.zeros((0, 0)), posterior_title="", message=message)


class ExplorerState:
    """The explorer's computation, memoised per setting (see the module docstring for what is shared)."""

    def __init__(self, model: RagModel, k_max: int = 10, max_len: int = 20, max_cached: int = 256):
        if not isinstance(k_max, int) or not 1 <= k_max <= len(model.retriever.corpus):
            raise ValueError(f"k_max must be an integer between 1 and the corpus size, got {k_max!r}")
        self.model = model.eval()                       # no dropout: the same question gives the same numbers
        self.k_max = k_max
        self.max_len = max_len
        self.max_cached = max_cached
        self.computed: list[tuple] = []                 # the key of every computation run, oldest first
        self._cache: OrderedDict[tuple, object] = OrderedDict()

    def _memo(self, key: tuple, compute):
        if key in self._cache:
            self._cache.move_to_end(key)
        else:
            self._cache[key] = compute()
            self.computed.append(key)
            if len(self._cache) > self.max_cached:
                self._cache.popitem(last=False)
        return self._cache[key]

    def retrieved(self, question: str) -> Retrieved:
        """The top K_max passages: the question is encoded and searched once."""
        def run():
            with torch.no_grad():  # the explorer never trains: no graph kept behind p(z|x)
                return self.model.retriever.retrieve([question], self.k_max)
        return self._memo(("retrieve", question), run)

    def token_answer(self, question: str, k: int, num_beams: int) -> tuple[list[int], float]:
        """RAG-Token beam search over K passages    -> (ids, log p(y|x))"""
        def run():
            d = decode(self.model, [question], "token", k, num_beams=num_beams, max_len=self.max_len,
                       retrieved=self.retrieved(question))
            return d.ids[0][0], d.log_p_y[0][0]
        return self._memo(("token", question, k, num_beams), run)

    def sequence_trace(self, question: str, num_beams: int) -> RagSequenceTrace:
        """RAG-Sequence at K_max, thorough, with its full hypothesis × passage matrix."""
        return self._memo(("sequence", question, num_beams), lambda: decode(
            self.model, [question], "sequence", self.k_max, mode="thorough", num_beams=num_beams,
            max_len=self.max_len, trace=True, retrieved=self.retrieved(question)).trace[0])

    def sequence_answer(self, question: str, k: int, mode: str, num_beams: int) -> tuple[list[int], float]:
        """RAG-Sequence's best answer at K in either mode, sliced from the trace    -> (ids, log p(y|x))"""
        return rag_sequence_at_k(self.sequence_trace(question, num_beams), self.retrieved(question).scores[0],
                                 k, mode)

    def posterior(self, question: str, k: int, variant: str, ids: tuple[int, ...]) -> np.ndarray:
        """Which passage each answer token leans on    -> (K, T)
            token      p(z|x,y_i,y<i) ∝ p(z|x) p_θ(y_i|x,z,y<i)
            sequence   p(z|x,y≤i)     ∝ p(z|x) Π_{j≤i} p_θ(y_j|x,z,y<j)"""
        def run():
            passages = top_k(self.retrieved(question), k)
            context_ids, context_mask = self.model.generator.context_inputs(passages.titles, passages.texts,
                                                                            passages.questions)
            y = torch.tensor([ids], device=context_ids.device)                # (1, T)
            with torch.no_grad():
                log_p_yi = self.model.generator.log_p_yi(context_ids, context_mask, y, torch.ones_like(y))  # (1, K, T)
            posterior = token_posterior if variant == "token" else sequence_posterior
            return posterior(passages.log_p_z, log_p_yi)[0].exp().numpy()   # (K, T)
        return self._memo(("posterior", question, k, variant, ids), run)

    def view(self, question: str, k: int, variant: str = "token", mode: str = "thorough",
             num_beams: int = 4) -> ExplorerView:
        """Everything the explorer shows; bad input gives a view with a message instead of an exception."""
        question = question.strip() if isinstance(question, str) else question
        try:
            if not question:
                raise ValueError("type a question first, e.g. " + repr(DEFAULT_QUESTION))
            check_variant(variant)
            if mode not in MODES:
                raise ValueError(f"unknown decoding mode {mode!r}; choose one of {MODES}")
            if not isinstance(num_beams, int) or not 1 <= num_beams <= MAX_BEAMS:
                raise ValueError(f"the beam size must be between 1 and {MAX_BEAMS}, got {num_beams!r}")
            if not isinstance(k, int) or not 1 <= k <= self.k_max:
                raise ValueError(f"K must be between 1 and {self.k_max}, got {k!r}")
            passages = top_k(self.retrieved(question), k)
            answers = {"token": self.token_answer(question, k, num_beams),
                       "sequence": self.sequence_answer(question, k, mode, num_beams)}
        except ValueError as error:  # an empty or too long question, a K out of range: say so, don't crash
            return empty_view(question, k, variant, mode, num_beams, str(error))
        ids, _ = answers[variant]
        tokenizer = self.model.generator.tokenizer
        signals = self.retrieved(question).memory_signals  # the best raw score: the same for every K
        kind = "p(z | x, y_i, y<i): the passage each token leans on" if variant == "token" else \
               "p(z | x, y≤i): the passage explaining the answer so far"
        return ExplorerView(
            question=question, k=k, variant=variant, mode=mode, num_beams=num_beams,
            titles=passages.titles[0], texts=passages.texts[0], p_z=passages.log_p_z[0].exp().tolist(),
            answers={v: (tokenizer.decode(a, skip_special_tokens=True).strip(), float(np.exp(lp)))
                     for v, (a, lp) in answers.items()},
            tokens=[tokenizer.decode([i]).strip() or "␣" for i in ids],
            posterior=self.posterior(question, k, variant, tuple(ids)),
            posterior_title=f"{VARIANT_NAMES[variant]}: {kind}",
            memory_note=signals[0].sentence if signals and signals[0].speaks else None,
        )


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
    return 0.3 + 0.085 * max((len(s) for s in labels), default=1)    # 10-point text, roughly


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
    fig = _figure(new_figure, left + max(5.5, 1.8 + 0.45 * T), 1.8 + 0.3 * K + 0.08 * max(map(len, view.tokens)),
                  left, 0.9 + 0.08 * max(map(len, view.tokens)))
    plot_token_posterior(fig.add_subplot(), view.posterior, view.tokens, view.titles, title=view.posterior_title)
    return fig


def png(fig, dpi: int = 72) -> tuple[bytes, int]:
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
