"""`from_hf` on tiny random Hugging Face RAG checkpoints built from configs and saved to a temporary folder
(no network): ragedu's retrieval, likelihoods and decoders equal the Hugging Face models' own numbers."""
import json
import shutil

import pytest
import torch
from tokenizers import ByteLevelBPETokenizer
from transformers import (BartTokenizerFast, BertConfig, BertModel, BertTokenizerFast, DPRConfig,
                          DPRContextEncoder, RagSequenceForGeneration, RagTokenForGeneration)

from ragedu.corpus import Passage, save_corpus
from ragedu.decoding import decode, rag_sequence_decode, rag_token_decode
import ragedu
from ragedu.hf import find_checkpoint, from_hf
from ragedu.retriever import build_index, save_index
from test_decoding import HF_SETTINGS, hf_rows, padded
from test_reference_hf import V, tiny_hf_rag

K = 3
EOS_BIAS = 1.0  # a bias towards </s>: answers of several lengths
EOS = 2  # BART: <s> 0, <pad> 1, </s> 2 (also the decoder start)
PASSAGES = [Passage(f"p{i}", f"Town {i}", f"town {i} is a city in land {i % 4} with {i * 7} people")
            for i in range(12)]
QUESTIONS = ["which land is town 3 in?", "how many people live in town 10?"]
ANSWERS = ["land 3", "70 people"]


pytestmark = pytest.mark.usefixtures("one_thread")


def bert_tokenizer(folder):
    words = sorted({w for p in PASSAGES for w in (p.title + " " + p.text).lower().split()} |
                   {w for q in QUESTIONS for w in q.replace("?", " ?").split()})
    folder.mkdir(parents=True)
    (folder / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    return BertTokenizerFast(str(folder / "vocab.txt"))


def bart_tokenizer(folder):
    """A real BartTokenizerFast over a byte-level BPE trained here: <s> 0, <pad> 1, </s> 2, then bytes, merges."""
    bpe = ByteLevelBPETokenizer()
    texts = [p.title + " / " + p.text for p in PASSAGES] + QUESTIONS + ANSWERS
    bpe.train_from_iterator(texts, vocab_size=V, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    folder.mkdir(parents=True)
    vocab, merges = bpe.save_model(str(folder))
    return BartTokenizerFast(vocab, merges)


def spread(encoder, std=0.5):
    """Random BERT weights of std 0.02 give near-identical [CLS] vectors; wider ones make p(z|x) differ."""
    with torch.no_grad():
        for name, weight in encoder.named_parameters():
            if weight.dim() == 2:
                weight.normal_(0, std)
    return encoder


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A RAG checkpoint folder as Hugging Face saves one, and a DPR context encoder folder beside it."""
    root = tmp_path_factory.mktemp("hf")
    rag = tiny_hf_rag(RagTokenForGeneration, n_docs=K, seed=4)
    with torch.no_grad():
        rag.generator.final_logits_bias[0, EOS] = EOS_BIAS
    spread(rag.question_encoder)
    rag.save_pretrained(root / "rag")
    q_tok = bert_tokenizer(root / "q_tok")
    q_tok.save_pretrained(root / "rag" / "question_encoder_tokenizer")
    bart_tokenizer(root / "g_tok").save_pretrained(root / "rag" / "generator_tokenizer")
    torch.manual_seed(5)
    ctx = DPRContextEncoder(DPRConfig(**{k: getattr(rag.config.question_encoder, k) for k in
                                         ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                                          "intermediate_size")}))
    spread(ctx).eval()
    ctx.save_pretrained(root / "ctx")
    q_tok.save_pretrained(root / "ctx")
    return root


@pytest.fixture(scope="module")
def model(checkpoint):
    return from_hf(checkpoint / "rag", passages=PASSAGES, context_encoder=checkpoint / "ctx", progress=False)


def hf_reference(checkpoint, cls):
    return cls.from_pretrained(str(checkpoint / "rag"), use_safetensors=True).eval()


def test_files_are_safetensors_and_settings_come_from_the_rag_config(checkpoint, model):
    assert (checkpoint / "rag" / "model.safetensors").exists()
    assert not (checkpoint / "rag" / "pytorch_model.bin").exists()
    s = model.hf_settings
    assert (s.n_docs, s.title_sep, s.doc_sep) == (K, " / ", " // ")
    assert s.max_combined_length == 300  # Hugging Face's default budget, longer than the tiny BART's 64 positions
    assert model.generator.max_input_len == 64


def test_retrieval_uses_dpr_vectors_and_the_question_encoders_pooler(checkpoint, model):
    """d(z) = DPRContextEncoder([CLS] title [SEP] text [SEP]).pooler_output
    q(x) = DPRQuestionEncoder(x).pooler_output"""
    ctx = DPRContextEncoder.from_pretrained(str(checkpoint / "ctx")).eval()
    tok = model.retriever.tokenizer
    with torch.no_grad():
        d = tok([p.title for p in PASSAGES], [p.text for p in PASSAGES], padding=True, return_tensors="pt")
        d_z = ctx(input_ids=d.input_ids, attention_mask=d.attention_mask).pooler_output      # (N, D)
        q = tok(QUESTIONS, padding=True, return_tensors="pt")
        hf = hf_reference(checkpoint, RagTokenForGeneration)
        q_x = hf.question_encoder(q.input_ids, attention_mask=q.attention_mask).pooler_output  # (B, D)
        retrieved = model.retriever.retrieve(QUESTIONS, K)
    torch.testing.assert_close(model.retriever.d_z, d_z, atol=1e-5, rtol=1e-5)
    top = (q_x @ d_z.T).topk(K)
    assert top.indices[0].tolist() != top.indices[1].tolist(), "the questions should retrieve differently"
    assert retrieved.rows.tolist() == top.indices.tolist()
    torch.testing.assert_close(retrieved.scores, top.values, atol=1e-5, rtol=1e-5)


def test_generator_input_is_what_a_bart_tokenizer_makes_of_hugging_faces_string(model):
    """HF's RagRetriever writes `title / text // question` and tokenizes it with <s> … </s>."""
    retrieved = model.retriever.retrieve(QUESTIONS, K)
    ids, mask = model.generator.context_inputs(retrieved.titles, retrieved.texts, QUESTIONS)  # (B, K, L)
    tok = model.generator.tokenizer
    for b, question in enumerate(QUESTIONS):
        for k in range(K):
            text = retrieved.titles[b][k] + " / " + retrieved.texts[b][k] + " // " + question
            assert ids[b, k][mask[b, k] == 1].tolist() == tok(text).input_ids


def hf_context(model, questions, k):
    """Our retrieval turned into Hugging Face's arguments    -> (B*K, L) ids and mask, (B, K) doc scores"""
    retrieved = model.retriever.retrieve(questions, k)
    ids, mask = model.generator.context_inputs(retrieved.titles, retrieved.texts, questions)
    B, K_, L = ids.shape
    return retrieved, ids.view(B * K_, L), mask.view(B * K_, L)


@pytest.mark.parametrize("cls,attribute", [(RagSequenceForGeneration, "log_p_y_sequence"),
                                           (RagTokenForGeneration, "log_p_y_token")])
def test_our_likelihoods_equal_hugging_face_losses(checkpoint, model, cls, attribute):
    hf = hf_reference(checkpoint, cls)
    with torch.no_grad():
        scores = model.score(QUESTIONS, ANSWERS, K)
        retrieved, ids, mask = hf_context(model, QUESTIONS, K)
        labels = torch.cat([torch.full((len(QUESTIONS), 1), model.generator.start_id), scores.y], dim=1)
        hf_nll = hf(context_input_ids=ids, context_attention_mask=mask, doc_scores=retrieved.scores,
                    labels=labels, n_docs=K, reduce_loss=False).loss                       # (B,)
    torch.testing.assert_close(-getattr(scores, attribute), hf_nll, atol=1e-5, rtol=1e-5)
    assert (scores.log_p_y_sequence - scores.log_p_y_token).abs().max() > 1e-4  # the two can be told apart


@pytest.mark.parametrize("num_beams", [1, 3])
def test_rag_token_decoding_equals_hugging_face_generate(checkpoint, model, num_beams):
    hf = hf_reference(checkpoint, RagTokenForGeneration)
    retrieved, ids, mask = hf_context(model, QUESTIONS, K)
    B, max_len = len(QUESTIONS), 8
    with torch.no_grad():
        theirs = hf.generate(context_input_ids=ids, context_attention_mask=mask, doc_scores=retrieved.scores,
                             n_docs=K, num_beams=num_beams, num_return_sequences=num_beams,
                             max_length=max_len + 1, **HF_SETTINGS)
    ours = rag_token_decode(model.generator, retrieved.log_p_z, ids.view(B, K, -1), mask.view(B, K, -1),
                            num_beams=num_beams, max_len=max_len, num_return_sequences=num_beams)
    T = theirs.shape[1] - 1
    for b in range(B):
        assert [padded(y, T) for y in ours.ids[b]] == [hf_rows(theirs, b, num_beams, r) for r in range(num_beams)]
    assert len({len(y) for ys in ours.ids for y in ys}) > 1 or num_beams == 1, "answers of one length only"


def test_thorough_rag_sequence_best_equals_hugging_face_generate(checkpoint, model):
    hf = hf_reference(checkpoint, RagSequenceForGeneration)
    retrieved, ids, mask = hf_context(model, QUESTIONS, K)
    # HF runs RAG-Sequence's per-passage beams without the attention mask: unpadded inputs for both
    ids, mask = ids.masked_fill(mask == 0, 7), torch.ones_like(mask)
    B, max_len = len(QUESTIONS), 8
    with torch.no_grad():
        theirs = hf.generate(context_input_ids=ids, context_attention_mask=mask, doc_scores=retrieved.scores,
                             n_docs=K, num_beams=2, max_new_tokens=max_len, do_deduplication=True, **HF_SETTINGS)
    ours = rag_sequence_decode(model.generator, retrieved.log_p_z, ids.view(B, K, -1), mask.view(B, K, -1),
                               "thorough", num_beams=2, max_len=max_len)
    T = theirs.shape[1] - 1
    assert [padded(ys[0], T) for ys in ours.ids] == [theirs[b, 1:].tolist() for b in range(B)]
    assert ours.ids[0] != ours.ids[1], "the two questions should get different answers"


def test_score_and_decode_run_end_to_end(model):
    scores = model.score(QUESTIONS, ANSWERS, k=K)
    assert scores.log_p_yi.shape[:2] == (2, K) and torch.isfinite(scores.log_p_y_token).all()
    token = decode(model, QUESTIONS, "token", k=K, num_beams=2, max_len=6, trace=True)
    sequence = decode(model, QUESTIONS, "sequence", k=K, mode="fast", num_beams=2, max_len=6)
    assert len(token.answers) == len(sequence.answers) == 2 and len(token.trace) == 2
    assert all(isinstance(a, str) for a in token.answers + sequence.answers)


def test_a_prebuilt_index_gives_the_same_retrieval(checkpoint, model, tmp_path):
    save_index(build_index(model.retriever.d_z), tmp_path / "index.faiss")
    save_corpus(model.retriever.corpus, tmp_path / "corpus.jsonl")
    again = from_hf(checkpoint / "rag", passages=tmp_path / "corpus.jsonl", index=tmp_path / "index.faiss")
    assert again.retriever.retrieve(QUESTIONS, K).rows.tolist() == model.retriever.retrieve(QUESTIONS, K).rows.tolist()
    with pytest.raises(ValueError, match="the index holds 12 vectors but 11 passages were given"):
        from_hf(checkpoint / "rag", passages=PASSAGES[:11], index=tmp_path / "index.faiss")


def test_missing_memory_is_a_clear_error(checkpoint):
    with pytest.raises(ValueError, match="holds no passages"):
        from_hf(checkpoint / "rag")
    with pytest.raises(ValueError, match="exactly one of context_encoder= .* or index="):
        from_hf(checkpoint / "rag", passages=PASSAGES)


def test_checkpoints_of_the_wrong_kind_are_refused(checkpoint, tmp_path):
    BertModel(BertConfig(vocab_size=20, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=16)).save_pretrained(tmp_path / "bert")
    (tmp_path / "gpt2").mkdir()
    (tmp_path / "gpt2" / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    not_rag = r"is a 'bert' checkpoint, not a RAG checkpoint \(allowed model_type: \('rag',\)"
    with pytest.raises(ValueError, match=not_rag):
        from_hf(tmp_path / "bert", passages=PASSAGES, context_encoder=checkpoint / "ctx")
    with pytest.raises(ValueError, match=r"is a 'gpt2' checkpoint, not a RAG checkpoint"):
        from_hf(tmp_path / "gpt2", passages=PASSAGES, context_encoder=checkpoint / "ctx")
    with pytest.raises(ValueError, match=r"is a 'gpt2' checkpoint, not a RAG checkpoint"):  # the lazy top-level name
        ragedu.from_hf(tmp_path / "gpt2", passages=PASSAGES, context_encoder=checkpoint / "ctx")
    with pytest.raises(ValueError, match=r"is a 'dpr' checkpoint.*goes in context_encoder="):
        from_hf(checkpoint / "ctx", passages=PASSAGES, context_encoder=checkpoint / "ctx")
    with pytest.raises(ValueError, match=r"is a 'bert' checkpoint, not a DPR context encoder"):
        from_hf(checkpoint / "rag", passages=PASSAGES, context_encoder=tmp_path / "bert")


def test_remote_code_is_never_run(checkpoint, tmp_path):
    """A config asking for custom code is refused by its model_type before anything is imported."""
    folder = tmp_path / "custom"
    folder.mkdir()
    marker = tmp_path / "ran"
    (folder / "config.json").write_text(json.dumps({"model_type": "evil_rag", "auto_map": {
        "AutoConfig": "evil.EvilConfig", "AutoModel": "evil.EvilModel"}}))
    (folder / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    with pytest.raises(ValueError, match="'evil_rag' checkpoint"):
        from_hf(folder, passages=PASSAGES, context_encoder=checkpoint / "ctx")
    assert not marker.exists()


def test_pickle_weights_are_refused_unless_allowed(checkpoint, model, tmp_path):
    folder = tmp_path / "pickled"
    shutil.copytree(checkpoint / "rag", folder)
    hf = hf_reference(checkpoint, RagTokenForGeneration)
    torch.save(hf.state_dict(), folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    with pytest.raises(ValueError, match=r"only as pickle .*allow_pickle=True"):
        from_hf(folder, passages=PASSAGES, context_encoder=checkpoint / "ctx")
    loaded = from_hf(folder, passages=PASSAGES, context_encoder=checkpoint / "ctx", allow_pickle=True, progress=False)
    with torch.no_grad():
        torch.testing.assert_close(loaded.score(QUESTIONS, ANSWERS, K).log_p_y_token,
                                   model.score(QUESTIONS, ANSWERS, K).log_p_y_token)


def test_find_checkpoint_says_why_a_checkpoint_is_not_here_without_the_network(checkpoint, tmp_path, monkeypatch):
    assert find_checkpoint(checkpoint / "rag") is None
    assert "has no config.json" in find_checkpoint(tmp_path)
    assert "neither a checkpoint folder nor a hub name" in find_checkpoint(tmp_path / "absent")

    def offline(self, name, timeout=None):
        raise ConnectionError("offline")
    monkeypatch.setattr("huggingface_hub.HfApi.model_info", offline)
    monkeypatch.setattr("huggingface_hub.try_to_load_from_cache", lambda *args, **kwargs: None)  # an empty cache
    assert "not in the local cache and the hub is unreachable" in find_checkpoint("facebook/rag-token-nq")


def test_a_context_encoder_object_works_like_its_folder(checkpoint, model):
    ctx = DPRContextEncoder.from_pretrained(str(checkpoint / "ctx"))
    again = from_hf(checkpoint / "rag", passages=PASSAGES, context_encoder=ctx, progress=False)
    torch.testing.assert_close(again.retriever.d_z, model.retriever.d_z)
