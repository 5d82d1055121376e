"""Beam search over a mixture of passages: a pure step function and the loop that calls it.   (notebook 4)

Dims: S independent searches · K passages mixed in each · N beams · L input tokens · t tokens so far · V vocabulary
      B questions · H hypotheses of one question (the union of its K passages' beams)

Each search walks p'(y_i|x,y<i) = Σ_z p(z|x) p_θ(y_i|x,z,y<i) over its K passages: RAG-Token's transition with
S = B questions, or one passage per search with p(z|x) = 1 for RAG-Sequence's per-passage beams (ragedu.decoding).

The search keeps Hugging Face's rules, so that its outputs agree token for token:
    - each step keeps the 2N best one-token extensions; of these, those among the best N that end (in </s>,
      or by reaching max_len) join a pool of N finished hypotheses, and the best N that did not end stay live;
    - a finished hypothesis is scored log p(y) / |y|^length_penalty, |y| counting </s>; the pool keeps the best N;
    - a search stops once its pool is full and its best live beam, scored as if it ended now, cannot beat the
      pool's worst (HF's `early_stopping=False` heuristic); all searches stop at max_len.
No forced EOS, no minimum length, no n-gram blocking: pass the matching settings to HF to compare. A forced BOS
(BART-large's </s> <s>) is part of the generator's decoder prefix: read before y_1, never chosen or scored.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ragedu.generator import Encoded, Generator
from ragedu.marginalize import rag_token_marginal, token_posterior

NEG_INF = float("-inf")



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


def beam_search(generator: Generator, encoded: Encoded, log_p_z: torch.Tensor, num_beams: int, max_len: int,
                length_penalty: float, record: bool = False) -> tuple[BeamState, list[BeamRecord]]:
    """S beam searches over p'(y_i|x,y<i) = Σ_z p(z|x) p_θ(y_i|x,z,y<i), the passages mixed in each search
    (S, K, L, D) encoder states h(x,z) with their ids and mask, (S, K) log p(z|x) -> final state, records if asked

    RAG-Token: S = B questions, K passages each. RAG-Sequence: S = B·K searches of one passage, p(z|x) = 1.
    The encoder ran once; the decoder state of every (search, beam, passage) row is cached.
    """
    S, K, L, D = encoded.states.shape
    N, device = num_beams, encoded.states.device
    # Decoder rows (A, n, K): each of n beams of the A searches still open reads every passage of its search. At
    # the first step the N beams are one empty prefix, so n = 1; after it the rows fan out to n = N, and from then
    # on only the self-attention state follows the beams (cross-attention keys depend on the passage alone).
    # A closed search's pool is final, so unless its steps are recorded its rows are dropped: RAG-Sequence's
    # per-passage searches close one by one, and the decoder then runs only for those still open.
    active = torch.arange(S, device=device)                                 # (A,) the searches decoded
    rows = encoded.flat()                                                   # (A·n·K, L, ·)
    y_last = torch.full((S * K, 1), generator.start_id, dtype=torch.long, device=device)  # decoder start token
    state, cache, records, n = beam_start(S, N, max_len, generator.pad_id, device), None, [], 1
    while not state.over:
        A = len(active)
        log_p_yi, cache = generator.next_token_log_probs(y_last, rows, cache)    # (A·n·K, V)
        log_p_yi = log_p_yi.view(A, n, K, -1).transpose(1, 2).expand(A, K, N, -1)  # (A, K, N, V) passages on dim 1
        log_p_next = torch.full((S, N, log_p_yi.shape[-1]), NEG_INF, device=device)  # a closed search: nothing
        log_p_next[active] = rag_token_marginal(log_p_z[active], log_p_yi)  # (S, N, V)  Σ_z p(z|x) p_θ(…)
        state, parent = beam_step(state, log_p_next, generator.eos_id, max_len, length_penalty)
        if record:
            records.append(_record(state, parent, log_p_z, log_p_yi))
        if state.over:
            break
        # row (a, n, k) now continues row (a, parent[a, n], k), and reads the token beam n just chose
        parent_row = parent[active] if n == N else torch.zeros_like(parent[active])   # (A, N) rows of the step run
        continues = ((torch.arange(A, device=device)[:, None] * n + parent_row)[:, :, None] * K
                     + torch.arange(K, device=device)).view(A, N * K)                            # (A, N·K)
        keep = torch.ones(A, dtype=torch.bool, device=device) if record else state.open[active]  # (A,)
        shrinks = not bool(keep.all())
        if shrinks or n != N:
            active = active[keep]
            rows = Encoded(encoded.states[active], encoded.ids[active], encoded.mask[active]).beams(N)
        cache = generator.reorder_cache(cache, continues[keep].view(-1), cross_attention=shrinks or n != N)
        y_last = state.tokens[active][:, :, -1, None].expand(len(active), N, K).reshape(-1, 1)
        n = N
    return state, records


def _record(state: BeamState, parent: torch.Tensor, log_p_z: torch.Tensor, log_p_yi: torch.Tensor) -> BeamRecord:
    """log p(z|x,y_t,y<t) = log p(z|x) + log p_θ(y_t|x,z,y<t) - log Σ_z' (same)   for each live beam's new token
    (ragedu.marginalize.token_posterior, one token per beam)"""
    S, K, N, V = log_p_yi.shape
    by_parent = _take(log_p_yi.transpose(1, 2), parent)                     # (S, N, K, V) each new beam's parent
    token = state.tokens[:, :, None, -1:].expand(S, N, K, 1)                # (S, N, K, 1) the token it chose
    chosen = by_parent.gather(3, token).squeeze(-1)                         # (S, N, K) log p_θ(y_t|x,z,y<t)
    posterior = token_posterior(log_p_z, chosen.transpose(1, 2)).transpose(1, 2)  # (S, N, K)
    return BeamRecord(state.tokens, state.log_p, parent, posterior, state.done_tokens, state.done_len,
                      state.done_score)


def finished(state: BeamState, s: int) -> list[tuple[list[int], float, float]]:
    """Search s's pool, best first: (token ids, log p'(y|x), score), empty slots left out."""
    return [(state.done_tokens[s, n, :state.done_len[s, n]].tolist(), float(state.done_log_p[s, n]),
             float(state.done_score[s, n]))
            for n in range(state.done_score.shape[1]) if torch.isfinite(state.done_score[s, n])]


# ---- RAG-Sequence: the finished pools of the per-passage searches merged into one hypothesis set Y ----

@dataclass
class Hypotheses:
    """Y for each of B questions: the union of its K passages' beams, in the order the beams found them,
    padded to H = the largest |Y|."""

    tokens: torch.Tensor            # (B, H, max_len) token ids, padded
    length: torch.Tensor            # (B, H) |y|; 0 for a padding slot
    log_p_y_given_z: torch.Tensor   # (B, H, K) log p_θ(y|x,z) where z's beam found y, else -inf (not computed)

    @classmethod
    def padded(cls, rows: list[list[list[int]]], max_len: int, pad_id: int,
               log_p_y_given_z: torch.Tensor) -> Hypotheses:
        """B questions' hypotheses (lists of token ids) padded into one tensor; log_p_y_given_z (B, H, K)."""
        H = max(len(r) for r in rows)
        device = log_p_y_given_z.device
        tokens = torch.full((len(rows), H, max_len), pad_id, dtype=torch.long, device=device)
        length = torch.zeros((len(rows), H), dtype=torch.long, device=device)
        for b, ys in enumerate(rows):
            for i, y in enumerate(ys):
                tokens[b, i, :len(y)], length[b, i] = torch.tensor(y, dtype=torch.long, device=device), len(y)
        return cls(tokens, length, log_p_y_given_z)

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
    b, i, k, n = torch.tensor(entries, dtype=torch.long, device=log_p.device).T  # (E,) each
    matrix = torch.full((B, H, K), NEG_INF, device=log_p.device).index_put((b, i, k), log_p[b, k, n])  # (B, H, K)
    return Hypotheses.padded(rows, max_len, state.pad_id, matrix)
