"""What decoding returns: the answers, and traces of how the two decoders found them (plain data for the views).   (notebook 4)

Dims: K retrieved passages · N beams · R returned sequences · H hypotheses of one question · T answer tokens
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ragedu.retriever import Retrieved


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
    length_penalty: float = 1.0                # α of the finished pool's score log p'(y|x) / |y|^α


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

    @property
    def log_p_y(self) -> torch.Tensor:
        """(H,) log p(y|x) as this trace's mode ranked the hypotheses"""
        return self.log_p_y_thorough if self.mode == "thorough" else self.log_p_y_fast

    def best_of_both(self, n: int) -> list[int]:
        """The best n hypotheses of either ranking, thorough's first: the rows worth drawing."""
        return list(dict.fromkeys(self.rank_thorough[:n] + self.rank_fast[:n]))

    @property
    def found(self) -> torch.Tensor:
        """(H, K) True where z's own beam found y (`source` is 'beam')"""
        H, K = self.log_p_y_given_z.shape
        return torch.tensor([[s == "beam" for s in row] for row in self.source], dtype=torch.bool,
                            device=self.log_p_y_given_z.device).reshape(H, K)


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

