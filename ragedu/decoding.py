"""Decoding the two RAG models: RAG-Token beam search, RAG-Sequence thorough and fast decoding.   (notebook 4)

Dims: B questions · K retrieved passages · N beams · L input tokens · t tokens so far · V vocabulary
      S independent searches · R returned sequences · H hypotheses of one question

RAG-Token is an ordinary autoregressive model whose transition mixes the passages,
    p'(y_i|x,y<i) = Σ_z p(z|x) p_θ(y_i|x,z,y<i)
so one standard beam search over p' decodes it. Each step runs the decoder once for every (beam, passage)
pair, one new token per row from cached state, and marginalizes over the passages.

RAG-Sequence, p(y|x) = Σ_z p(z|x) Π_i p_θ(y_i|x,z,y<i), does not factor per token, so no single beam search
can walk it. The paper decodes it in two stages:
    1. a beam search under p_θ(y|x,z) for each passage z; the union of the beams is the hypothesis set Y
    2. thorough: p_θ(y|x,z) for every y ∈ Y and every z whose beam missed y (one batched teacher-forced pass);
                 p(y|x) = Σ_z p(z|x) p_θ(y|x,z), and the best y wins
       fast:     no extra pass; p_θ(y|x,z) := 0 wherever y was not in z's beam, so
                 p(y|x) ≈ Σ_{z: y ∈ beam(z)} p(z|x) p_θ(y|x,z)     (a y found by several beams adds up)
The per-passage searches of stage 1 are RAG-Token's search with one passage and p(z|x) = 1, so both models
share one beam search. With K = 1 the two models decode identically.

The beam search keeps Hugging Face's rules, so that its outputs agree token for token:
    - each step keeps the 2N best one-token extensions; of these, those among the best N that end (in </s>,
      or by reaching max_len) join a pool of N finished hypotheses, and the best N that did not end stay live;
    - a finished hypothesis is scored log p(y) / |y|^length_penalty, |y| counting </s>; the pool keeps the best N;
    - a search stops once its pool is full and its best live beam, scored as if it ended now, cannot beat the
      pool's worst (HF's `early_stopping=False` heuristic); all searches stop at max_len.
No forced EOS, no minimum length, no n-gram blocking: pass the matching settings to HF to compare. A forced BOS
(BART-large's </s> <s>) is part of the generator's decoder prefix: read before y_1, never chosen or scored.
"""
from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from ragedu import checks
from ragedu.errors import CostWarning, RagEduError
from ragedu.generator import Generator, flatten_passages
from ragedu.marginalize import check_variant, rag_token_marginal, token_posterior
from ragedu.model import RagModel
from ragedu.retriever import Retrieved

MODES = ("thorough", "fast")
NEG_INF = float("-inf")
RESCORE_TOKENS = 4096  # decoder tokens per slice of thorough decoding's rescoring pass (see `_rescore`)
# Thorough decoding rescores up to B·K·N·(K−1) (hypothesis, passage) pairs: K² grows fast (on 2 cores 3.0 s at
# K = 50, 12.8 s at 100, 45.7 s at 200 with N = 1). Beyond this many pairs it says so up front and shows a bar.
LARGE_RESCORE = 8_000


# ---------------------------------------------------------------------------------------------------------
# Beam search: a pure step function and the loop that calls it
# ---------------------------------------------------------------------------------------------------------

@dataclass
class BeamState:
    """S beam searches after t steps: N live beams and a pool of N finished hypotheses each."""

    tokens: torch.Tensor       # (S, N, t)        live beams y_1 … y_t (the decoder start token is not kept)
    log_p: torch.Tensor        # (S, N)           their log p'(y≤t|x); -inf for a beam that does not exist yet
    done_tokens: torch.Tensor  # (S, N, max_len)  finished hypotheses, padded
    done_len: torch.Tensor     # (S, N)           their lengths |y|, </s> included
    done_log_p: torch.Tensor   # (S, N)           their log p'(y|x)
    done_score: torch.Tensor   # (S, N)           log p'(y|x) / |y|^α, best first; -inf for an empty slot
    open: torch.Tensor         # (S,)             can a live beam still beat the pool? once False, the pool is final
    over: bool                 # every search is closed, or max_len is reached
    pad_id: int                # fills done_tokens past each |y|


def beam_start(S: int, N: int, max_len: int, pad_id: int, device: torch.device | str = "cpu") -> BeamState:
    """Before the first step: one live beam per search (the others would repeat it), an empty pool."""
    log_p = torch.full((S, N), NEG_INF, device=device)
    log_p[:, 0] = 0.0                                                       # log p(empty prefix) = 0
    return BeamState(
        tokens=torch.zeros((S, N, 0), dtype=torch.long, device=device), log_p=log_p,
        done_tokens=torch.full((S, N, max_len), pad_id, dtype=torch.long, device=device),
        done_len=torch.zeros((S, N), dtype=torch.long, device=device),
        done_log_p=torch.full((S, N), NEG_INF, device=device), done_score=torch.full((S, N), NEG_INF, device=device),
        open=torch.ones(S, dtype=torch.bool, device=device), over=False, pad_id=pad_id,
    )


def _take(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """x[s, index[s, j]] for every s, j    (S, M, ...), (S, J) -> (S, J, ...)"""
    return x[torch.arange(x.shape[0], device=x.device)[:, None], index]


def beam_step(state: BeamState, log_p_next: torch.Tensor, eos_id: int, max_len: int,
              length_penalty: float) -> tuple[BeamState, torch.Tensor]:
    """One step of S beam searches, a pure function.

    state after t tokens, log p'(y_{t+1} | x, y≤t) of each live beam    (S, N, V)
        -> state after t+1 tokens, parent (S, N): the live beam of step t each new live beam extends

        log p'(y≤t+1|x) = log p'(y≤t|x) + log p'(y_{t+1}|x,y≤t)
        score(y)        = log p'(y|x) / |y|^length_penalty          for a finished y
    """
    S, N, t = state.tokens.shape
    V = log_p_next.shape[-1]
    length = t + 1                                                          # |y| of every extension

    # 1. every live beam extended by every token, and the 2N best extensions of each search. A beam ends in
    #    </s> at most once, so at most N of the 2N end and at least N can stay live.
    log_p_ext = (state.log_p[:, :, None] + log_p_next).view(S, N * V)       # (S, N·V)
    cand_log_p, flat = log_p_ext.topk(2 * N, dim=-1)                        # (S, 2N), best first
    cand_parent, cand_token = flat // V, flat % V                           # (S, 2N)
    cand_tokens = torch.cat([_take(state.tokens, cand_parent), cand_token[..., None]], dim=-1)  # (S, 2N, t+1)
    ends = (cand_token == eos_id) | (length >= max_len)                     # (S, 2N) </s>, or out of room

    # 2. the next live beams: the N best extensions that did not end
    live = cand_log_p.masked_fill(ends, NEG_INF).topk(N, dim=-1).indices   # (S, N) positions among the 2N
    tokens, log_p = _take(cand_tokens, live), _take(cand_log_p.masked_fill(ends, NEG_INF), live)
    parent = _take(cand_parent, live)                                       # (S, N)

    # 3. the pool: extensions that ended, if among the N best, compete with it by length-penalised score.
    #    A closed search's pool is final (subtle: HF freezes it even if a later hypothesis would be better).
    among_best = torch.arange(2 * N, device=ends.device) < N               # (2N,)
    joins = ends & among_best & state.open[:, None]                         # (S, 2N)
    cand_score = (cand_log_p / (length ** length_penalty)).masked_fill(~joins, NEG_INF)  # (S, 2N)
    pool_score = torch.cat([state.done_score, cand_score], dim=1)           # (S, 3N)
    done_score, best = pool_score.topk(N, dim=-1)                           # (S, N), best first
    cand_padded = torch.nn.functional.pad(cand_tokens, (0, max_len - length), value=state.pad_id)  # (S, 2N, max_len)
    done_tokens = _take(torch.cat([state.done_tokens, cand_padded], dim=1), best)          # (S, N, max_len)
    done_len = _take(torch.cat([state.done_len, torch.full_like(cand_token, length)], dim=1), best)
    done_log_p = _take(torch.cat([state.done_log_p, cand_log_p], dim=1), best)

    # 4. can the best live beam still beat the pool's worst? HF's heuristic scores it at its current length.
    best_live = log_p[:, 0] / (length ** length_penalty)                    # (S,)
    pool_full = torch.isfinite(done_score).all(dim=-1)                      # (S,)
    worst_done = torch.where(pool_full, done_score[:, -1], torch.full_like(best_live, NEG_INF))
    is_open = state.open & (best_live > worst_done)                         # (S,)
    over = bool(length >= max_len or not is_open.any())
    return BeamState(tokens, log_p, done_tokens, done_len, done_log_p, done_score, is_open, over,
                     state.pad_id), parent


@dataclass
class BeamRecord:
    """What a trace keeps of one step of S searches (K passages mixed in each)."""

    tokens: torch.Tensor           # (S, N, t) live beams after the step
    log_p: torch.Tensor            # (S, N)    their log p'(y≤t|x)
    parent: torch.Tensor           # (S, N)    the beam of the previous step each extends
    log_p_z_given_yt: torch.Tensor  # (S, N, K) log p(z|x,y_t,y<t) of the token each live beam just chose
    done_tokens: torch.Tensor      # (S, N, max_len) the pool after the step
    done_len: torch.Tensor         # (S, N)
    done_score: torch.Tensor       # (S, N)


def beam_search(generator: Generator, h: torch.Tensor, context_mask: torch.Tensor, log_p_z: torch.Tensor,
                num_beams: int, max_len: int, length_penalty: float,
                record: bool = False) -> tuple[BeamState, list[BeamRecord]]:
    """S beam searches over p'(y_i|x,y<i) = Σ_z p(z|x) p_θ(y_i|x,z,y<i), the passages mixed in each search
    (S, K, L, D) encoder states h(x,z), (S, K, L) mask, (S, K) log p(z|x) -> final state, records if asked

    RAG-Token: S = B questions, K passages each. RAG-Sequence: S = B·K searches of one passage, p(z|x) = 1.
    The encoder ran once (h); the decoder state of every (search, beam, passage) row is cached.
    """
    S, K, L, D = h.shape
    N = num_beams
    # Decoder rows (S, n, K): each of n beams reads every passage of its search. At the first step the N beams
    # are one empty prefix, so n = 1; after it the rows fan out to n = N, and from then on only the
    # self-attention state follows the beams (cross-attention keys depend on the passage alone).
    h_rows = {1: flatten_passages(h), N: h[:, None].expand(S, N, K, L, D).reshape(S * N * K, L, D)}
    mask_rows = {1: flatten_passages(context_mask),
                 N: context_mask[:, None].expand(S, N, K, L).reshape(S * N * K, L)}
    y_last = torch.full((S * K, 1), generator.start_id, dtype=torch.long, device=h.device)  # decoder start token
    state, cache, records, n = beam_start(S, N, max_len, generator.pad_id, h.device), None, [], 1
    while not state.over:
        log_p_yi, cache = generator.next_token_log_probs(y_last, h_rows[n], mask_rows[n], cache)  # (S·n·K, V)
        log_p_yi = log_p_yi.view(S, n, K, -1).transpose(1, 2).expand(S, K, N, -1)  # (S, K, N, V) passages on dim 1
        log_p_next = rag_token_marginal(log_p_z, log_p_yi)                  # (S, N, V)  Σ_z p(z|x) p_θ(…)
        state, parent = beam_step(state, log_p_next, generator.eos_id, max_len, length_penalty)
        if record:
            records.append(_record(state, parent, log_p_z, log_p_yi))
        if state.over:
            break
        # row (s, n, k) now continues row (s, parent[s, n], k), and reads the token beam n just chose
        parent_row = parent if n == N else torch.zeros_like(parent)         # (S, N) rows of the step just run
        rows = ((torch.arange(S, device=h.device)[:, None] * n + parent_row)[:, :, None] * K
                + torch.arange(K, device=h.device)).view(-1)                                         # (S·N·K,)
        cache = generator.reorder_cache(cache, rows, cross_attention=n != N)
        y_last = state.tokens[:, :, -1, None].expand(S, N, K).reshape(S * N * K, 1)
        n = N
    return state, records


def _record(state: BeamState, parent: torch.Tensor, log_p_z: torch.Tensor, log_p_yi: torch.Tensor) -> BeamRecord:
    """log p(z|x,y_t,y<t) = log p(z|x) + log p_θ(y_t|x,z,y<t) - log Σ_z' (same)   for each live beam's new token"""
    S, K, N, V = log_p_yi.shape
    by_parent = _take(log_p_yi.transpose(1, 2), parent)                     # (S, N, K, V) each new beam's parent
    token = state.tokens[:, :, None, -1:].expand(S, N, K, 1)                # (S, N, K, 1) the token it chose
    joint = log_p_z[:, None, :] + by_parent.gather(3, token).squeeze(-1)    # (S, N, K)
    posterior = joint - torch.logsumexp(joint, dim=-1, keepdim=True)        # (S, N, K)
    return BeamRecord(state.tokens, state.log_p, parent, posterior, state.done_tokens, state.done_len,
                      state.done_score)


def finished(state: BeamState, s: int) -> list[tuple[list[int], float, float]]:
    """Search s's pool, best first: (token ids, log p'(y|x), score), empty slots left out."""
    return [(state.done_tokens[s, n, :state.done_len[s, n]].tolist(), float(state.done_log_p[s, n]),
             float(state.done_score[s, n]))
            for n in range(state.done_score.shape[1]) if torch.isfinite(state.done_score[s, n])]


# ---------------------------------------------------------------------------------------------------------
# Results and traces: plain data for the views
# ---------------------------------------------------------------------------------------------------------

@dataclass
class TokenStep:
    """One step of one question's RAG-Token beam search."""

    tokens: list[list[int]]        # N live beams after the step (beams that do not exist yet are left out)
    log_p: torch.Tensor            # (N,) their log p'(y≤t|x)
    parent: torch.Tensor           # (N,) the beam of the previous step each extends
    log_p_z_given_yt: torch.Tensor  # (N, K) which passage the token each beam just chose leans on
    done: list[list[int]]          # the finished pool after the step, best first
    done_scores: torch.Tensor      # its scores log p'(y|x) / |y|^α


@dataclass
class RagTokenTrace:
    """One question's RAG-Token decoding, step by step (notebook 4; Figure 2 of the paper for the answer)."""

    log_p_z: torch.Tensor                      # (K,) log p(z|x)
    steps: list[TokenStep]                     # one per decoding step
    ids: list[list[int]]                       # R returned sequences
    log_p_z_given_yi: list[torch.Tensor]       # R × (K, T) log p(z|x,y_i,y<i) for every returned token


@dataclass
class RagSequenceTrace:
    """One question's RAG-Sequence decoding as a hypothesis × passage matrix (notebook 4)."""

    mode: str                                  # "thorough" or "fast": which ranking chose the answer
    hypotheses: list[list[int]]                # H token ids: Y, the union of the passages' beams, as found
    texts: list[str]                           # H
    log_p_z: torch.Tensor                      # (K,) log p(z|x)
    log_p_y_given_z: torch.Tensor              # (H, K) log p_θ(y|x,z): by the beam where it found y, else rescored
    source: list[list[str]]                    # H × K "beam" | "rescored" (thorough) | "assumed zero" (fast)
    log_p_y_thorough: torch.Tensor             # (H,) log Σ_z p(z|x) p_θ(y|x,z), every entry computed
    log_p_y_fast: torch.Tensor                 # (H,) the same with p_θ(y|x,z) = 0 where no beam found y
    rank_thorough: list[int]                   # hypothesis indices, best first
    rank_fast: list[int]


@dataclass
class Decoded:
    """The best sequences for each of B questions, best first: R = num_return_sequences, fewer only if the
    searches finished fewer distinct sequences."""

    variant: str                               # "token" or "sequence"
    mode: str                                  # "beam" for RAG-Token; "thorough" or "fast" for RAG-Sequence
    ids: list[list[list[int]]]                 # B × R token ids y_1 … y_T, </s> last unless max_len cut y
    texts: list[list[str]]                     # B × R, special tokens removed, stripped
    log_p_y: list[list[float]]                 # B × R log p(y|x) under the variant (fast: its estimate)
    scores: list[list[float]]                  # B × R what the ranking used (RAG-Token: log p(y|x) / |y|^α)
    trace: list | None = None                  # B traces (RagTokenTrace or RagSequenceTrace) when asked for
    retrieved: Retrieved | None = field(default=None, repr=False)  # the passages, when `decode` retrieved them

    @property
    def answers(self) -> list[str]:
        """The best text for each question."""
        return [texts[0] if texts else "" for texts in self.texts]


# ---------------------------------------------------------------------------------------------------------
# The two decoders
# ---------------------------------------------------------------------------------------------------------

def _check(generator, log_p_z, context_ids, context_mask, num_beams, max_len, length_penalty,
           num_return_sequences) -> tuple[int, int, float, int]:
    """The settings as Python numbers (NumPy integers accepted, booleans and NaN refused), shapes checked."""
    num_beams = checks.count("num_beams", num_beams, 1, hint=" (1 is greedy decoding)")
    max_len = checks.count("max_len", max_len, 1, getattr(generator, "max_target_len", None),
                           what="the decoder's position limit ")
    length_penalty = checks.number("length_penalty", length_penalty)
    num_return_sequences = checks.count("num_return_sequences", num_return_sequences, 1, num_beams,
                                        what="num_beams=")
    if context_ids.dim() != 3 or context_mask.shape != context_ids.shape:
        raise RagEduError(f"context ids and mask must both be (B, K, L), got {tuple(context_ids.shape)} and "
                          f"{tuple(context_mask.shape)}")
    if log_p_z.dim() != 2 or log_p_z.shape != context_ids.shape[:2]:
        raise RagEduError(f"log_p_z must be (B, K) = {tuple(context_ids.shape[:2])}, one log p(z|x) per retrieved "
                          f"passage, got {tuple(log_p_z.shape)}")
    return num_beams, max_len, length_penalty, num_return_sequences


@contextlib.contextmanager
def _eval_mode(module):
    """Decode without dropout, and leave every submodule as it was found (a wrapper's flag is not its parts')."""
    was_training = [(m, m.training) for m in module.modules()]
    module.train(False)
    try:
        yield
    finally:
        for m, training in was_training:
            m.training = training


def _text(generator: Generator, ids: list[int]) -> str:
    return generator.tokenizer.decode(ids, skip_special_tokens=True).strip()


def _pad(rows: list[list[int]], pad_id: int, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Ragged token lists -> (n, T) ids and mask. The mask comes from the lengths: pad may be a real token."""
    T = max(len(r) for r in rows)
    ids = torch.full((len(rows), T), pad_id, dtype=torch.long, device=device)
    mask = torch.zeros((len(rows), T), dtype=torch.long, device=device)
    for i, r in enumerate(rows):
        ids[i, :len(r)], mask[i, :len(r)] = torch.tensor(r, dtype=torch.long, device=device), 1
    return ids, mask


@torch.no_grad()
def rag_token_decode(generator: Generator, log_p_z: torch.Tensor, context_ids: torch.Tensor,
                     context_mask: torch.Tensor, num_beams: int = 1, max_len: int = 20,
                     length_penalty: float = 1.0, num_return_sequences: int = 1, trace: bool = False) -> Decoded:
    """Beam search (greedy with num_beams=1) over RAG-Token's transition
        p'(y_i|x,y<i) = Σ_z p(z|x) p_θ(y_i|x,z,y<i)
    (B, K) log p(z|x), (B, K, L) context ids and mask -> Decoded, ranked by log p'(y|x) / |y|^length_penalty
    """
    num_beams, max_len, length_penalty, num_return_sequences = _check(
        generator, log_p_z, context_ids, context_mask, num_beams, max_len, length_penalty, num_return_sequences)
    B, K, L = context_ids.shape
    with _eval_mode(generator):
        h = generator.encode(context_ids, context_mask)                     # (B, K, L, D), once
        state, records = beam_search(generator, h, context_mask, log_p_z, num_beams, max_len, length_penalty,
                                     record=trace)
        best = [finished(state, b)[:num_return_sequences] for b in range(B)]
        traces = _token_traces(generator, h, context_mask, log_p_z, records, best) if trace else None
    return Decoded(
        variant="token", mode="beam",
        ids=[[ids for ids, _, _ in hyps] for hyps in best],
        texts=[[_text(generator, ids) for ids, _, _ in hyps] for hyps in best],
        log_p_y=[[log_p for _, log_p, _ in hyps] for hyps in best],
        scores=[[score for _, _, score in hyps] for hyps in best],
        trace=traces,
    )


def _token_traces(generator, h, context_mask, log_p_z, records, best) -> list[RagTokenTrace]:
    """Split the batched records per question; score the returned sequences' tokens against each passage."""
    B = len(best)
    question = [b for b in range(B) for _ in best[b]]                        # question of each returned y
    y, y_mask = _pad([ids for hyps in best for ids, _, _ in hyps], generator.pad_id, h.device)   # (B·R, T)
    log_p_yi = generator.log_p_yi_encoded(h[question], context_mask[question], y, y_mask)  # (B·R, K, T)
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
            log_p_z_given_yi=[posterior[i + j][:, :len(best[b][j][0])] for j in range(n)]))
        i += n
    return traces


@torch.no_grad()
def rag_sequence_decode(generator: Generator, log_p_z: torch.Tensor, context_ids: torch.Tensor,
                        context_mask: torch.Tensor, mode: str = "thorough", num_beams: int = 4, max_len: int = 20,
                        length_penalty: float = 1.0, num_return_sequences: int = 1, trace: bool = False) -> Decoded:
    """RAG-Sequence decoding: a beam search per passage, then rank their union Y by
        thorough   p(y|x) = Σ_z p(z|x) p_θ(y|x,z)                     every p_θ(y|x,z) computed
        fast       p(y|x) ≈ Σ_{z: y ∈ beam(z)} p(z|x) p_θ(y|x,z)      no pass beyond the beams
    (B, K) log p(z|x), (B, K, L) context ids and mask -> Decoded, ranked by p(y|x) (no length penalty:
    length_penalty only shapes the per-passage beams). With trace=True fast mode also runs the rescoring
    pass, so the view can show what it skipped; its ranking is unchanged.
    """
    if mode not in MODES:
        raise RagEduError(f"unknown RAG-Sequence decoding mode {mode!r}; choose one of {MODES}")
    num_beams, max_len, length_penalty, num_return_sequences = _check(
        generator, log_p_z, context_ids, context_mask, num_beams, max_len, length_penalty, num_return_sequences)
    B, K, L = context_ids.shape
    with _eval_mode(generator):
        h = generator.encode(context_ids, context_mask)                     # (B, K, L, D), once
        # 1. one search per (question, passage), p(z|x) = 1 inside it: S = B·K searches of one passage each
        state, _ = beam_search(generator, flatten_passages(h)[:, None], flatten_passages(context_mask)[:, None],
                               torch.zeros(B * K, 1, device=h.device), num_beams, max_len, length_penalty)
        Y = union_of_beams(state, B, K)
        # 2. thorough: the missing entries of the matrix, all questions in one batched pass
        rescored = _rescore(generator, h, context_mask, Y) if mode == "thorough" or trace else None
    used = rescored if mode == "thorough" else Y.log_p_y_given_z            # (B, H, K)
    log_p_y = torch.logsumexp(log_p_z[:, None, :] + used, dim=-1)           # (B, H)  log Σ_z p(z|x) p_θ(y|x,z)
    order = torch.sort(log_p_y, dim=-1, descending=True, stable=True).indices  # (B, H) best first
    best = [[(Y.ids(b, i), float(log_p_y[b, i])) for i in order[b, :num_return_sequences].tolist()
             if torch.isfinite(log_p_y[b, i])] for b in range(B)]
    return Decoded(
        variant="sequence", mode=mode,
        ids=[[ids for ids, _ in hyps] for hyps in best],
        texts=[[_text(generator, ids) for ids, _ in hyps] for hyps in best],
        log_p_y=[[log_p for _, log_p in hyps] for hyps in best],
        scores=[[log_p for _, log_p in hyps] for hyps in best],
        trace=[_sequence_trace(generator, mode, Y, rescored, log_p_z, b) for b in range(B)] if trace else None,
    )


@dataclass
class Hypotheses:
    """Y for each of B questions: the union of its K passages' beams, in the order the beams found them,
    padded to H = the largest |Y|."""

    tokens: torch.Tensor            # (B, H, max_len) token ids, padded
    length: torch.Tensor            # (B, H) |y|; 0 for a padding slot
    log_p_y_given_z: torch.Tensor   # (B, H, K) log p_θ(y|x,z) where z's beam found y, else -inf (not computed)

    def ids(self, b: int, i: int) -> list[int]:
        return self.tokens[b, i, :self.length[b, i]].tolist()

    def count(self, b: int) -> int:
        return int((self.length[b] > 0).sum())


def union_of_beams(state: BeamState, B: int, K: int) -> Hypotheses:
    """Merge the finished pools of the B·K per-passage searches into each question's hypothesis set Y.
    A sequence found by several passages' beams is one hypothesis with several known entries."""
    N, max_len = state.done_tokens.shape[1:]
    pools = state.done_tokens.view(B, K, N, max_len).tolist()
    lengths, log_p = state.done_len.view(B, K, N).tolist(), state.done_log_p.view(B, K, N)
    found = torch.isfinite(state.done_score.view(B, K, N)).tolist()
    rows, entries = [], []                                                  # Y's ids; (b, i, k, n) per beam entry
    for b in range(B):
        index: dict[tuple[int, ...], int] = {}                              # y -> its position i in Y
        for k in range(K):
            for n in range(N):
                if found[b][k][n]:
                    y = tuple(pools[b][k][n][:lengths[b][k][n]])
                    entries.append((b, index.setdefault(y, len(index)), k, n))
        rows.append(list(index))
    H = max(len(r) for r in rows)
    tokens = torch.full((B, H, max_len), state.pad_id, dtype=torch.long, device=log_p.device)
    length = torch.zeros((B, H), dtype=torch.long, device=log_p.device)
    for b, ys in enumerate(rows):
        for i, y in enumerate(ys):
            tokens[b, i, :len(y)], length[b, i] = torch.tensor(y, dtype=torch.long, device=tokens.device), len(y)
    b, i, k, n = torch.tensor(entries, dtype=torch.long, device=log_p.device).T  # (E,) each
    matrix = torch.full((B, H, K), NEG_INF, device=log_p.device).index_put((b, i, k), log_p[b, k, n])  # (B, H, K)
    return Hypotheses(tokens, length, matrix)


def _rescore(generator: Generator, h: torch.Tensor, context_mask: torch.Tensor, Y: Hypotheses) -> torch.Tensor:
    """Thorough decoding's extra work: every entry no beam computed, teacher-forced,
        log p_θ(y|x,z) = Σ_i log p_θ(y_i|x,z,y<i)
    in one decoder pass over all P missing (question, hypothesis, passage) triples    -> (B, H, K), no -inf"""
    missing = torch.isinf(Y.log_p_y_given_z) & (Y.length > 0)[:, :, None]   # (B, H, K)
    b, i, k = missing.nonzero(as_tuple=True)                                # (P,) each
    if len(b) == 0:
        return Y.log_p_y_given_z.clone()
    T = int(Y.length[b, i].max())
    y = Y.tokens[b, i, :T]                                                  # (P, T)
    y_mask = (torch.arange(T, device=y.device) < Y.length[b, i][:, None]).long()  # (P, T) from |y|: pad may be a token
    # Each triple is one decoder row reading one passage: a batch of P "questions" with K = 1 passage each.
    # Subtle: the batch is cut into slices of about RESCORE_TOKENS decoder tokens. On a CPU one giant batch
    # is ~3x slower: its (P, T, V) logits run to hundreds of MB, and every op page-faults and misses cache.
    log_p_y_given_z = torch.empty(len(b), device=h.device)                  # (P,)
    step = max(1, RESCORE_TOKENS // T)
    for s in tqdm(range(0, len(b), step), desc=f"rescoring {len(b):,} (hypothesis, passage) pairs",
                  disable=len(b) < LARGE_RESCORE, leave=False):
        rows = slice(s, s + step)
        log_p_yi = generator.log_p_yi_encoded(h[b[rows], k[rows]][:, None], context_mask[b[rows], k[rows]][:, None],
                                              y[rows], y_mask[rows])        # (rows, 1, T)
        log_p_y_given_z[rows] = log_p_yi[:, 0].sum(-1)
    return Y.log_p_y_given_z.index_put((b, i, k), log_p_y_given_z)         # (B, H, K)


def _sequence_trace(generator, mode, Y: Hypotheses, rescored, log_p_z, b: int) -> RagSequenceTrace:
    """Question b's matrix: the beams' entries, the rest rescored (computed even in fast mode, for the view)."""
    H = Y.count(b)
    beam, full = Y.log_p_y_given_z[b, :H], rescored[b, :H]                  # (H, K) each
    missed = "rescored" if mode == "thorough" else "assumed zero"
    log_p_y_thorough = torch.logsumexp(log_p_z[b] + full, dim=-1)           # (H,)
    log_p_y_fast = torch.logsumexp(log_p_z[b] + beam, dim=-1)               # (H,)
    hypotheses = [Y.ids(b, i) for i in range(H)]
    return RagSequenceTrace(
        mode=mode, hypotheses=hypotheses, texts=[_text(generator, y) for y in hypotheses], log_p_z=log_p_z[b],
        log_p_y_given_z=full,
        source=[["beam" if found else missed for found in row] for row in torch.isfinite(beam).tolist()],
        log_p_y_thorough=log_p_y_thorough, log_p_y_fast=log_p_y_fast,
        rank_thorough=torch.sort(log_p_y_thorough, descending=True, stable=True).indices.tolist(),
        rank_fast=torch.sort(log_p_y_fast, descending=True, stable=True).indices.tolist(),
    )


def rescoring_pairs(B: int, K: int, num_beams: int) -> int:
    """At most how many p_θ(y|x,z) thorough decoding computes beyond the beams: each of a question's K·N
    hypotheses under each of the K − 1 passages whose beam did not find it."""
    return B * K * num_beams * (K - 1)


def warn_rescoring_cost(B: int, K: int, num_beams: int) -> None:
    """Say before it starts when RAG-Sequence thorough decoding may take minutes (it grows as K²)."""
    pairs = rescoring_pairs(B, K, num_beams)
    if pairs >= LARGE_RESCORE:
        warnings.warn(f"RAG-Sequence thorough decoding at K={K} with {num_beams} beam(s) rescores up to "
                      f"{pairs:,} (hypothesis, passage) pairs, growing as K² (on 2 cores about 3 s at K = 50, "
                      f"46 s at K = 200, minutes beyond); fast decoding (mode='fast', ragedu ask --mode fast) "
                      "skips the rescoring", CostWarning, stacklevel=3)


def decode(model: RagModel, questions: list[str], variant: str, k: int, mode: str = "thorough",
           num_beams: int = 4, max_len: int = 20, length_penalty: float = 1.0, num_return_sequences: int = 1,
           trace: bool = False, retrieved: Retrieved | None = None) -> Decoded:
    """Retrieve K passages per question, then decode with RAG-Token or RAG-Sequence ('token' or 'sequence').
    Pass `retrieved` (a Retrieved with at least K passages) to decode from passages already retrieved:
    its top K are used and p(z|x) is renormalised over them. `mode` applies to RAG-Sequence only."""
    check_variant(variant)
    if mode not in MODES:
        raise RagEduError(f"unknown RAG-Sequence decoding mode {mode!r}; choose one of {MODES}")
    if retrieved is None:
        k = checks.count("K", k, 1, len(model.retriever.corpus), what="the corpus size ")
        retrieved = model.retriever.retrieve(questions, k)
    else:
        k = checks.count("K", k, 1, retrieved.k, hint=", the passages retrieved per question")
    if variant == "sequence" and mode == "thorough":
        warn_rescoring_cost(len(retrieved.questions), k, checks.count("num_beams", num_beams, 1))
    titles, texts = [t[:k] for t in retrieved.titles], [t[:k] for t in retrieved.texts]
    log_p_z = retrieved.scores[:, :k].detach().log_softmax(dim=-1)          # (B, K) renormalised over the top K
    context_ids, context_mask = model.generator.context_inputs(titles, texts, retrieved.questions)
    if variant == "token":
        decoded = rag_token_decode(model.generator, log_p_z, context_ids, context_mask, num_beams, max_len,
                                   length_penalty, num_return_sequences, trace)
    else:
        decoded = rag_sequence_decode(model.generator, log_p_z, context_ids, context_mask, mode, num_beams,
                                      max_len, length_penalty, num_return_sequences, trace)
    decoded.retrieved = retrieved
    return decoded
