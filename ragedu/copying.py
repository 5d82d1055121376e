"""A copy head: the generator may copy a token of its input instead of choosing one from the vocabulary.   (notebook 2)

Dims: N decoder rows (one per question and passage) · T target tokens · L input tokens · D model · V vocabulary

A pointer-generator (See et al. 2017, "Get To The Point"). At each step the decoder state s_t points at the
input, a_t = softmax_j(W s_t · h_j / √D), and a gate mixes pointing with BART's own choice:

    p(y_t = w) = g_t · p_vocab(w) + (1 − g_t) · Σ_{j: x_j = w} a_tj        g_t = σ(v · [s_t; Σ_j a_tj h_j] + b)

It is not in the paper, whose BART-large copies well enough after its pre-training. Our 2+2-layer BART, trained
on a laptop, names a capital it saw in training where the passage names an unseen one; the copy head gives it
a direct way to answer with the passage's words. The mixture is still a distribution over the vocabulary, so
everything RAG does with p_θ(y_i|x,z,y<i) (both marginals, every decoder) is unchanged.
"""
from __future__ import annotations

import torch
from torch import nn


class CopyHead(nn.Module):
    """The pointer W and the gate (v, b) of a pointer-generator, over encoder states h and input ids x."""

    def __init__(self, dim: int):
        super().__init__()
        self.pointer = nn.Linear(dim, dim, bias=False)   # W
        self.gate = nn.Linear(2 * dim, 1)                 # v, b

    def mix(self, s: torch.Tensor, h: torch.Tensor, x: torch.Tensor, x_mask: torch.Tensor):
        """The pointer a_t over the input and the gate's log g_t, log(1 − g_t)
        (N, T, D) decoder states s, (N, L, D) encoder states h, (N, L) ids x and mask
            -> (N, T, L) a, (N, T, 1) log g, (N, T, 1) log(1 − g)"""
        scores = self.pointer(s) @ h.transpose(1, 2) / h.shape[-1] ** 0.5            # (N, T, L)
        a = scores.masked_fill(x_mask[:, None, :] == 0, float("-inf")).softmax(-1)   # (N, T, L) a_tj
        g = self.gate(torch.cat([s, a @ h], dim=-1))                                  # (N, T, 1) logit of g_t
        return a, nn.functional.logsigmoid(g), nn.functional.logsigmoid(-g)

    def forward(self, log_p_vocab: torch.Tensor, s: torch.Tensor, h: torch.Tensor, x: torch.Tensor,
                x_mask: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """log p(y_t = w): BART's log p_vocab mixed with copying from the input, for every w of the vocabulary,
        or, given the targets y, for w = y_t alone (teacher forcing: no (N, T, V) copy table is built)
        (N, T, V) log p_vocab, (N, T, D) s, (N, L, D) h, (N, L) ids x and mask[, (N, T) y] -> (N, T, V) [(N, T)]"""
        a, log_g, log_not_g = self.mix(s, h, x, x_mask)
        if y is None:
            copied = torch.zeros_like(log_p_vocab).scatter_add_(-1, x[:, None, :].expand_as(a), a)  # (N, T, V)
        else:
            log_p_vocab = log_p_vocab.gather(-1, y[..., None]).squeeze(-1)                # (N, T)
            copied = (a * (x[:, None, :] == y[..., None])).sum(-1)                        # (N, T) Σ_{j: x_j = y_t} a_tj
            log_g, log_not_g = log_g.squeeze(-1), log_not_g.squeeze(-1)
        # log of the copy share, -inf for tokens not in the input (the clamp keeps their gradient finite)
        log_copied = torch.where(copied > 0, copied.clamp_min(1e-30).log(), float("-inf"))
        return torch.logaddexp(log_g + log_p_vocab, log_not_g + log_copied)
