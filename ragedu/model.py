"""The RAG model: retriever and generator tied together, and its training loss.   (notebooks 3 and 5)

Dims: B questions · K retrieved passages · T target tokens

    retrieve      x ─► top-K passages z, log p(z|x)                      (B, K)
    generate      (z, x) ─► log p_θ(y_i|x,z,y<i) for each z                 (B, K, T)
    marginalize   RAG-Sequence or RAG-Token log p(y|x)                     (B,)
    loss          −log p(y|x), averaged over the batch

z is latent: nothing says which passage is right. Gradient reaches the query encoder only through
log p(z|x); the document encoder and the index are fixed.
"""
from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedTokenizerFast

from ragedu import checks
from ragedu.corpus import Corpus
from ragedu.generator import Generator, GeneratorConfig, new_bart
from ragedu.marginalize import (VARIANTS, check_variant, rag_log_likelihood, rag_sequence_log_likelihood,
                                rag_token_log_likelihood)
from ragedu.retriever import EncoderConfig, Retrieved, Retriever, new_encoder


@dataclass
class RagScores:
    """Everything RAG computes for (question, answer) pairs: the data behind notebook 3's plots."""

    retrieved: Retrieved
    y: torch.Tensor                  # (B, T) target token ids, </s> last, then padding
    y_mask: torch.Tensor             # (B, T) 1 on real tokens
    log_p_z: torch.Tensor            # (B, K) log p(z|x)
    log_p_yi: torch.Tensor           # (B, K, T) log p_θ(y_i|x,z,y<i), 0 at padding
    log_p_y_sequence: torch.Tensor   # (B,) RAG-Sequence log p(y|x)
    log_p_y_token: torch.Tensor      # (B,) RAG-Token log p(y|x)

    @property
    def memory_signals(self):
        """Per question, whether the raw scores d(z)ᵀq(x) say the memory holds nothing on it (ragedu.relevance)."""
        return self.retrieved.memory_signals


Augment = Callable[[Retrieved, list[str]], tuple[Retrieved, list[str]]]   # see RagModel.loss


class RagModel(nn.Module):
    """The retriever and the generator, and what a released checkpoint said beyond its weights."""

    def __init__(self, retriever: Retriever, generator: Generator, hf_settings=None):
        super().__init__()
        self.retriever = retriever
        self.generator = generator
        self.hf_settings = hf_settings  # ragedu.hf.HfSettings for a model `from_hf` loaded; None for ragedu's own

    def generator_log_p_yi(self, retrieved: Retrieved, answers: list[str]):
        """log p_θ(y_i|x,z,y<i) for each retrieved passage    -> (B, K, T), y (B, T), y_mask (B, T)"""
        answers = checks.answers(answers, len(retrieved.questions))
        context_ids, context_mask = self.generator.context_inputs(retrieved.titles, retrieved.texts,
                                                                  retrieved.questions)
        y, y_mask = self.generator.targets(answers)
        return self.generator.log_p_yi(context_ids, context_mask, y, y_mask), y, y_mask

    def score(self, questions: list[str], answers: list[str], k: int) -> RagScores:
        """Retrieve K passages per question and score each answer under both RAG models."""
        checks.answers(answers, len(checks.questions(questions)))  # before any model runs
        retrieved = self.retriever.retrieve(questions, k)
        log_p_yi, y, y_mask = self.generator_log_p_yi(retrieved, answers)
        return RagScores(
            retrieved=retrieved, y=y, y_mask=y_mask, log_p_z=retrieved.log_p_z, log_p_yi=log_p_yi,
            log_p_y_sequence=rag_sequence_log_likelihood(retrieved.log_p_z, log_p_yi),
            log_p_y_token=rag_token_log_likelihood(retrieved.log_p_z, log_p_yi),
        )

    def loss(self, questions: list[str], answers: list[str], variant: str, k: int,
             augment: Augment | None = None) -> torch.Tensor:
        """Negative marginal log-likelihood −log p(y|x), mean over the batch, for 'sequence', 'token' or 'both'
        (the mean of the two models' losses, from one generator pass). `ragedu train` calls this very function.

        augment: what training does between retrieval and reading (ragedu.augment): (retrieved, answers) ->
        (the passages and questions as the generator reads them, the answers). p(z|x) stays the retriever's.
        """
        variants = VARIANTS if variant == "both" else (check_variant(variant),)
        retrieved = self.retriever.retrieve(questions, k)
        read, answers = (retrieved, answers) if augment is None else augment(retrieved, answers)
        log_p_yi, _, _ = self.generator_log_p_yi(read, answers)                 # (B, K, T)
        return -sum(rag_log_likelihood(v, retrieved.log_p_z, log_p_yi).mean() for v in variants) / len(variants)


def new_rag_model(corpus: Corpus, tokenizer: PreTrainedTokenizerFast, encoder: EncoderConfig,
                  generator: GeneratorConfig, seed: int = 0, progress: bool = True) -> RagModel:
    """An untrained RAG: query and document encoders start as copies of one shared encoder."""
    shared = new_encoder(encoder, seed=seed)
    retriever = Retriever.build(copy.deepcopy(shared), copy.deepcopy(shared), tokenizer, corpus,
                                progress=progress)
    bart = new_bart(generator, tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id, seed)
    return RagModel(retriever, Generator(bart, tokenizer))
