"""Decoding the two RAG models: RAG-Token beam search, RAG-Sequence thorough and fast decoding.   (notebook 4)

Dims: B questions · K retrieved passages · N beams · L input tokens · V vocabulary · H hypotheses of one question

RAG-Token is an ordinary autoregressive model whose transition mixes the passages,
    p'(y_i|x,y<i) = Σ_z p(z|x) p_θ(y_i|x,z,y<i)
so one standard beam search over p' decodes it (ragedu.beam). Each step runs the decoder once for every
(beam, passage) pair, one new token per row from cached state, and marginalizes over the passages.

RAG-Sequence, p(y|x) = Σ_z p(z|x) Π_i p_θ(y_i|x,z,y<i), does not factor per token, so no single beam search
can walk it. The paper decodes it in two stages:
    1. a beam search under p_θ(y|x,z) for each passage z; the union of the beams is the hypothesis set Y
    2. thorough: p_θ(y|x,z) for every y ∈ Y and every z whose beam missed y (one batched teacher-forced pass);
                 p(y|x) = Σ_z p(z|x) p_θ(y|x,z), and the best y wins
       fast:     no extra pass; p_θ(y|x,z) := 0 wherever y was not in z's beam, so
                 p(y|x) ≈ Σ_{z: y ∈ beam(z)} p(z|x) p_θ(y|x,z)     (a y found by several beams adds up)
    (both rankings: ragedu.marginalize.rag_sequence_ranking)
The per-passage searches of stage 1 are RAG-Token's search with one passage and p(z|x) = 1, so both models
share one beam search. With K = 1 the two models decode identically.

How to decode is one `DecodeSettings`, checked when it is made; the results are ragedu.traces' types.
"""
from __future__ import annotations

import contextlib
import dataclasses
import warnings
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from ragedu import checks
from ragedu.beam import NEG_INF, Hypotheses, beam_search, finished, union_of_beams
from ragedu.errors import CostWarning, RagEduError
from ragedu.generator import Encoded, Generator
from ragedu.marginalize import check_variant, rag_sequence_ranking, token_posterior
from ragedu.model import RagModel
from ragedu.retriever import Retrieved
from ragedu.traces import Decoded, RagSequenceTrace, RagTokenTrace, TokenStep

MODES = ("thorough", "fast")
RESCORE_TOKENS = 512  # decoder tokens per torch thread in a slice of thorough decoding's rescoring (`rescore`)
# Thorough decoding rescores up to B·K·N·(K−1) (hypothesis, passage) pairs: K² grows fast (one question, N = 4,
# 2 cores: 4.8 s at K = 50, 48 s at 200, `benchmarks/rescore_slices.py --questions 1 -k 200 --threads 2`). Beyond
# this many pairs it says so up front and shows a bar.
LARGE_RESCORE = 8_000


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise RagEduError(f"unknown RAG-Sequence decoding mode {mode!r}; choose one of {MODES}")
    return mode


@dataclass(frozen=True)
class DecodeSettings:
    """How to decode, checked once when made: whole numbers (NumPy integers accepted, booleans and NaN refused).

    num_beams             N, beams per search; 1 is greedy decoding (the paper's QA)
    max_len               the longest answer in tokens, </s> included (also bounded by the decoder's positions)
    length_penalty        α: RAG-Token ranks finished beams by log p'(y|x) / |y|^α; RAG-Sequence's per-passage
                          beams too, but it ranks Y by p(y|x) alone
    num_return_sequences  R ≤ N answers per question, best first
    mode                  RAG-Sequence only: "thorough" or "fast"
    trace                 keep what the views draw (ragedu.traces); fast mode then also rescores, for the view
    """

    num_beams: int = 4
    max_len: int = 20
    length_penalty: float = 1.0
    num_return_sequences: int = 1
    mode: str = "thorough"
    trace: bool = False

    def __post_init__(self):
        num_beams = checks.count("num_beams", self.num_beams, 1, hint=" (1 is greedy decoding)")
        set_ = object.__setattr__  # frozen: the checked values replace the given ones once
        set_(self, "num_beams", num_beams)
        set_(self, "max_len", checks.count("max_len", self.max_len, 1))
        set_(self, "length_penalty", checks.number("length_penalty", self.length_penalty))
        set_(self, "num_return_sequences", checks.count("num_return_sequences", self.num_return_sequences, 1,
                                                        num_beams, what="num_beams="))
        check_mode(self.mode)


GREEDY = DecodeSettings(num_beams=1, mode="thorough", max_len=24)   # QA, as the paper decodes it
BEAM = DecodeSettings(num_beams=4, mode="fast", max_len=32)          # clues, as the paper's generation tasks


def _check(generator: Generator, log_p_z: torch.Tensor, context_ids: torch.Tensor, context_mask: torch.Tensor,
           settings: DecodeSettings) -> None:
    """The inputs' shapes, and the answer length against the decoder's positions."""
    checks.count("max_len", settings.max_len, 1, getattr(generator, "max_target_len", None),
                 what="the decoder's position limit ")
    if context_ids.dim() != 3 or context_mask.shape != context_ids.shape:
        raise RagEduError(f"context ids and mask must both be (B, K, L), got {tuple(context_ids.shape)} and "
                          f"{tuple(context_mask.shape)}")
    if log_p_z.dim() != 2 or log_p_z.shape != context_ids.shape[:2]:
        raise RagEduError(f"log_p_z must be (B, K) = {tuple(context_ids.shape[:2])}, one log p(z|x) per retrieved "
                          f"passage, got {tuple(log_p_z.shape)}")


@contextlib.contextmanager
def eval_mode(module):
    """Decode without dropout, and leave every submodule as it was found (a wrapper's flag is not its parts')."""
    was_training = [(m, m.training) for m in module.modules()]
    module.train(False)
    try:
        yield
    finally:
        for m, training in was_training:
            m.training = training


def text_of(generator: Generator, ids: list[int]) -> str:
    """A hypothesis's token ids as the text shown"""
    return generator.tokenizer.decode(ids, skip_special_tokens=True).strip()



# ---------------------------------------------------------------------------------------------------------
# RAG-Token
# ---------------------------------------------------------------------------------------------------------

@torch.no_grad()
def rag_token_decode(generator: Generator, log_p_z: torch.Tensor, context_ids: torch.Tensor,
                     context_mask: torch.Tensor, settings: DecodeSettings) -> Decoded:
    """Beam search (greedy with num_beams=1) over RAG-Token's transition
        p'(y_i|x,y<i) = Σ_z p(z|x) p_θ(y_i|x,z,y<i)
    (B, K) log p(z|x), (B, K, L) context ids and mask -> Decoded, ranked by log p'(y|x) / |y|^length_penalty
    """
    _check(generator, log_p_z, context_ids, context_mask, settings)
    B, K, L = context_ids.shape
    with eval_mode(generator):
        encoded = generator.encode(context_ids, context_mask)               # (B, K, L, D), once
        state, records = beam_search(generator, encoded, log_p_z, settings.num_beams, settings.max_len,
                                     settings.length_penalty, record=settings.trace)
        best = [finished(state, b)[:settings.num_return_sequences] for b in range(B)]
        traces = _token_traces(generator, encoded, log_p_z, records, best, settings.length_penalty) \
            if settings.trace else None
    return Decoded(
        variant="token", mode="beam",
        ids=[[ids for ids, _, _ in hyps] for hyps in best],
        texts=[[text_of(generator, ids) for ids, _, _ in hyps] for hyps in best],
        log_p_y=[[log_p for _, log_p, _ in hyps] for hyps in best],
        scores=[[score for _, _, score in hyps] for hyps in best],
        trace=traces,
    )


def _token_traces(generator, encoded, log_p_z, records, best, length_penalty: float) -> list[RagTokenTrace]:
    """Split the batched records per question; score the returned sequences' tokens against each passage."""
    B = len(best)
    question = [b for b in range(B) for _ in best[b]]                        # question of each returned y
    y, y_mask = generator.pad([ids for hyps in best for ids, _, _ in hyps])  # (B·R, T)
    log_p_yi = generator.log_p_yi_encoded(encoded[question], y, y_mask)    # (B·R, K, T)
    posterior = token_posterior(log_p_z[question], log_p_yi)                # (B·R, K, T)
    traces, i = [], 0
    for b in range(B):
        steps = []
        for r in records:
            alive = torch.isfinite(r.log_p[b])                                 # (N,) beams that exist
            filled = torch.isfinite(r.done_score[b])
            steps.append(TokenStep(
                tokens=r.tokens[b][alive].tolist(), log_p=r.log_p[b][alive], parent=r.parent[b][alive],
                log_p_z_given_yt=r.log_p_z_given_yt[b][alive],
                done=[r.done_tokens[b, n, :r.done_len[b, n]].tolist() for n in torch.nonzero(filled).view(-1)],
                done_scores=r.done_score[b][filled]))
        n = len(best[b])
        traces.append(RagTokenTrace(
            log_p_z=log_p_z[b], steps=steps, ids=[ids for ids, _, _ in best[b]],
            log_p_z_given_yi=[posterior[i + j][:, :len(best[b][j][0])] for j in range(n)],
            length_penalty=length_penalty))
        i += n
    return traces



# ---------------------------------------------------------------------------------------------------------
# RAG-Sequence
# ---------------------------------------------------------------------------------------------------------

@torch.no_grad()
def rag_sequence_decode(generator: Generator, log_p_z: torch.Tensor, context_ids: torch.Tensor,
                        context_mask: torch.Tensor, settings: DecodeSettings) -> Decoded:
    """RAG-Sequence decoding: a beam search per passage, then rank their union Y by
        thorough   p(y|x) = Σ_z p(z|x) p_θ(y|x,z)                     every p_θ(y|x,z) computed
        fast       p(y|x) ≈ Σ_{z: y ∈ beam(z)} p(z|x) p_θ(y|x,z)      no pass beyond the beams
    (B, K) log p(z|x), (B, K, L) context ids and mask -> Decoded, ranked by p(y|x) (no length penalty:
    length_penalty only shapes the per-passage beams). With trace=True fast mode also runs the rescoring
    pass, so the view can show what it skipped; its ranking is unchanged.
    """
    _check(generator, log_p_z, context_ids, context_mask, settings)
    mode, R = settings.mode, settings.num_return_sequences
    B = context_ids.shape[0]
    with eval_mode(generator):
        encoded = generator.encode(context_ids, context_mask)               # (B, K, L, D), once
        Y = search_each_passage(generator, encoded, settings)               # 1. (B, H, K) the beams' entries
        # 2. thorough: the missing entries of the matrix, all questions in one batched pass
        rescored = rescore(generator, encoded, Y) if mode == "thorough" or settings.trace else None
    used = rescored if mode == "thorough" else Y.log_p_y_given_z            # (B, H, K)
    log_p_y, order = rag_sequence_ranking(log_p_z, used)                    # (B, H) log Σ_z p(z|x) p_θ(y|x,z)
    best = [[(Y.ids(b, i), float(log_p_y[b, i])) for i in order[b, :R].tolist()
             if torch.isfinite(log_p_y[b, i])] for b in range(B)]
    return Decoded(
        variant="sequence", mode=mode,
        ids=[[ids for ids, _ in hyps] for hyps in best],
        texts=[[text_of(generator, ids) for ids, _ in hyps] for hyps in best],
        log_p_y=[[log_p for _, log_p in hyps] for hyps in best],
        scores=[[log_p for _, log_p in hyps] for hyps in best],
        trace=[_sequence_trace(generator, mode, Y, rescored, log_p_z, b) for b in range(B)] if settings.trace
        else None,
    )


def search_each_passage(generator: Generator, encoded: Encoded, settings: DecodeSettings) -> Hypotheses:
    """RAG-Sequence's first step: one beam search per (question, passage), p(z|x) = 1 inside it (S = B·K searches
    of one passage each), merged into each question's Y    (B, K, L, ·) encoded -> (B, H, K) the beams' entries"""
    B, K = encoded.mask.shape[:2]
    state, _ = beam_search(generator, encoded.flat()[:, None], torch.zeros(B * K, 1, device=encoded.states.device),
                           settings.num_beams, settings.max_len, settings.length_penalty)
    return union_of_beams(state, B, K)


def rescore(generator: Generator, encoded: Encoded, Y: Hypotheses) -> torch.Tensor:
    """Thorough decoding's extra work: every entry no beam computed, teacher-forced,
        log p_θ(y|x,z) = Σ_i log p_θ(y_i|x,z,y<i)
    in one decoder pass over all P missing (question, hypothesis, passage) triples    -> (B, H, K), no -inf"""
    missing = torch.isinf(Y.log_p_y_given_z) & (Y.length > 0)[:, :, None]   # (B, H, K)
    b, i, k = missing.nonzero(as_tuple=True)                                # (P,) each
    if len(b) == 0:
        return Y.log_p_y_given_z.clone()
    # Each triple is one decoder row reading one passage: a batch of P "questions" with K = 1 passage each.
    # Subtle: the triples go shortest first, in slices of about RESCORE_TOKENS decoder tokens per torch thread,
    # each padded only to its own longest y. On a CPU one giant batch is ~3x slower (its (P, T, V) logits run to
    # hundreds of MB, and every op page-faults and misses cache), and a search left open to max_len adds a few long
    # hypotheses that would pad every short one to their length. Small slices pay the decoder's cost per call
    # instead; `python benchmarks/rescore_slices.py` times a K = 30 decode at each size and thread count.
    length = Y.length[b, i]                                                 # (P,) |y|
    order = length.argsort(stable=True)                                     # (P,) shortest first
    log_p_y_given_z = torch.empty(len(b), device=length.device)             # (P,)
    tokens = RESCORE_TOKENS * torch.get_num_threads()                       # per slice
    with tqdm(total=len(b), desc=f"rescoring {len(b):,} (hypothesis, passage) pairs",
              disable=len(b) < LARGE_RESCORE, leave=False) as bar:
        s = 0
        while s < len(b):
            # as many pairs as `tokens` holds at the shortest |y| left; the longest of those pads the slice
            fits = order[s:s + max(1, tokens // int(length[order[s]]))]
            T = int(length[fits[-1]])
            rows = order[s:s + max(1, tokens // T)]                        # at most `fits`: none longer than T
            y = Y.tokens[b[rows], i[rows], :T]                              # (rows, T)
            y_mask = (torch.arange(T, device=y.device) < length[rows][:, None]).long()  # from |y|: pad may be a token
            log_p_yi = generator.log_p_yi_encoded(encoded[b[rows], k[rows]][:, None], y, y_mask)  # (rows, 1, T)
            log_p_y_given_z[rows] = log_p_yi[:, 0].sum(-1)
            s += len(rows)
            bar.update(len(rows))
    return Y.log_p_y_given_z.index_put((b, i, k), log_p_y_given_z)         # (B, H, K)



def sequence_trace(mode: str, texts: list[str], log_p_z: torch.Tensor, log_p_y_given_z: torch.Tensor,
                   found: torch.Tensor, hypotheses: list[list[int]] | None = None) -> RagSequenceTrace:
    """One question's hypothesis × passage matrix and both rankings of it: what notebook 4 draws
    H texts, (K,) log p(z|x), (H, K) every log p_θ(y|x,z), (H, K) True where z's beam found y[, H token ids]"""
    missed = "rescored" if mode == "thorough" else "assumed zero"
    log_p_y_thorough, rank_thorough = rag_sequence_ranking(log_p_z[None], log_p_y_given_z[None])
    log_p_y_fast, rank_fast = rag_sequence_ranking(log_p_z[None], log_p_y_given_z.masked_fill(~found, NEG_INF)[None])
    return RagSequenceTrace(
        mode=mode, hypotheses=hypotheses if hypotheses is not None else [[] for _ in texts], texts=texts, log_p_z=log_p_z, log_p_y_given_z=log_p_y_given_z,
        source=[["beam" if f else missed for f in row] for row in found.tolist()],
        log_p_y_thorough=log_p_y_thorough[0], log_p_y_fast=log_p_y_fast[0],
        rank_thorough=rank_thorough[0].tolist(), rank_fast=rank_fast[0].tolist(),
    )


def _sequence_trace(generator, mode, Y: Hypotheses, rescored, log_p_z, b: int) -> RagSequenceTrace:
    """Question b's matrix: the beams' entries, the rest rescored (computed even in fast mode, for the view)."""
    H = Y.count(b)
    beam = Y.log_p_y_given_z[b, :H]                                         # (H, K) -inf where no beam found y
    hypotheses = [Y.ids(b, i) for i in range(H)]
    return sequence_trace(mode, [text_of(generator, y) for y in hypotheses], log_p_z[b], rescored[b, :H],
                          torch.isfinite(beam), hypotheses)


# ---------------------------------------------------------------------------------------------------------
# Both, from questions
# ---------------------------------------------------------------------------------------------------------

def rescoring_pairs(B: int, K: int, num_beams: int) -> int:
    """At most how many p_θ(y|x,z) thorough decoding computes beyond the beams: each of a question's K·N
    hypotheses under each of the K − 1 passages whose beam did not find it."""
    return B * K * num_beams * (K - 1)


def warn_rescoring_cost(B: int, K: int, num_beams: int) -> None:
    """Say before it starts when RAG-Sequence thorough decoding may take minutes (it grows as K²)."""
    pairs = rescoring_pairs(B, K, num_beams)
    if pairs >= LARGE_RESCORE:
        warnings.warn(f"RAG-Sequence thorough decoding at K={K} with {num_beams} beam(s) rescores up to "
                      f"{pairs:,} (hypothesis, passage) pairs, growing as K² (on 2 cores, 4 beams, about 5 s a "
                      f"question at K = 50, 50 s at K = 200, minutes beyond); fast decoding (mode='fast', ragedu ask --mode fast) "
                      "skips the rescoring", CostWarning, stacklevel=3)



def decode(model: RagModel, questions: list[str], variant: str, k: int, mode: str = "thorough",
           num_beams: int = 4, max_len: int = 20, length_penalty: float = 1.0, num_return_sequences: int = 1,
           trace: bool = False, retrieved: Retrieved | None = None,
           settings: DecodeSettings | None = None) -> Decoded:
    """Retrieve K passages per question, then decode with RAG-Token or RAG-Sequence ('token' or 'sequence').
    The keywords make a DecodeSettings; or pass `settings` (then they are not used). `mode` applies to
    RAG-Sequence only. Pass `retrieved` (a Retrieved with at least K passages) to decode from passages already
    retrieved: its top K are used and p(z|x) is renormalised over them (`Retrieved.top`)."""
    check_variant(variant)
    settings = settings or DecodeSettings(num_beams=num_beams, max_len=max_len, length_penalty=length_penalty,
                                         num_return_sequences=num_return_sequences, mode=mode, trace=trace)
    if retrieved is None:
        retrieved = model.retriever.retrieve(questions, k)                  # checks 1 ≤ K ≤ the corpus size
    passages = retrieved.top(k)
    if variant == "sequence" and settings.mode == "thorough":
        warn_rescoring_cost(len(passages.questions), passages.k, settings.num_beams)
    log_p_z = passages.log_p_z.detach()                                     # (B, K) renormalised over the top K
    context_ids, context_mask = model.generator.context_inputs(passages.titles, passages.texts, passages.questions)
    decoder = rag_token_decode if variant == "token" else rag_sequence_decode
    return dataclasses.replace(decoder(model.generator, log_p_z, context_ids, context_mask, settings),
                               retrieved=retrieved)
