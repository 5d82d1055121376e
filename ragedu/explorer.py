"""The explorer's computation: one question, any K, variant, decoding mode and beam size, memoised.   (notebook 9)

Dims: K retrieved passages · K_max passages retrieved once per question · H hypotheses · T answer tokens

    ExplorerState.view(settings)    runs the model, caches, returns an ExplorerView (plain data)
ragedu.widgets draws an ExplorerView and wires the controls to `view`.

Nothing that did not change is recomputed:
    - a question is encoded and searched once, for K_max passages. p(z|x) for K ≤ K_max is the softmax of the
      top K scores d(z)ᵀq(x): the top K of the top K_max are the top K (`Retrieved.top`).
    - RAG-Sequence is decoded thorough, with its hypothesis × passage matrix of p_θ(y|x,z), once per (question,
      beam size) at K_c passages. Each entry depends on one passage only, so any K ≤ K_c and either mode is a
      slice of it:
          Y_K = the hypotheses found by the beams of the first K passages
          thorough  p(y|x) = Σ_{z ≤ K} p_K(z|x) p_θ(y|x,z)
          fast      the same sum over the z ≤ K whose beam found y
      (`sequence_matrix_at_k`, `rag_sequence_at_k`). Subtle: p_K(z|x) is renormalised over the first K
      passages, not sliced. A question's first search runs at K_c = K_max, so moving K costs no search; a new
      beam size searches only the K passages shown (ten searches at K = 10, one at K = 1), and the first time K
      grows past them, only the passages K_c+1 … K_max: the matrix grows by their beams' hypotheses and the
      entries between old and new hypotheses and passages (`grown_trace`), the same matrix as one search over all.
    - RAG-Token mixes the K passages at every step, so it is decoded once per (question, K, beam size).
    - the two posteriors (the paper's Figure 2, both models on the shown answer) come from one teacher-forced
      pass over the answer's tokens per (question, K, answer).
Torch computes with `threads` threads (default 1): on a busy 2-core laptop a second thread mostly waits for
the core another program holds (benchmarks/explorer.py measures both).
Every result is memoised by its settings, so going back to a setting seen before costs nothing.
"""
from __future__ import annotations

import contextlib
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch

from ragedu.beam import NEG_INF, Hypotheses
from ragedu.decoding import (DecodeSettings, check_mode, decode, eval_mode, rescore, search_each_passage,
                              sequence_trace, text_of)
from ragedu.marginalize import check_variant, sequence_posterior, token_posterior
from ragedu.model import RagModel
from ragedu.retriever import Retrieved
from ragedu.traces import RagSequenceTrace

DEFAULT_QUESTION = "What is the capital of Austria?"
MAX_BEAMS = 6  # thorough decoding at K_max costs |Y|·K_max passes; beyond 6 a redraw takes seconds


def sequence_matrix_at_k(trace: RagSequenceTrace, log_p_z: torch.Tensor, mode: str) -> RagSequenceTrace:
    """RAG-Sequence's hypothesis × passage matrix at K ≤ K_max, sliced from one question's thorough trace at K_max
    trace.log_p_y_given_z (H, K_max) holds every p_θ(y|x,z); log_p_z (K,) is p_K(z|x) (`Retrieved.top`)
    -> a RagSequenceTrace of the H_K hypotheses of Y_K (those some z ≤ K found) × the first K passages, each
    cell marked 'beam', or 'rescored' (thorough) / 'assumed zero' (fast), both rankings, `mode` the one shown."""
    check_mode(mode)
    K = log_p_z.shape[0]
    found = trace.found[:, :K]                                              # (H, K) found by z's own beams
    rows = found.any(dim=-1).nonzero().view(-1).tolist()                    # Y_K, in the order found
    return sequence_trace(mode, [trace.texts[h] for h in rows], log_p_z, trace.log_p_y_given_z[rows, :K],
                          found[rows], [trace.hypotheses[h] for h in rows])


def rag_sequence_at_k(trace: RagSequenceTrace, log_p_z: torch.Tensor, mode: str) -> tuple[list[int], float]:
    """RAG-Sequence's best answer at K ≤ K_max in either mode, from the thorough trace at K_max
        thorough  p(y|x) = Σ_{z ≤ K} p_K(z|x) p_θ(y|x,z)          fast: the same over the z whose beam found y
    -> (ids, log p(y|x)); ties go to the first found, as in `decode`."""
    matrix = sequence_matrix_at_k(trace, log_p_z, mode)
    best = (matrix.rank_thorough if mode == "thorough" else matrix.rank_fast)[0]
    return matrix.hypotheses[best], float(matrix.log_p_y[best])


@torch.no_grad()
def grown_trace(model: RagModel, retrieved: Retrieved, old: RagSequenceTrace, num_beams: int,
                max_len: int) -> RagSequenceTrace:
    """RAG-Sequence's thorough trace over all K of `retrieved` (1 question), grown from `old`, the trace over its
    first K_c: only passages K_c+1 … K are searched, and of the matrix only the entries no search or earlier
    rescoring computed (old hypotheses × new passages, new hypotheses × every passage their beams missed) are
    scored, in one rescoring pass. Y keeps decode's order (passage by passage), so this is the trace
    `decode(K, trace=True)` returns."""
    K, k_c, generator = retrieved.k, old.log_p_y_given_z.shape[1], model.generator
    device = retrieved.log_p_z.device
    context_ids, context_mask = generator.context_inputs(retrieved.titles, retrieved.texts, retrieved.questions)
    with eval_mode(generator):
        encoded = generator.encode(context_ids, context_mask)               # (1, K, L, D)
        new = search_each_passage(generator, encoded[:, k_c:], DecodeSettings(num_beams=num_beams, max_len=max_len))
        new_hypotheses = [new.ids(0, i) for i in range(new.count(0))]       # (1, H_new, K − K_c) their entries
        position = {tuple(y): i for i, y in enumerate(old.hypotheses)}
        for y in new_hypotheses:
            position.setdefault(tuple(y), len(position))
        H = len(position)
        known = torch.full((H, K), NEG_INF, device=device)                  # (H, K) -inf: not computed yet
        known[:len(old.hypotheses), :k_c] = old.log_p_y_given_z
        rows = [position[tuple(y)] for y in new_hypotheses]
        known[rows, k_c:] = new.log_p_y_given_z[0, :len(rows)]
        hypotheses = [list(y) for y in position]
        Y = Hypotheses.padded([hypotheses], max_len, generator.pad_id, known[None])
        every = rescore(generator, encoded, Y)[0]                           # (H, K)
    found = torch.zeros((H, K), dtype=torch.bool, device=device)            # (H, K) z's beam found y
    found[:len(old.hypotheses), :k_c] = old.found
    found[rows, k_c:] = torch.isfinite(new.log_p_y_given_z[0, :len(rows)])
    texts = old.texts + [text_of(generator, y) for y in hypotheses[len(old.hypotheses):]]
    return sequence_trace("thorough", texts, retrieved.log_p_z[0], every, found, hypotheses)


@contextlib.contextmanager
def torch_threads(n: int):
    """Compute with n torch threads, then give back the caller's setting."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass
class ExplorerView:
    """Everything the explorer shows for one setting of its controls: plain data, drawn by ragedu.viz."""

    question: str
    k: int
    variant: str                          # whose answer the two posteriors explain: "token" or "sequence"
    mode: str                             # RAG-Sequence decoding: "thorough" or "fast"
    num_beams: int
    titles: list[str]                     # K passage titles, best first
    texts: list[str]                      # K
    p_z: list[float]                      # K   p(z|x), renormalised over the top K
    answers: dict[str, tuple[str, float]]  # variant -> (answer, p(y|x)); for fast mode its estimate
    tokens: list[str]                     # T   the shown answer's tokens, </s> last
    posteriors: dict[str, np.ndarray]     # (K, T) each: "token" p(z|x,y_i,y<i), "sequence" p(z|x,y≤i), on that answer
    matrix: RagSequenceTrace | None       # RAG-Sequence's hypotheses Y_K × the K passages, marked for `mode`
    message: str | None = None            # set, and the rest empty, when the input cannot be answered
    memory_note: str | None = None        # ragedu.relevance's sentence when it says the memory holds nothing on x


def empty_view(question: str, k: int, variant: str, mode: str, num_beams: int, message: str) -> ExplorerView:
    return ExplorerView(question, k, variant, mode, num_beams, titles=[], texts=[], p_z=[], answers={},
                        tokens=[], posteriors={}, matrix=None, message=message)


class ExplorerState:
    """The explorer's computation, memoised per setting (see the module docstring for what is shared)."""

    def __init__(self, model: RagModel, k_max: int = 10, max_len: int = 20, max_cached: int = 256, threads: int = 1):
        if not isinstance(k_max, int) or not 1 <= k_max <= len(model.retriever.corpus):
            raise ValueError(f"k_max must be an integer between 1 and the corpus size, got {k_max!r}")
        if not isinstance(threads, int) or threads < 1:
            raise ValueError(f"threads must be a whole number of at least 1, got {threads!r}")
        self.threads = threads
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

    def sequence_trace(self, question: str, num_beams: int, k: int | None = None) -> RagSequenceTrace:
        """RAG-Sequence, thorough, with its full hypothesis × passage matrix over K_c ≥ k passages (k=None: K_max).
        A trace over K_c passages serves every K ≤ K_c; a new one runs over K_max for the question's first search,
        or grows this beam size's trace to K_max when K outgrows it (`grown_trace`), else over the k passages shown."""
        k = self.k_max if k is None else k
        served = [key[3] for key in self._cache if key[:3] == ("sequence", question, num_beams) and key[3] >= k]
        if served:
            return self._memo(("sequence", question, num_beams, min(served)), None)
        smaller = [key[3] for key in self._cache if key[:3] == ("sequence", question, num_beams)]
        if smaller:   # K outgrew this beam size's search: grow it to K_max
            old = self._memo(("sequence", question, num_beams, max(smaller)), None)
            return self._memo(("sequence", question, num_beams, self.k_max), lambda: grown_trace(
                self.model, self.retrieved(question), old, num_beams, self.max_len))
        first = not any(key[:2] == ("sequence", question) for key in self._cache)
        k_c = self.k_max if first else k
        return self._memo(("sequence", question, num_beams, k_c), lambda: decode(
            self.model, [question], "sequence", k_c, mode="thorough", num_beams=num_beams,
            max_len=self.max_len, trace=True, retrieved=self.retrieved(question)).trace[0])

    def sequence_matrix(self, question: str, k: int, mode: str, num_beams: int) -> RagSequenceTrace:
        """RAG-Sequence's hypothesis × passage matrix at K in either mode, sliced from a trace over K_c ≥ K."""
        return self._memo(("matrix", question, k, mode, num_beams), lambda: sequence_matrix_at_k(
            self.sequence_trace(question, num_beams, k), self.retrieved(question).top(k).log_p_z[0], mode))

    def sequence_answer(self, question: str, k: int, mode: str, num_beams: int) -> tuple[list[int], float]:
        """RAG-Sequence's best answer at K in either mode    -> (ids, log p(y|x))"""
        matrix = self.sequence_matrix(question, k, mode, num_beams)
        best = (matrix.rank_thorough if mode == "thorough" else matrix.rank_fast)[0]
        return matrix.hypotheses[best], float(matrix.log_p_y[best])

    def posteriors(self, question: str, k: int, ids: tuple[int, ...]) -> dict[str, np.ndarray]:
        """Which passage each token of the answer y leans on, under both models    -> variant -> (K, T)
            token      p(z|x,y_i,y<i) ∝ p(z|x) p_θ(y_i|x,z,y<i)                 a fresh choice at every token
            sequence   p(z|x,y≤i)     ∝ p(z|x) Π_{j≤i} p_θ(y_j|x,z,y<j)         evidence accumulated so far"""
        def run():
            passages = self.retrieved(question).top(k)
            context_ids, context_mask = self.model.generator.context_inputs(passages.titles, passages.texts,
                                                                            passages.questions)
            y = torch.tensor([ids], device=context_ids.device)                # (1, T)
            with torch.no_grad():
                log_p_yi = self.model.generator.log_p_yi(context_ids, context_mask, y, torch.ones_like(y))  # (1, K, T)
            return {"token": token_posterior(passages.log_p_z, log_p_yi)[0].exp().numpy(),        # (K, T)
                    "sequence": sequence_posterior(passages.log_p_z, log_p_yi)[0].exp().numpy()}  # (K, T)
        return self._memo(("posteriors", question, k, ids), run)

    def view(self, question: str, k: int, variant: str = "token", mode: str = "thorough",
             num_beams: int = 4) -> ExplorerView:
        """Everything the explorer shows; bad input gives a view with a message instead of an exception."""
        question = question.strip() if isinstance(question, str) else question
        with torch_threads(self.threads):
            return self._view(question, k, variant, mode, num_beams)

    def _view(self, question, k: int, variant: str, mode: str, num_beams: int) -> ExplorerView:
        try:
            if not question:
                raise ValueError("type a question first, e.g. " + repr(DEFAULT_QUESTION))
            check_variant(variant)
            check_mode(mode)
            if not isinstance(num_beams, int) or not 1 <= num_beams <= MAX_BEAMS:
                raise ValueError(f"the beam size must be between 1 and {MAX_BEAMS}, got {num_beams!r}")
            passages = self.retrieved(question).top(k)                     # checks 1 ≤ K ≤ K_max
            answers = {"token": self.token_answer(question, k, num_beams),
                       "sequence": self.sequence_answer(question, k, mode, num_beams)}
            matrix = self.sequence_matrix(question, k, mode, num_beams)
        except ValueError as error:  # an empty or too long question, a K out of range: say so, don't crash
            return empty_view(question, k, variant, mode, num_beams, str(error))
        ids, _ = answers[variant]
        tokenizer = self.model.generator.tokenizer
        signals = self.retrieved(question).memory_signals  # the best raw score: the same for every K
        return ExplorerView(
            question=question, k=k, variant=variant, mode=mode, num_beams=num_beams,
            titles=passages.titles[0], texts=passages.texts[0], p_z=passages.log_p_z[0].exp().tolist(),
            answers={v: (text_of(self.model.generator, a), float(np.exp(lp)))
                     for v, (a, lp) in answers.items()},
            tokens=[tokenizer.decode([i]).strip() or "␣" for i in ids],
            posteriors=self.posteriors(question, k, tuple(ids)), matrix=matrix,
            memory_note=signals[0].sentence if signals and signals[0].speaks else None,
        )

