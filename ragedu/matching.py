"""An exact-match feature: which input tokens of the passage also occur in the question, and the other way round.
(notebook 2)

Dims: N encoder rows (one per question and passage) · L input tokens · D model

DrQA's reader (Chen et al. 2017, "Reading Wikipedia to Answer Open-Domain Questions") gives every passage token a
flag, "does this word occur in the question?". Here both sides get one, and the encoder adds a learned vector
for it to each token's embedding:

    e_j = embed(x_j) + m[f_j]        f_j = 1 if x_j occurs on the other side of `title / text // question`, else 0

DrQA matches a word "in its original, lowercase or lemma form". Our flags compare token ids, so the lowercase form
is matched by `align_case` first: each word of the question that occurs in the passage in another casing is written
as the passage writes it ("vienna is austria's capital" beside "Its capital is Vienna." reads "Vienna is Austria's
capital"), and a lowercased question flags, and copies from, the same tokens as a well-cased one.

It is not in the paper, whose BART-large learnt such matching in pre-training. Our small BART is trained on a
laptop; claim verification, "does the passage state the value the claim states?", stayed at chance without it.
"""
from __future__ import annotations

import re

import torch
from torch import nn

WORD = re.compile(r"[^\W\d_]+")  # a run of letters: "austria's" holds the words "austria" and "s"


def align_case(question: str, passage: str) -> str:
    """The question with each word that the passage holds in another casing written as the passage has it first."""
    forms: dict[str, str] = {}
    for word in WORD.findall(passage):
        forms.setdefault(word.lower(), word)
    return WORD.sub(lambda m: forms.get(m.group().lower(), m.group()), question)


def match_flags(ids: torch.Tensor, mask: torch.Tensor, separator: list[int]) -> torch.Tensor:
    """f for each token of `<s> title / text // question </s>`: 1 where a passage token occurs in the question
    or a question token occurs in the passage; 0 elsewhere, and everywhere in a row without the separator
    (a passage alone, a question alone)    (N, L) ids, (N, L) mask, the separator's ids -> (N, L) flags"""
    N, L = ids.shape
    n, pos = len(separator), torch.arange(L, device=ids.device)
    at = torch.ones(N, L - n + 1, dtype=torch.bool, device=ids.device)  # (N, L-n+1) the separator starts here
    for i, token in enumerate(separator):
        at &= ids[:, i:L - n + 1 + i] == token
    found = at.any(-1)                                                                # (N,)
    q = torch.where(found, (at * torch.arange(L - n + 1, device=ids.device)).amax(-1) + n, 0)  # (N,) question start
    length = mask.sum(-1)                                                             # (N,)
    passage = found[:, None] & (pos >= 1) & (pos < (q - n)[:, None])                  # (N, L) without <s> and separator
    question = found[:, None] & (pos >= q[:, None]) & (pos < (length - 1)[:, None])    # (N, L) without </s>
    same = ids[:, :, None] == ids[:, None, :]                                         # (N, L, L)
    in_question = (same & question[:, None, :]).any(-1)                               # (N, L) occurs in the question
    in_passage = (same & passage[:, None, :]).any(-1)                                 # (N, L) occurs in the passage
    return ((passage & in_question) | (question & in_passage)).long()


class MatchEmbedding(nn.Embedding):
    """m[0], m[1]: the vectors added to a token's embedding when it does not, or does, occur on the other side."""

    def __init__(self, dim: int):
        super().__init__(2, dim)
        nn.init.normal_(self.weight, std=0.02)  # BART's own init_std: the flags start as a small nudge
