"""Decoding both RAG models: brute force on a toy vocabulary, agreement with Hugging Face, the K = 1 identity,
a hand-made case where fast and thorough decoding disagree, traces, and refusals of bad input."""
import copy
import itertools

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from torch import nn
from transformers import (BartConfig, PreTrainedTokenizerFast,
                          RagSequenceForGeneration, RagTokenForGeneration)

from ragedu.beam import BeamState, beam_search, beam_start, beam_step
from ragedu.decoding import DecodeSettings, decode, rag_sequence_decode, rag_token_decode
from ragedu.generator import Encoded, Generator, RagBart
from ragedu.marginalize import rag_sequence_log_likelihood, rag_token_log_likelihood, token_posterior
from ragedu.tokenizer import train_tokenizer
from test_reference_hf import V, random_batch, tiny_hf_rag

# Hugging Face settings that make generate() compute what our beam search computes
HF_SETTINGS = dict(forced_eos_token_id=None, forced_bos_token_id=None, min_length=0, no_repeat_ngram_size=0,
                   early_stopping=False)
PAD, EOS = 1, 2  # the tiny models' ids: bos 0, pad 1, eos 2 (also the decoder start), then content tokens


pytestmark = pytest.mark.usefixtures("one_thread")


# ---- a vocabulary of 5: <s> <pad> </s> a b ----

@pytest.fixture(scope="module")
def tokenizer5():
    word_level = Tokenizer(models.WordLevel({"<s>": 0, "<pad>": 1, "</s>": 2, "a": 3, "b": 4}, unk_token="<pad>"))
    word_level.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=word_level, bos_token="<s>", pad_token="<pad>",
                                   eos_token="</s>", unk_token="<pad>")


@pytest.fixture(scope="module", params=["bart", "copy_head"])
def toy5(tokenizer5, request):
    """A tiny random BART over 5 tokens (plain, or with a copy head: the decoders must carry the input ids
    with the encoder states), and 2 questions × 3 passages of ragged length."""
    torch.manual_seed(2)
    config = BartConfig(vocab_size=5, d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
                        max_position_embeddings=16, init_std=1.0, pad_token_id=PAD, bos_token_id=0,
                        eos_token_id=EOS, decoder_start_token_id=EOS, forced_eos_token_id=None)
    bart = RagBart(config, copy_head=request.param == "copy_head").eval()
    with torch.no_grad():
        bart.final_logits_bias[0, :2] = -3.0  # <s> and <pad> are rare outputs: answers are mostly words
    if request.param == "copy_head":
        with torch.no_grad():
            bart.copy_head.pointer.weight.mul_(4.0)  # a sharp pointer: copying weighs in every score compared
    g = torch.Generator().manual_seed(0)
    B, K, L = 2, 3, 6
    context_ids = torch.randint(3, 5, (B, K, L), generator=g)
    context_mask = torch.ones_like(context_ids)
    context_mask[0, 1, 4:], context_ids[0, 1, 4:] = 0, PAD
    log_p_z = (torch.randn(B, K, generator=g) * 2).log_softmax(-1)
    return Generator(bart, tokenizer5), log_p_z, context_ids, context_mask


def every_output(vocab=5, max_len=3):
    """Every sequence a decoder can return: ended by </s>, or cut at max_len; </s> only at the end."""
    words = [t for t in range(vocab) if t != EOS]
    ended = [list(w) + [EOS] for n in range(max_len) for w in itertools.product(words, repeat=n)]
    return ended + [list(w) for w in itertools.product(words, repeat=max_len)]


def enumerate_scores(generator, log_p_z, context_ids, context_mask, ys):
    """Both models' log p(y|x) for every y, teacher-forced: the brute-force reference    -> (B, |ys|) twice"""
    B, K, L = context_ids.shape
    y = torch.full((len(ys), max(map(len, ys))), PAD)
    y_mask = torch.zeros_like(y)
    for i, seq in enumerate(ys):
        y[i, :len(seq)], y_mask[i, :len(seq)] = torch.tensor(seq), 1
    seq, tok = [], []
    with torch.no_grad():
        for b in range(B):
            n = len(ys)
            log_p_yi = generator.log_p_yi(context_ids[b:b + 1].expand(n, K, L), context_mask[b:b + 1].expand(n, K, L),
                                          y, y_mask)                      # (|ys|, K, T)
            seq.append(rag_sequence_log_likelihood(log_p_z[b:b + 1].expand(n, K), log_p_yi))
            tok.append(rag_token_log_likelihood(log_p_z[b:b + 1].expand(n, K), log_p_yi))
    return torch.stack(seq), torch.stack(tok)


def test_a_beam_as_wide_as_the_sequences_finds_the_exact_argmax_of_each_model(toy5):
    generator, log_p_z, ids, mask = toy5
    ys = every_output()
    exact_sequence, exact_token = enumerate_scores(generator, log_p_z, ids, mask, ys)  # (B, 85) each
    wide = len(ys) + 40  # every prefix of every sequence fits in the beam; no length penalty: ranks by log p(y|x)
    token = rag_token_decode(generator, log_p_z, ids, mask,
                             DecodeSettings(num_beams=wide, max_len=3, length_penalty=0.0))
    thorough = rag_sequence_decode(generator, log_p_z, ids, mask,
                                   DecodeSettings(mode="thorough", num_beams=wide, max_len=3, length_penalty=0.0,
                                                  trace=True))
    fast = rag_sequence_decode(generator, log_p_z, ids, mask,
                               DecodeSettings(mode="fast", num_beams=wide, max_len=3, length_penalty=0.0))
    for b in range(2):
        assert token.ids[b][0] == ys[int(exact_token[b].argmax())]
        assert thorough.ids[b][0] == ys[int(exact_sequence[b].argmax())]
        assert fast.ids[b][0] == thorough.ids[b][0]  # every y is in every beam: nothing is assumed zero
        assert sorted(map(tuple, thorough.trace[b].hypotheses)) == sorted(map(tuple, ys))
        assert token.log_p_y[b][0] == pytest.approx(float(exact_token[b].max()), abs=1e-4)
        assert thorough.log_p_y[b][0] == pytest.approx(float(exact_sequence[b].max()), abs=1e-4)
    assert thorough.ids[1][0] == [4, 3, 3]  # "b a a", cut at max_len: not a trivial argmax


def test_thorough_decoding_ranks_its_hypotheses_as_enumeration_does(toy5):
    generator, log_p_z, ids, mask = toy5
    ys = every_output()
    exact_sequence, _ = enumerate_scores(generator, log_p_z, ids, mask, ys)
    decoded = rag_sequence_decode(generator, log_p_z, ids, mask,
                                  DecodeSettings(mode="thorough", num_beams=2, max_len=3, trace=True))
    for b in range(2):
        trace = decoded.trace[b]
        assert len(trace.hypotheses) < len(ys)  # a narrow beam: Y is a proper subset
        exact = torch.stack([exact_sequence[b, ys.index(y)] for y in trace.hypotheses])  # (H,)
        torch.testing.assert_close(trace.log_p_y_thorough, exact, atol=1e-4, rtol=1e-4)
        assert trace.rank_thorough == torch.sort(exact, descending=True, stable=True).indices.tolist()
        assert decoded.ids[b][0] == trace.hypotheses[trace.rank_thorough[0]]



@pytest.mark.parametrize("tokens_per_slice", [1, 5, 7])
def test_rescoring_in_slices_shortest_first_scores_every_pair_as_enumeration_does(toy5, tokens_per_slice,
                                                                                  monkeypatch):
    """The rescoring pass sorts its (hypothesis, passage) pairs by |y| and cuts them into slices padded to their
    own longest y; however small the slices, every entry is the brute-force p_θ(y|x,z)."""
    import ragedu.decoding
    generator, log_p_z, ids, mask = toy5
    ys = every_output()
    settings = DecodeSettings(mode="thorough", num_beams=3, max_len=3, trace=True)
    one_slice = rag_sequence_decode(generator, log_p_z, ids, mask, settings)
    monkeypatch.setattr(ragedu.decoding, "RESCORE_TOKENS", tokens_per_slice)
    sliced = rag_sequence_decode(generator, log_p_z, ids, mask, settings)
    exact_sequence, _ = enumerate_scores(generator, log_p_z, ids, mask, ys)
    assert len({len(y) for t in sliced.trace for y in t.hypotheses}) > 1   # slices of different lengths were cut
    for b in range(2):
        # The toy's weights (init_std 1) make logits of hundreds: float32 sums then move by up to ~0.02 with the
        # batch's shape, in the old one-slice pass as in this one. A pair scored in another pair's row is off by
        # whole units, which these tolerances catch.
        exact = torch.stack([exact_sequence[b, ys.index(y)] for y in sliced.trace[b].hypotheses])
        torch.testing.assert_close(sliced.trace[b].log_p_y_thorough, exact, atol=0.05, rtol=0)
        torch.testing.assert_close(sliced.trace[b].log_p_y_given_z, one_slice.trace[b].log_p_y_given_z, atol=0.05, rtol=0)

# ---- agreement with Hugging Face ----

@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(["a tiny vocabulary"], vocab_size=V)


def hf_rows(out, b, n_per_question, r):
    """Question b's r-th sequence from HF's (B·n, 1 + T) output, decoder start removed"""
    return out[b * n_per_question + r, 1:].tolist()


def padded(ids, length):
    return ids + [PAD] * (length - len(ids))


@pytest.mark.parametrize("num_beams,length_penalty,eos_bias", [(1, 1.0, 0.0), (1, 1.0, 3.0), (3, 1.0, 0.0),
                                                               (3, 1.0, 3.0), (4, 0.0, 3.0), (4, 2.0, 3.0)])
def test_rag_token_greedy_and_beam_equal_hugging_face(num_beams, length_penalty, eos_bias, tokenizer):
    B, K, L, max_len = 4, 3, 12, 10
    hf = tiny_hf_rag(RagTokenForGeneration, n_docs=K, seed=1)
    with torch.no_grad():
        hf.generator.final_logits_bias[0, EOS] = eos_bias  # a bias towards </s>: answers of many lengths
    context, context_mask, doc_scores, _, _ = random_batch(B, K, L, 6, PAD, EOS, EOS, seed=1)  # ragged padding
    with torch.no_grad():
        theirs = hf.generate(context_input_ids=context, context_attention_mask=context_mask, doc_scores=doc_scores,
                             n_docs=K, num_beams=num_beams, num_return_sequences=num_beams,
                             max_length=max_len + 1, length_penalty=length_penalty, **HF_SETTINGS)
    ours = rag_token_decode(Generator(hf.generator, tokenizer), doc_scores.log_softmax(-1), context.view(B, K, L),
                            context_mask.view(B, K, L),
                            DecodeSettings(num_beams=num_beams, max_len=max_len, length_penalty=length_penalty,
                                           num_return_sequences=num_beams))
    T = theirs.shape[1] - 1
    for b in range(B):
        assert [padded(y, T) for y in ours.ids[b]] == [hf_rows(theirs, b, num_beams, r) for r in range(num_beams)]
    if eos_bias and length_penalty <= 1.0:  # (a length penalty of 2 favours the longest answers)
        assert len({len(y) for ys in ours.ids for y in ys}) > 1, "the test should see answers of several lengths"


@pytest.mark.parametrize("num_beams", [1, 2, 4])
def test_thorough_best_equals_hugging_face_rag_sequence(num_beams, tokenizer):
    B, K, L, max_len = 4, 3, 12, 10
    hf = tiny_hf_rag(RagSequenceForGeneration, n_docs=K, seed=2)
    with torch.no_grad():
        hf.generator.final_logits_bias[0, EOS] = 3.0
    context, context_mask, doc_scores, _, _ = random_batch(B, K, L, 6, PAD, EOS, EOS, seed=2)
    # Subtle: HF runs its per-passage beams with attention_mask=None, so the encoder would read padding;
    # unpadded contexts make both libraries read the same input.
    context, context_mask = context.masked_fill(context_mask == 0, 7), torch.ones_like(context_mask)
    with torch.no_grad():
        theirs = hf.generate(context_input_ids=context, context_attention_mask=context_mask, doc_scores=doc_scores,
                             n_docs=K, num_beams=num_beams, max_new_tokens=max_len, do_deduplication=True,
                             **HF_SETTINGS)                                 # (B, 1 + T)
    ours = rag_sequence_decode(Generator(hf.generator, tokenizer), doc_scores.log_softmax(-1), context.view(B, K, L),
                               context_mask.view(B, K, L),
                               DecodeSettings(mode="thorough", num_beams=num_beams, max_len=max_len))
    T = theirs.shape[1] - 1
    assert [padded(ys[0], T) for ys in ours.ids] == [theirs[b, 1:].tolist() for b in range(B)]


def test_the_reference_tells_the_decoders_apart(tokenizer):
    """Guard against comparisons that cannot fail: on these inputs the two models' answers differ."""
    B, K, L = 4, 3, 12
    hf = tiny_hf_rag(RagTokenForGeneration, n_docs=K, seed=1)
    context, context_mask, doc_scores, _, _ = random_batch(B, K, L, 6, PAD, EOS, EOS, seed=1)
    args = (Generator(hf.generator, tokenizer), doc_scores.log_softmax(-1), context.view(B, K, L),
            context_mask.view(B, K, L))
    token = rag_token_decode(*args, DecodeSettings(num_beams=3, max_len=10))
    sequence = rag_sequence_decode(*args, DecodeSettings(mode="thorough", num_beams=3, max_len=10))
    assert token.ids != sequence.ids


# ---- invariants ----

def test_with_one_passage_both_models_decode_identically(tokenizer):
    B, K, L = 3, 1, 12
    hf = tiny_hf_rag(RagTokenForGeneration, n_docs=K, seed=3)
    with torch.no_grad():
        hf.generator.final_logits_bias[0, EOS] = 3.0
    context, context_mask, doc_scores, _, _ = random_batch(B, K, L, 6, PAD, EOS, EOS, seed=3)
    args = (Generator(hf.generator, tokenizer), doc_scores.log_softmax(-1), context.view(B, K, L),
            context_mask.view(B, K, L))
    # RAG-Sequence ranks by p(y|x) without length penalty; length_penalty=0 makes RAG-Token's beam do the same
    for num_beams, length_penalty in [(1, 1.0), (3, 0.0)]:
        kw = dict(num_beams=num_beams, max_len=10, length_penalty=length_penalty, num_return_sequences=num_beams)
        token = rag_token_decode(*args, DecodeSettings(**kw))
        for mode in ("thorough", "fast"):
            sequence = rag_sequence_decode(*args, DecodeSettings(mode=mode, **kw))
            assert sequence.ids == token.ids
            torch.testing.assert_close(torch.tensor(sequence.log_p_y), torch.tensor(token.log_p_y))


def test_beam_step_is_pure_and_keeps_its_shapes():
    S, N, V, max_len = 2, 3, 5, 4
    state = beam_start(S, N, max_len, PAD)
    before = {name: value.clone() for name, value in vars(state).items() if isinstance(value, torch.Tensor)}
    log_p_next = torch.randn(S, N, V, generator=torch.Generator().manual_seed(0)).log_softmax(-1)
    new, parent = beam_step(state, log_p_next, EOS, max_len, 1.0)
    assert all(torch.equal(getattr(state, name), value) for name, value in before.items())
    assert isinstance(new, BeamState) and new.tokens.shape == (S, N, 1) and parent.shape == (S, N)
    assert (parent == 0).all()  # the first step extends the one beam that exists
    assert (new.tokens[..., 0] != EOS).all()  # a live beam never holds </s>
    # the live beams are the best extensions that did not end, best first
    expected = log_p_next[:, 0].masked_fill(torch.arange(V) == EOS, float("-inf")).topk(N).values
    torch.testing.assert_close(new.log_p, expected)


def test_closed_searches_are_dropped_without_changing_any_pool(toy5, monkeypatch):
    """RAG-Sequence's per-passage searches close at different steps; unrecorded, a closed search's decoder rows
    are dropped. The pools must be those of the search that decodes every row to the end (recording keeps all)."""
    generator, _, ids, mask = toy5
    generator = copy.deepcopy(generator)
    with torch.no_grad():
        generator.model.final_logits_bias[0, EOS] += 2.0   # answers end: searches close, at different steps
    encoded = generator.encode(ids, mask)
    B, K, L, D = encoded.states.shape
    one_each = Encoded(encoded.states.reshape(B * K, 1, L, D), encoded.ids.reshape(B * K, 1, L),
                       encoded.mask.reshape(B * K, 1, L))                  # S = B·K searches of one passage
    rows_decoded, step = [], generator.next_token_log_probs
    monkeypatch.setattr(generator, "next_token_log_probs",
                        lambda y_last, rows, cache=None: rows_decoded.append(len(y_last)) or step(y_last, rows, cache))
    with torch.no_grad():
        full, _ = beam_search(generator, one_each, torch.zeros(B * K, 1), 2, 8, 1.0, record=True)
        every_row, rows_decoded[:] = list(rows_decoded), []
        pruned, _ = beam_search(generator, one_each, torch.zeros(B * K, 1), 2, 8, 1.0)
    assert set(every_row[1:]) == {B * K * 2} and rows_decoded[-1] < B * K * 2   # some searches were dropped
    for name in ("done_tokens", "done_len", "done_log_p", "done_score", "open"):
        torch.testing.assert_close(getattr(pruned, name), getattr(full, name), msg=name)


# ---- a constructed case: fast and thorough decoding choose different answers ----

class TableGenerator(nn.Module):
    """A stand-in generator whose p_θ(y_t | x, z, y<t) is a table: passage k → prefix → probabilities over
    <s> <pad> </s> a b. It offers what the decoders call (encode, next_token_log_probs, reorder_cache,
    log_p_yi_encoded) and holds a prefix per decoder row as its 'cache'."""

    def __init__(self, first_token, tokenizer):
        super().__init__()
        self.first_token = first_token  # K rows of probabilities for y_1; after it, </s> (almost) surely
        self.tokenizer, self.pad_id, self.start_id, self.eos_id = tokenizer, PAD, EOS, EOS

    def log_p(self, k, prefix):
        if not prefix:
            return torch.tensor(self.first_token[k]).log()
        return torch.tensor([1e-6, 1e-6, 1 - 4e-6, 1e-6, 1e-6]).log()

    def encode(self, context_ids, context_mask):
        return Encoded(context_ids[..., None].float(), context_ids, context_mask)  # a context's first token: its passage

    def next_token_log_probs(self, y_last, rows, cache=None):
        prefixes = [()] * len(y_last) if cache is None else [p + (t,) for p, t in zip(cache, y_last[:, 0].tolist())]
        passage = rows.ids[:, 0].tolist()
        return torch.stack([self.log_p(k, p) for k, p in zip(passage, prefixes)]), prefixes

    def reorder_cache(self, cache, rows, cross_attention=False):
        return [cache[r] for r in rows.tolist()]

    def log_p_yi_encoded(self, encoded, y, y_mask):
        B, K, L = encoded.ids.shape
        out = torch.zeros(B, K, y.shape[1])
        for b, k in itertools.product(range(B), range(K)):
            n = int(y_mask[b].sum())
            for i in range(n):
                out[b, k, i] = self.log_p(int(encoded.ids[b, k, 0]), tuple(y[b, :i].tolist()))[y[b, i]]
        return out


def test_fast_and_thorough_decoding_choose_different_answers(tokenizer5):
    """Two passages, equally likely. Passage 0 says 'a' (0.5) or 'b' (0.45); passage 1 says 'b' (0.4) or 'a' (0.3).
    Greedy beams find 'a' under passage 0 and 'b' under passage 1, so Y = {a, b}.
        fast      p(a) ≈ ½·0.5 = 0.25      p(b) ≈ ½·0.4 = 0.20               -> a
        thorough  p(a) = ½·0.5 + ½·0.3 = 0.40  p(b) = ½·0.45 + ½·0.4 = 0.425  -> b"""
    generator = TableGenerator([[0.01, 0.01, 0.03, 0.5, 0.45], [0.1, 0.1, 0.1, 0.3, 0.4]], tokenizer5)
    log_p_z = torch.tensor([[0.5, 0.5]]).log()                              # (B, K) = (1, 2)
    context_ids, context_mask = torch.tensor([[[0], [1]]]), torch.ones(1, 2, 1, dtype=torch.long)  # (1, 2, 1)
    args = (generator, log_p_z, context_ids, context_mask)
    fast = rag_sequence_decode(*args, DecodeSettings(mode="fast", num_beams=1, max_len=3, trace=True))
    thorough = rag_sequence_decode(*args, DecodeSettings(mode="thorough", num_beams=1, max_len=3, trace=True))
    assert fast.texts == [["a"]] and thorough.texts == [["b"]]
    assert fast.log_p_y[0][0] == pytest.approx(torch.tensor(0.25 * (1 - 4e-6)).log().item(), abs=1e-5)
    assert thorough.log_p_y[0][0] == pytest.approx(torch.tensor(0.425 * (1 - 4e-6)).log().item(), abs=1e-5)
    trace = fast.trace[0]
    assert trace.texts == ["a", "b"]
    assert trace.source == [["beam", "assumed zero"], ["assumed zero", "beam"]]
    assert thorough.trace[0].source == [["beam", "rescored"], ["rescored", "beam"]]
    assert trace.rank_fast == [0, 1] and trace.rank_thorough == [1, 0]
    torch.testing.assert_close(trace.log_p_y_given_z.exp(), torch.tensor([[0.5, 0.3], [0.45, 0.4]]) * (1 - 4e-6))


# ---- traces ----

def test_rag_token_trace_records_beams_and_which_passage_each_token_leans_on(toy5):
    generator, log_p_z, ids, mask = toy5
    decoded = rag_token_decode(generator, log_p_z, ids, mask,
                               DecodeSettings(num_beams=2, max_len=3, num_return_sequences=2, trace=True))
    for b, trace in enumerate(decoded.trace):
        assert trace.ids == decoded.ids[b] and 1 <= len(trace.steps) <= 3
        first = trace.steps[0]
        assert all(len(y) == 1 for y in first.tokens) and (first.parent == 0).all()
        for step in trace.steps:
            torch.testing.assert_close(step.log_p_z_given_yt.exp().sum(-1), torch.ones(len(step.tokens)))
        assert trace.steps[-1].done[:2] == decoded.ids[b]  # the final pool, best first, is what was returned
        for y, posterior in zip(trace.ids, trace.log_p_z_given_yi):
            y_t = torch.tensor([y])
            with torch.no_grad():
                log_p_yi = generator.log_p_yi(ids[b:b + 1], mask[b:b + 1], y_t, torch.ones_like(y_t))
            torch.testing.assert_close(posterior, token_posterior(log_p_z[b:b + 1], log_p_yi)[0])


def test_rag_sequence_trace_is_a_hypothesis_by_passage_matrix(toy5):
    generator, log_p_z, ids, mask = toy5
    B, K, _ = ids.shape
    decoded = rag_sequence_decode(generator, log_p_z, ids, mask,
                                  DecodeSettings(mode="fast", num_beams=2, max_len=3, trace=True))
    for b, trace in enumerate(decoded.trace):
        H = len(trace.hypotheses)
        assert trace.log_p_y_given_z.shape == (H, K) and len(trace.source) == H
        assert all("beam" in row for row in trace.source)  # every hypothesis came from some passage's beam
        assert sum(row.count("beam") for row in trace.source) <= 2 * K
        assert decoded.ids[b][0] == trace.hypotheses[trace.rank_fast[0]]
        # fast sums over the beam entries only, thorough over all: it can only be smaller
        assert (trace.log_p_y_fast <= trace.log_p_y_thorough + 1e-6).all()


# ---- the convenience entry point and bad input ----

def test_decode_retrieves_then_decodes_and_leaves_the_model_as_it_was(toy_rag):
    questions = ["Which country is Town 3 in?", "What is the population of Town 41?"]
    toy_rag.train()  # decoding must switch dropout off, and put the flags back afterwards
    try:
        token = decode(toy_rag, questions, "token", k=3, num_beams=2, max_len=5)
        again = decode(toy_rag, questions, "token", k=3, num_beams=2, max_len=5)
        assert all(m.training for m in toy_rag.modules())
    finally:
        toy_rag.eval()
    assert token.ids == again.ids and len(token.answers) == 2 and token.retrieved.k == 3
    sequence = decode(toy_rag, questions, "sequence", k=3, mode="fast", num_beams=2, max_len=5,
                      retrieved=token.retrieved)
    assert sequence.variant == "sequence" and all(isinstance(t, str) for t in sequence.answers)
    with pytest.raises(ValueError, match=r"K must be an integer between 1 and 3, the passages retrieved per question"):
        decode(toy_rag, questions, "sequence", k=4, retrieved=token.retrieved)
    with pytest.raises(ValueError, match=r"choose one of \('sequence', 'token'\)"):
        decode(toy_rag, questions, "tokens", k=3)
    with pytest.raises(ValueError, match="K must be an integer between 1 and the corpus size"):
        decode(toy_rag, questions, "token", k=1000)


@pytest.mark.parametrize("kwargs,message", [
    (dict(num_beams=0), "num_beams must be a positive integer"),
    (dict(num_beams=-2), "num_beams must be a positive integer"),
    (dict(max_len=0), "max_len must be a positive integer"),
    (dict(length_penalty=float("nan")), "length_penalty must be a finite real number"),
    (dict(mode="slow"), "unknown RAG-Sequence decoding mode 'slow'"),
    (dict(num_beams=2, num_return_sequences=3), "num_return_sequences must be an integer between 1 and num_beams=2"),
])
def test_bad_arguments_are_refused(toy5, kwargs, message):
    generator, log_p_z, ids, mask = toy5
    with pytest.raises(ValueError, match=message):  # checked once, when the settings are made
        DecodeSettings(**{"max_len": 8, **kwargs})
    for decoder in (rag_token_decode, rag_sequence_decode):
        with pytest.raises(ValueError, match="max_len must be an integer between 1 and the decoder's position limit"):
            decoder(generator, log_p_z, ids, mask, DecodeSettings(max_len=100))  # toy5 holds 16 positions


def test_mismatched_passages_and_unknown_modes_are_refused(toy5):
    generator, log_p_z, ids, mask = toy5
    with pytest.raises(ValueError, match=r"log_p_z must be \(B, K\) = \(2, 3\)"):
        rag_token_decode(generator, log_p_z[:, :2], ids, mask,
                         DecodeSettings(max_len=8))  # K larger than the passages given
