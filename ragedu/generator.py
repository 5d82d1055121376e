"""The generator p_θ(y_i | x, z, y<i): BART reading a passage and the question.   (notebook 2)

Dims: B questions · K retrieved passages · L input tokens · T target tokens · V vocabulary

For each retrieved passage z the generator reads one input, `title / text // question` (as Hugging Face's
RAG does), and scores the target y token by token with teacher forcing:

    decoder input   <s>  y_1  y_2 … y_{T-1}
    predicts        y_1  y_2  y_3 … y_T        (y_T is </s>)
    log_p_yi[b, k, i] = log p_θ(y_i | x_b, z_bk, y<i)

Subtle: Hugging Face puts the question last, so a long passage can truncate the question away; we cut
the passage instead and always keep the whole question. Any Hugging Face encoder-decoder works here:
only its config's pad and decoder-start ids are used.

ragedu's own small BART may carry two additions (GeneratorConfig; both on in the shipped model, both off for
Hugging Face checkpoints): a copy head that mixes pointing at input tokens into p_θ (ragedu.copying), and an
exact-match flag added to each input token's embedding (ragedu.matching). Either way p_θ(y_i | x, z, y<i) is
a distribution over the vocabulary, so RAG's marginals and decoders are unchanged.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch
from torch import nn
from transformers import BartConfig, BartForConditionalGeneration, PreTrainedModel, PreTrainedTokenizerFast
from transformers.modeling_outputs import BaseModelOutput

from ragedu import checks
from ragedu.copying import CopyHead
from ragedu.corpus import TITLE_SEP, passage_text
from ragedu.errors import RagEduError
from ragedu.matching import MatchEmbedding, align_case, match_flags

QUESTION_SEP = " //"  # between the passage and the question, as Hugging Face's RAG generator input has it


@dataclass
class GeneratorConfig:
    """A small BART: d_model 128 with 2 encoder and 2 decoder layers trains on a laptop CPU."""

    vocab_size: int
    dim: int = 128
    layers: int = 2
    heads: int = 4
    max_len: int = 256
    copy_head: bool = False      # a pointer-generator over the input tokens (ragedu.copying), not plain BART
    match_feature: bool = False  # an exact-match flag added to each input token's embedding (ragedu.matching)


class RagBart(BartForConditionalGeneration):
    """Hugging Face's BART with ragedu's two optional parts declared: a copy head (ragedu.copying) and an
    exact-match embedding (ragedu.matching). Kept inside the BART module, so their weights are saved, loaded
    and trained with BART's own (under `copy_head.*` and `match_embedding.*`)."""

    def __init__(self, config: BartConfig, copy_head: bool = False, match_feature: bool = False):
        super().__init__(config)
        self.copy_head: CopyHead | None = CopyHead(config.d_model) if copy_head else None
        self.match_embedding: MatchEmbedding | None = MatchEmbedding(config.d_model) if match_feature else None


def new_bart(config: GeneratorConfig, pad_id: int, bos_id: int, eos_id: int, seed: int = 0) -> RagBart:
    """A randomly initialised BART; the decoder starts from <s>."""
    torch.manual_seed(seed)
    bart = BartConfig(
        vocab_size=config.vocab_size, d_model=config.dim,
        encoder_layers=config.layers, decoder_layers=config.layers,
        encoder_attention_heads=config.heads, decoder_attention_heads=config.heads,
        encoder_ffn_dim=4 * config.dim, decoder_ffn_dim=4 * config.dim,
        max_position_embeddings=config.max_len,
        pad_token_id=pad_id, bos_token_id=bos_id, eos_token_id=eos_id,
        decoder_start_token_id=bos_id, forced_bos_token_id=None, forced_eos_token_id=None,
    )
    return RagBart(bart, copy_head=config.copy_head, match_feature=config.match_feature)


def flatten_passages(x: torch.Tensor) -> torch.Tensor:
    """(B, K, ...) -> (B*K, ...): the one place the passage axis is folded into the batch."""
    B, K = x.shape[:2]
    return x.reshape(B * K, *x.shape[2:])


@dataclass
class Encoded:
    """What the encoder made of each input `title / text // question`: h(x, z), and the input it read.
    The copy head points at the input tokens, so the ids travel with the states: selecting rows of an
    Encoded selects them in all three."""

    states: torch.Tensor  # (..., L, D) h(x, z)
    ids: torch.Tensor     # (..., L)    input token ids x
    mask: torch.Tensor    # (..., L)    1 on real tokens

    def __getitem__(self, index) -> Encoded:
        """The same selection of the leading axes of all three, e.g. [b, k] or [:, None]."""
        return Encoded(self.states[index], self.ids[index], self.mask[index])

    def flat(self) -> Encoded:
        """(B, K, L, ·) -> (B*K, L, ·), `flatten_passages` of all three: one decoder row per passage."""
        return Encoded(flatten_passages(self.states), flatten_passages(self.ids), flatten_passages(self.mask))

    def beams(self, n: int) -> Encoded:
        """(S, K, L, ·) -> (S*n*K, L, ·): each of n beams of a search reading every passage of the search."""
        S, K, L, D = self.states.shape
        return Encoded(self.states[:, None].expand(S, n, K, L, D).reshape(S * n * K, L, D),
                       self.ids[:, None].expand(S, n, K, L).reshape(S * n * K, L),
                       self.mask[:, None].expand(S, n, K, L).reshape(S * n * K, L))


def shift_right(y: torch.Tensor, start_id: int | list[int]) -> torch.Tensor:
    """Teacher forcing: the decoder reads <s> y_1 … y_{T-1} to predict y_1 … y_T    (N, T) -> (N, T)
    With a decoder prefix [start, forced BOS] of P tokens it reads P - 1 more    (N, T) -> (N, P - 1 + T)"""
    prefix = torch.tensor(start_id if isinstance(start_id, list) else [start_id], device=y.device)  # (P,)
    return torch.cat([prefix.expand(len(y), -1), y[:, :-1]], dim=1)


class Generator(nn.Module):
    """A Hugging Face encoder-decoder and its tokenizer, with RAG's input format."""

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerFast,
                 max_input_len: int = 160, max_question_len: int = 80,
                 title_sep: str = TITLE_SEP, question_sep: str = QUESTION_SEP):
        super().__init__()
        if model.config.vocab_size < len(tokenizer):
            raise ValueError(f"the tokenizer has {len(tokenizer)} tokens but the generator only "
                             f"{model.config.vocab_size} embeddings; they must come from one vocabulary")
        self.model = model
        self.tokenizer = tokenizer
        self.max_input_len = max_input_len
        self.max_question_len = max_question_len
        self.title_sep = title_sep        # between a passage's title and its text
        self.question_sep = question_sep  # between the passage and " question"
        self.pad_id = model.config.pad_token_id
        self.start_id = model.config.decoder_start_token_id
        # what the decoder reads before y_1: its start token, then any token its generation config forces
        # (BART-large: </s> <s>). Forced tokens are given, never scored. Set by ragedu.hf for released models.
        self.decoder_prefix = [self.start_id]

    @property
    def copy_head(self) -> CopyHead | None:
        """The pointer-generator's head when this generator has one (ragedu.copying), else None: plain BART."""
        return self.model.copy_head if isinstance(self.model, RagBart) else None

    @property
    def match_embedding(self) -> MatchEmbedding | None:
        """The exact-match feature's two vectors when this generator has them (ragedu.matching), else None."""
        return self.model.match_embedding if isinstance(self.model, RagBart) else None

    @property
    def device(self) -> torch.device:
        """Where the weights are; every tensor this generator builds goes there."""
        return self.model.device

    def passage_text(self, title: str, text: str) -> str:
        """What the generator reads of passage z, before the question: `title / text //`"""
        return passage_text(title, text, self.title_sep) + self.question_sep

    def _tokens(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False).input_ids

    @property
    def max_positions(self) -> int:
        """How many tokens BART's learned position embeddings hold (encoder and decoder alike)."""
        return getattr(self.model.config, "max_position_embeddings", None) or 10**9

    @property
    def max_target_len(self) -> int:
        """The longest y (</s> included) the decoder's positions hold: it reads the prefix and y_1 … y_{T-1}."""
        return self.max_positions - len(self.decoder_prefix) + 1

    @property
    def separator_tokens(self) -> list[int]:
        """The tokens of ` //`, between the passage and the question"""
        return self._tokens(self.question_sep)

    def question_tokens(self, question: str) -> list[int]:
        ids = self._tokens(" " + question.strip())
        if len(ids) > self.max_question_len:
            raise RagEduError(f"question is {len(ids)} tokens long; at most {self.max_question_len} are allowed: "
                              f"{question[:60]!r}…")
        return ids

    def context_inputs(self, titles: list[list[str]], texts: list[list[str]],
                       questions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids of `title / text // question` for every passage    -> (B, K, L) ids and mask"""
        rows, separator = [], self.separator_tokens   # tokenized once, not per cut passage
        for b, question in enumerate(questions):
            aligned = self.match_embedding is not None  # the lowercase match (ragedu.matching.align_case)
            x = None if aligned else self.question_tokens(question)
            for title, text in zip(titles[b], texts[b]):
                z = self._tokens(self.passage_text(title, text))
                if aligned:  # the question as this passage writes its words: tokenized once per passage
                    x = self.question_tokens(align_case(question, title + " " + text))
                budget = self.max_input_len - 2 - len(x)  # room left for the passage beside <s>, </s>
                if len(z) > budget:  # cut the passage's text, not x, nor the separator before x
                    z = z[:budget - len(separator)] + separator
                rows.append([self.tokenizer.bos_token_id, *z, *x, self.tokenizer.eos_token_id])
        ids, mask = self.pad(rows)
        checks.within("an input `title / text // question`", ids.shape[-1], self.max_positions,
                      "what the encoder's position embeddings hold; lower max_input_len")
        B, K = len(questions), len(titles[0])
        return ids.view(B, K, -1), mask.view(B, K, -1)

    def question_inputs(self, questions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """The closed-book input: the question alone, as one 'passage'    -> (B, 1, L) ids and mask"""
        rows = [[self.tokenizer.bos_token_id, *self.question_tokens(q), self.tokenizer.eos_token_id]
                for q in questions]
        ids, mask = self.pad(rows)
        return ids[:, None], mask[:, None]

    def targets(self, answers: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids of each answer followed by </s>, padded    -> (B, T) ids and mask"""
        rows = []
        for i, a in enumerate(checks.answers(answers, len(answers))):
            rows.append([*self._tokens(" " + a.strip()), self.tokenizer.eos_token_id])
            checks.within(f"answer {i}", len(rows[-1]), self.max_target_len,
                          "with </s>, what the decoder's position embeddings hold")
        return self.pad(rows)

    def pad(self, rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Ragged token lists -> (n, L) ids and mask. The mask comes from the lengths: pad may be a real token."""
        L = max(len(r) for r in rows)
        ids = torch.tensor([r + [self.pad_id] * (L - len(r)) for r in rows], dtype=torch.long, device=self.device)
        mask = torch.tensor([[1] * len(r) + [0] * (L - len(r)) for r in rows], dtype=torch.long, device=self.device)
        return ids, mask

    def log_p_yi(self, context_ids: torch.Tensor, context_mask: torch.Tensor,
                 y: torch.Tensor, y_mask: torch.Tensor) -> torch.Tensor:
        """log p_θ(y_i | x, z, y<i) for every passage and target token; 0 at padding
        (B, K, L), (B, K, L), (B, T), (B, T) -> (B, K, T)"""
        return self.log_p_yi_encoded(self.encode(context_ids, context_mask), y, y_mask)

    # ---- decoding (notebook 4): the encoder runs once per passage, then the decoder one token at a time ----

    @property
    def eos_id(self) -> int:
        """</s>: a decoded sequence ends when it produces this token."""
        return self.model.config.eos_token_id

    def encode(self, context_ids: torch.Tensor, context_mask: torch.Tensor) -> Encoded:
        """h(x, z): the encoder states of `title / text // question`, computed once per passage
        (B, K, L), (B, K, L) -> Encoded: (B, K, L, D) states, with the (B, K, L) ids and mask they read"""
        B, K, L = context_ids.shape
        ids, mask, encoder = flatten_passages(context_ids), flatten_passages(context_mask), self.model.get_encoder()
        if self.match_embedding is None:
            h = encoder(input_ids=ids, attention_mask=mask).last_hidden_state                    # (B*K, L, D)
        else:
            flags = match_flags(ids, mask, self.separator_tokens)                               # (B*K, L)
            embeds = encoder.embed_tokens(ids) + self.match_embedding(flags)                    # (B*K, L, D)
            h = encoder(inputs_embeds=embeds, attention_mask=mask).last_hidden_state
        return Encoded(h.view(B, K, L, -1), context_ids, context_mask)

    def _log_probs(self, out, rows: Encoded, start: int, y: torch.Tensor | None = None) -> torch.Tensor:
        """log p_θ(y_t | …) from decoder step `start` on, over the vocabulary or (given targets y) of y_t alone;
        with a copy head, mixed with copying    (N, L, ·) rows[, (N, T) y] -> (N, T, V) [(N, T)]"""
        log_p = out.logits[:, start:].float().log_softmax(dim=-1)
        if self.copy_head is not None:
            return self.copy_head(log_p, out.decoder_hidden_states[-1][:, start:], rows.states, rows.ids,
                                  rows.mask, y)
        return log_p if y is None else log_p.gather(-1, y[..., None]).squeeze(-1)

    def _teacher_forced(self, encoded: Encoded, y: torch.Tensor):
        """One decoder pass over the whole target under every passage, the encoder already run
        (B, K, L, D) encoded, (B, T) y -> the model's output, the B*K rows it read, y under each passage (B*K, T),
        and the step that predicts y_1"""
        B, K, L, D = encoded.states.shape
        T, P = y.shape[1], len(self.decoder_prefix)
        y_bk = flatten_passages(y[:, None].expand(B, K, T))                  # (B*K, T) same target under each z
        # Subtle: the decoder and the copy head each read their own flattened view of h, so that in training
        # their gradients reach h summed in the order the shipped model was trained with (bit for bit).
        read = encoded.flat()                                                # (B*K, L, ·)
        out = self.model(
            encoder_outputs=BaseModelOutput(last_hidden_state=read.states),  # (B*K, L, D)
            attention_mask=read.mask,
            decoder_input_ids=shift_right(y_bk, self.decoder_prefix),        # (B*K, P-1+T)
            use_cache=False, output_hidden_states=self.copy_head is not None,
        )
        return out, encoded.flat(), y_bk, P - 1

    def log_p_yi_encoded(self, encoded: Encoded, y: torch.Tensor, y_mask: torch.Tensor) -> torch.Tensor:
        """`log_p_yi` from what `encode` already computed: the same numbers, no second encoder pass
        (B, K, L, ·) encoded, (B, T), (B, T) -> (B, K, T)"""
        out, rows, y_bk, start = self._teacher_forced(encoded, y)
        log_p_yi = self._log_probs(out, rows, start, y_bk).view(*encoded.mask.shape[:2], -1)  # (B, K, T)
        return log_p_yi.masked_fill(y_mask[:, None] == 0, 0.0)                # padded positions add 0

    @torch.no_grad()
    def copy_weights(self, context_ids: torch.Tensor, context_mask: torch.Tensor,
                     y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """What the copy head does at each target token y_t, under each passage: where it points, a_t over the
        input tokens, and how much it copies, 1 − g_t (ragedu.copying)
        (B, K, L), (B, K, L), (B, T) -> (B, K, T, L) a, (B, K, T) 1 − g"""
        if self.copy_head is None:
            raise ValueError("this generator has no copy head (GeneratorConfig.copy_head is False): it only "
                             "chooses tokens from its vocabulary")
        B, K, L = context_ids.shape
        out, rows, _, start = self._teacher_forced(self.encode(context_ids, context_mask), y)
        a, _, log_not_g = self.copy_head.mix(out.decoder_hidden_states[-1][:, start:], rows.states, rows.ids, rows.mask)
        return a.view(B, K, -1, L), log_not_g.exp().view(B, K, -1)

    def next_token_log_probs(self, y_last: torch.Tensor, rows: Encoded, cache=None):
        """One decoder step for R rows, each row one (search, beam, passage):
        log p_θ(y_t | x, z, y<t)    (R, 1) last token, (R, L, ·) encoded rows h(x, z), cache of y<t
                                    -> (R, V), cache of y≤t
        The cache (past keys and values of the decoder's attention) holds each row's state, so a step
        reads one new token instead of re-running the whole prefix. Pass cache=None at the first step,
        with y_last the decoder start token: the generator reads its whole decoder prefix then."""
        if cache is None and len(self.decoder_prefix) > 1:  # e.g. </s> <s>: the forced BOS is read, not chosen
            y_last = torch.tensor([self.decoder_prefix], device=y_last.device).expand(len(y_last), -1)  # (R, P)
        out = self.model(encoder_outputs=BaseModelOutput(last_hidden_state=rows.states), attention_mask=rows.mask,
                         decoder_input_ids=y_last, use_cache=True, output_hidden_states=self.copy_head is not None,
                         **{self._cache_argument(): cache})
        cache = out.cache if hasattr(out, "cache") else out.past_key_values  # transformers ≥ 5 renamed it
        return self._log_probs(out, rows, out.logits.shape[1] - 1)[:, -1], cache

    def reorder_cache(self, cache, rows: torch.Tensor, cross_attention: bool = False):
        """After a beam step, row r continues the decoder state of row rows[r]    (R',) -> cache of R' rows
        Subtle: by default only the self-attention keys and values move. The cross-attention ones depend on
        the passage alone, and a beam never changes passage (rows[r] reads the same passage as r), so they
        are already right and are not copied. Pass cross_attention=True when the rows change in number,
        e.g. fanning one row per passage out to N beams after the first step."""
        cache.self_attention_cache.reorder_cache(rows)
        if cross_attention:
            cache.cross_attention_cache.reorder_cache(rows)
        return cache

    def _cache_argument(self) -> str:
        """The decoder-state argument's name: `cache` in transformers ≥ 5, `past_key_values` before."""
        return "cache" if "cache" in inspect.signature(self.model.forward).parameters else "past_key_values"
