"""`from_hf` on tiny random Hugging Face RAG checkpoints built from configs and saved to a temporary folder
(no network): ragedu's retrieval, likelihoods and decoders equal the Hugging Face models' own numbers."""
import json
import shutil
from types import SimpleNamespace

import pytest
import torch
from tokenizers import ByteLevelBPETokenizer
from transformers import (BartConfig, BartForConditionalGeneration, BartTokenizerFast, BertConfig, BertModel,
                          BertTokenizerFast, DPRConfig, DPRContextEncoder, GPT2Config, GPT2LMHeadModel,
                          RagSequenceForGeneration, RagTokenForGeneration)

from ragedu.corpus import Passage, save_corpus
from ragedu.decoding import DecodeSettings, decode, rag_sequence_decode, rag_token_decode
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
                            DecodeSettings(num_beams=num_beams, max_len=max_len, num_return_sequences=num_beams))
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
                               DecodeSettings(mode="thorough", num_beams=2, max_len=max_len))
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
    GPT2LMHeadModel(GPT2Config(vocab_size=20, n_embd=8, n_layer=1, n_head=2, n_positions=16)).save_pretrained(
        tmp_path / "gpt2")
    BartForConditionalGeneration(BartConfig(vocab_size=20, d_model=8, encoder_layers=1, decoder_layers=1,
                                            encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=16,
                                            decoder_ffn_dim=16)).save_pretrained(tmp_path / "bart")
    not_rag = r"is a 'bert' checkpoint, not a RAG checkpoint \(allowed model_type: \('rag',\)"
    with pytest.raises(ValueError, match=not_rag):
        from_hf(tmp_path / "bert", passages=PASSAGES, context_encoder=checkpoint / "ctx")
    with pytest.raises(ValueError, match=r"is a 'gpt2' checkpoint, not a RAG checkpoint"):
        from_hf(tmp_path / "gpt2", passages=PASSAGES, context_encoder=checkpoint / "ctx")
    with pytest.raises(ValueError, match=r"is a 'gpt2' checkpoint, not a RAG checkpoint"):  # the lazy top-level name
        ragedu.from_hf(tmp_path / "gpt2", passages=PASSAGES, context_encoder=checkpoint / "ctx")
    with pytest.raises(ValueError, match=r"is a 'bart' checkpoint, not a RAG checkpoint .*has no retriever"):
        from_hf(tmp_path / "bart", passages=PASSAGES, context_encoder=checkpoint / "ctx")
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


# ---- the released checkpoints' conventions: decoder prefix </s> <s>, the generator input HF's retriever writes ----

@pytest.fixture(scope="module")
def forced_checkpoint(checkpoint, tmp_path_factory):
    """The checkpoint as BART-large ships: generation starts from </s> and forces <s> first."""
    root = tmp_path_factory.mktemp("forced")
    folder = root / "rag"
    shutil.copytree(checkpoint / "rag", folder)
    generation = json.loads((folder / "generation_config.json").read_text())
    (folder / "generation_config.json").write_text(json.dumps({**generation, "forced_bos_token_id": 0}))
    return root


@pytest.fixture(scope="module")
def forced_model(checkpoint, forced_checkpoint):
    return from_hf(forced_checkpoint / "rag", passages=PASSAGES, context_encoder=checkpoint / "ctx", progress=False)


def test_the_decoder_prefix_comes_from_the_checkpoint(checkpoint, model, forced_model, tmp_path):
    assert model.generator.decoder_prefix == [EOS] and model.hf_settings.decoder_prefix == [EOS]
    assert forced_model.generator.decoder_prefix == [EOS, 0]  # </s> <s>, as BART-large's generate runs
    # a checkpoint saved before generation_config.json existed says it in the generator's config.json entries
    for legacy in ({"forced_bos_token_id": 0}, {"force_bos_token_to_be_generated": True}):
        folder = tmp_path / str(len(legacy)) / next(iter(legacy))
        shutil.copytree(checkpoint / "rag", folder)
        (folder / "generation_config.json").unlink()
        config = json.loads((folder / "config.json").read_text())
        config["generator"].update(legacy)
        (folder / "config.json").write_text(json.dumps(config))
        loaded = from_hf(folder, passages=PASSAGES, context_encoder=checkpoint / "ctx", progress=False)
        assert loaded.generator.decoder_prefix == [EOS, 0], legacy


def test_with_a_forced_bos_our_likelihoods_equal_hugging_faces(forced_checkpoint, forced_model):
    """The forced <s> is read, not scored. RAG-Sequence: HF's loss with labels </s> <s> y and
    exclude_bos_score=True (what its own rescoring uses). RAG-Token: HF's marginalized transition
    log p'(y_i|x,y<i) read off its logits after </s> <s>."""
    with torch.no_grad():
        scores = forced_model.score(QUESTIONS, ANSWERS, K)
        retrieved, ids, mask = hf_context(forced_model, QUESTIONS, K)
        B, T = scores.y.shape
        prefix = torch.tensor([[EOS, 0]]).expand(B, 2)
        labels = torch.cat([prefix, scores.y], dim=1)                                       # (B, 2 + T)
        seq = hf_reference(forced_checkpoint, RagSequenceForGeneration)
        hf_nll = seq(context_input_ids=ids, context_attention_mask=mask, doc_scores=retrieved.scores, labels=labels,
                     n_docs=K, reduce_loss=False, exclude_bos_score=True).loss            # (B,)
        torch.testing.assert_close(-scores.log_p_y_sequence, hf_nll, atol=1e-5, rtol=1e-5)
        tok = hf_reference(forced_checkpoint, RagTokenForGeneration)
        log_p_next = tok(context_input_ids=ids, context_attention_mask=mask, doc_scores=retrieved.scores,
                         decoder_input_ids=labels[:, :-1], n_docs=K, do_marginalize=True).logits  # (B, 1 + T, V)
        log_p_yi = log_p_next[:, 1:].gather(-1, scores.y[..., None]).squeeze(-1) * scores.y_mask  # (B, T)
        torch.testing.assert_close(scores.log_p_y_token, log_p_yi.sum(-1), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("num_beams", [1, 3])
def test_with_a_forced_bos_our_decoders_equal_hugging_face_generate(forced_checkpoint, forced_model, num_beams):
    """HF generates </s> <s> y; ours is y. Subtle: HF counts the forced <s> in |y| for the length penalty,
    ragedu does not, so beams are compared with length_penalty=0 (greedy has none)."""
    settings = {**HF_SETTINGS, "forced_bos_token_id": 0, "length_penalty": 0.0}
    retrieved, ids, mask = hf_context(forced_model, QUESTIONS, K)
    B, max_len = len(QUESTIONS), 8
    with torch.no_grad():
        theirs = hf_reference(forced_checkpoint, RagTokenForGeneration).generate(
            context_input_ids=ids, context_attention_mask=mask, doc_scores=retrieved.scores, n_docs=K,
            num_beams=num_beams, num_return_sequences=num_beams, max_length=max_len + 2, **settings)
    assert (theirs[:, :2] == torch.tensor([EOS, 0])).all()
    ours = rag_token_decode(forced_model.generator, retrieved.log_p_z, ids.view(B, K, -1), mask.view(B, K, -1),
                            DecodeSettings(num_beams=num_beams, max_len=max_len, num_return_sequences=num_beams,
                                           length_penalty=0.0))
    T = theirs.shape[1] - 2
    for b in range(B):
        assert [padded(y, T) for y in ours.ids[b]] == [theirs[b * num_beams + r, 2:].tolist() for r in range(num_beams)]
    # RAG-Sequence, thorough: the per-passage beams, then rescoring without the <s> score
    ids, mask = ids.masked_fill(mask == 0, 7), torch.ones_like(mask)
    with torch.no_grad():
        theirs = hf_reference(forced_checkpoint, RagSequenceForGeneration).generate(
            context_input_ids=ids, context_attention_mask=mask, doc_scores=retrieved.scores, n_docs=K,
            num_beams=2, max_new_tokens=max_len + 1, do_deduplication=True, **settings)
    ours = rag_sequence_decode(forced_model.generator, retrieved.log_p_z, ids.view(B, K, -1), mask.view(B, K, -1),
                               DecodeSettings(mode="thorough", num_beams=2, max_len=max_len, length_penalty=0.0))
    T = theirs.shape[1] - 2
    assert [padded(ys[0], T) for ys in ours.ids] == [theirs[b, 2:].tolist() for b in range(B)]


def test_generator_input_is_what_hugging_faces_retriever_writes(model):
    """RagRetriever.postprocess_docs itself is the reference: the question as the question tokenizer reads
    it back (lowercased), a quoted title unquoted, double spaces collapsed."""
    from transformers import RagRetriever

    questions = ["Which LAND is Town 3 in?", "How many people live in  Town 10?"]
    titles = [['"Town 3"', "Town 4"], ["Town 10", '"Town" 1']]
    texts = [["town 3 is a city  in land 3", "town 4 is a city in land 0"], ["town 10 has 70 people", "town 1"]]
    ids, mask = model.generator.context_inputs(titles, texts, questions)                  # (B, K, L)
    q_tok = model.retriever.tokenizer
    read = [q_tok.decode(ids_, skip_special_tokens=True) for ids_ in q_tok(questions).input_ids]
    assert read[0] == "which land is town 3 in?"
    retriever = SimpleNamespace(config=model.hf_settings.rag_config, generator_tokenizer=model.generator.tokenizer)
    docs = [{"title": t, "text": x} for t, x in zip(titles, texts)]
    theirs, their_mask = RagRetriever.postprocess_docs(retriever, docs, read, "", 2)        # (B*K) lists
    for row, (their_ids, their_m) in enumerate(zip(theirs, their_mask)):
        b, k = divmod(row, 2)
        assert ids[b, k][mask[b, k] == 1].tolist() == [t for t, m in zip(their_ids, their_m) if m]


def test_a_from_hf_model_saves_as_a_hugging_face_checkpoint_and_loads_back(checkpoint, forced_model, tmp_path):
    from ragedu.hf import save_hf
    from ragedu.pretrained import save

    folder = save_hf(forced_model, tmp_path / "saved")
    assert (folder / "model.safetensors").exists() and not (folder / "pytorch_model.bin").exists()
    again = from_hf(folder, passages=folder / "corpus.jsonl", index=folder / "index.faiss")
    assert again.hf_settings.decoder_prefix == [EOS, 0] and again.hf_settings.n_docs == K
    with torch.no_grad():
        before, after = forced_model.score(QUESTIONS, ANSWERS, K), again.score(QUESTIONS, ANSWERS, K)
    torch.testing.assert_close(after.log_p_yi, before.log_p_yi)
    torch.testing.assert_close(after.log_p_z, before.log_p_z)
    assert decode(again, QUESTIONS, "token", k=K, num_beams=2).answers == \
        decode(forced_model, QUESTIONS, "token", k=K, num_beams=2).answers
    # ragedu's own format holds ragedu's small models only: a clear error, not a folder that cannot load
    with pytest.raises(ValueError, match=r"from_hf.*save_hf"):
        save(forced_model, tmp_path / "ragedu_format", encoder=None, generator=None)
    assert not (tmp_path / "ragedu_format").exists()


def test_device_argument_places_everything_and_results_follow(checkpoint):
    on_cpu = from_hf(checkpoint / "rag", passages=PASSAGES, context_encoder=checkpoint / "ctx", progress=False,
                     device="cpu")
    assert {p.device.type for p in on_cpu.parameters()} == {"cpu"} and on_cpu.retriever.d_z.device.type == "cpu"
    with torch.no_grad():
        scores = on_cpu.score(QUESTIONS, ANSWERS, K)
    assert scores.log_p_yi.device == scores.log_p_z.device == on_cpu.generator.device
    with pytest.raises(RuntimeError, match="gpu"):
        from_hf(checkpoint / "rag", passages=PASSAGES, context_encoder=checkpoint / "ctx", device="gpu")
