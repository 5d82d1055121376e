"""Agreement with Hugging Face's RAG classes on tiny random models built from configs (no download).

Given the same context_input_ids and doc_scores, our per-example negative log-likelihoods must equal
RagSequenceForGeneration's and RagTokenForGeneration's losses. Their conventions, mapped onto ours:
  - labels = <decoder start> y_1 … y_T; HF feeds labels as the decoder input and scores labels[1:],
    exactly our teacher forcing of y with shift_right;
  - RAG-Sequence adds log p(z|x) at target position 1 instead of outside the product: the same sum.
"""
import pytest
import torch
from transformers import (BartConfig, BartForConditionalGeneration, DPRConfig, DPRQuestionEncoder, RagConfig,
                          RagSequenceForGeneration, RagTokenForGeneration)

from ragedu.generator import Generator
from ragedu.marginalize import rag_sequence_log_likelihood, rag_token_log_likelihood
from ragedu.tokenizer import train_tokenizer

V = 300  # the byte-level tokenizer needs 261 ids; the tiny models use 300


def tiny_hf_rag(cls, n_docs, seed=0):
    torch.manual_seed(seed)
    question_config = DPRConfig(vocab_size=V, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                intermediate_size=32)
    generator_config = BartConfig(vocab_size=V, d_model=16, encoder_layers=1, decoder_layers=2,
                                  encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32,
                                  decoder_ffn_dim=32, max_position_embeddings=64,
                                  init_std=0.3)  # pad 1, bos 0, eos 2, start 2; init_std: passages must matter
    config = RagConfig.from_question_encoder_generator_configs(question_config, generator_config, n_docs=n_docs)
    return cls(config, question_encoder=DPRQuestionEncoder(question_config),
               generator=BartForConditionalGeneration(generator_config)).eval()


def random_batch(B, K, L, T, pad, start, eos, seed=0):
    """context ids (B*K, L) with ragged padding, doc scores (B, K), labels (B, 1+T) with ragged targets"""
    g = torch.Generator().manual_seed(seed)
    context = torch.randint(3, V, (B * K, L), generator=g)
    context_mask = torch.ones_like(context)
    for row in range(B * K):
        n = int(torch.randint(L // 2, L + 1, (1,), generator=g))
        context[row, n:], context_mask[row, n:] = pad, 0
    doc_scores = torch.randn(B, K, generator=g) * 3
    y = torch.randint(3, V, (B, T), generator=g)
    for b in range(B):  # target b has T - b tokens, the last one </s>
        n = T - b
        y[b, n - 1], y[b, n:] = eos, pad
    labels = torch.cat([torch.full((B, 1), start), y], dim=1)
    return context, context_mask, doc_scores, y, labels


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(["a tiny vocabulary"], vocab_size=V)


@pytest.mark.parametrize("cls,ours", [(RagSequenceForGeneration, rag_sequence_log_likelihood),
                                      (RagTokenForGeneration, rag_token_log_likelihood)])
@pytest.mark.parametrize("K", [1, 4])
def test_our_nll_equals_hugging_face_loss(cls, ours, K, tokenizer):
    hf = tiny_hf_rag(cls, n_docs=K)
    cfg = hf.config.generator
    B, L, T = 3, 12, 6
    context, context_mask, doc_scores, y, labels = random_batch(B, K, L, T, cfg.pad_token_id,
                                                                cfg.decoder_start_token_id, cfg.eos_token_id)
    with torch.no_grad():
        hf_nll = hf(context_input_ids=context, context_attention_mask=context_mask, doc_scores=doc_scores,
                    labels=labels, n_docs=K, reduce_loss=False).loss  # (B,)
        generator = Generator(hf.generator, tokenizer)
        log_p_yi = generator.log_p_yi(context.view(B, K, L), context_mask.view(B, K, L),
                                      y, (y != cfg.pad_token_id).long())  # (B, K, T)
        our_nll = -ours(doc_scores.log_softmax(-1), log_p_yi)
    assert hf_nll.shape == (B,)
    torch.testing.assert_close(our_nll, hf_nll, atol=1e-5, rtol=1e-5)


def test_the_reference_tells_the_two_models_apart(tokenizer):
    """Guard against a test that cannot fail: swapping the variants must break agreement."""
    K, B, L, T = 4, 3, 12, 6
    hf = tiny_hf_rag(RagSequenceForGeneration, n_docs=K)
    cfg = hf.config.generator
    context, context_mask, doc_scores, y, labels = random_batch(B, K, L, T, cfg.pad_token_id,
                                                                cfg.decoder_start_token_id, cfg.eos_token_id)
    with torch.no_grad():
        hf_nll = hf(context_input_ids=context, context_attention_mask=context_mask, doc_scores=doc_scores,
                    labels=labels, n_docs=K, reduce_loss=False).loss
        log_p_yi = Generator(hf.generator, tokenizer).log_p_yi(
            context.view(B, K, L), context_mask.view(B, K, L), y, (y != cfg.pad_token_id).long())
    wrong = -rag_token_log_likelihood(doc_scores.log_softmax(-1), log_p_yi)
    assert (wrong - hf_nll).abs().max() > 1e-3
