"""The retriever: FAISS top-K against brute force, p(z|x) invariants, and refusals of bad input."""

import faiss
import pytest
import torch

from ragedu.corpus import Corpus, Passage
from ragedu.retriever import (EncoderConfig, Retriever, build_index, encode_passages, load_index, new_encoder,
                              save_index)

QUESTIONS = ["Which country is Town 3 in?", "What is the population of Town 41?", "Town 7"]


def test_top_k_is_the_brute_force_top_k_of_the_full_posterior(toy_rag):
    retriever = toy_rag.retriever
    with torch.no_grad():
        retrieved = retriever.retrieve(QUESTIONS, k=5)
        full = retriever.full_log_p_z(QUESTIONS)  # (B, N)
        q_x = retriever.encode_questions(QUESTIONS)  # (B, D)
    N = len(retriever.corpus)
    assert full.shape == (3, N)
    for b in range(3):
        scores = [float(retriever.d_z[n] @ q_x[b]) for n in range(N)]  # an explicit loop over every passage
        best = sorted(scores, reverse=True)[:5]
        found = [scores[n] for n in retrieved.rows[b].tolist()]
        assert found == pytest.approx(best, abs=1e-5)  # the K best, best first (ties may swap rows)
        assert retrieved.ids[b] == [retriever.corpus[n].id for n in retrieved.rows[b].tolist()]
        assert retrieved.titles[b] == [retriever.corpus[n].title for n in retrieved.rows[b].tolist()]
        # top-K posterior = the full posterior renormalised over the K rows
        rows = retrieved.rows[b]
        renormalised = full[b, rows] - torch.logsumexp(full[b, rows], 0)
        torch.testing.assert_close(retrieved.log_p_z[b], renormalised, atol=1e-5, rtol=1e-5)


def test_posteriors_sum_to_one_and_scores_are_inner_products(toy_rag):
    with torch.no_grad():
        r = toy_rag.retriever.retrieve(QUESTIONS, k=7)
        q_x = toy_rag.retriever.encode_questions(QUESTIONS)
        full = toy_rag.retriever.full_log_p_z(QUESTIONS)
    torch.testing.assert_close(r.log_p_z.exp().sum(-1), torch.ones(3))
    torch.testing.assert_close(full.exp().sum(-1), torch.ones(3))
    torch.testing.assert_close(r.scores, (r.d_z * q_x[:, None]).sum(-1))
    assert r.d_z.shape == (3, 7, 32) and r.k == 7
    assert (r.scores[:, :-1] >= r.scores[:, 1:] - 1e-5).all()  # sorted best first


def test_gradient_reaches_the_query_encoder_only(toy_rag):
    retriever = toy_rag.retriever
    retriever.zero_grad()
    r = retriever.retrieve(QUESTIONS, k=4)
    r.log_p_z[:, 0].sum().backward()
    q_grad = [p.grad for p in retriever.query_encoder.parameters() if p.grad is not None]
    assert q_grad and sum(g.abs().sum() for g in q_grad) > 0
    assert all(p.grad is None and not p.requires_grad for p in retriever.doc_encoder.parameters())
    retriever.zero_grad()


@pytest.mark.parametrize("k", [0, -1, 61, 2.5])
def test_k_outside_the_corpus_is_refused(toy_rag, k):
    with pytest.raises(ValueError, match="K must be an integer between 1 and the corpus size 60"):
        toy_rag.retriever.retrieve(QUESTIONS, k=k)


def test_all_of_the_corpus_can_be_retrieved(toy_rag):
    with torch.no_grad():
        r = toy_rag.retriever.retrieve(QUESTIONS[:1], k=60)
    assert sorted(r.rows[0].tolist()) == list(range(60))  # no -1 padding from FAISS


@pytest.mark.parametrize("questions,error", [([""], "question 0 is empty"), (["ok", "  "], "question 1 is empty"),
                                             ([], "no questions"), ("a bare string", "list of questions")])
def test_empty_questions_are_refused(toy_rag, questions, error):
    with pytest.raises((ValueError, TypeError), match=error):
        toy_rag.retriever.retrieve(questions, k=3)


def test_duplicate_ids_are_refused():
    with pytest.raises(ValueError, match="duplicate passage id 'a'"):
        Corpus([Passage("a", "A", "x"), Passage("b", "B", "y"), Passage("a", "C", "z")])


def test_an_index_of_another_size_is_refused(toy_corpus, toy_tokenizer, toy_rag):
    wide = new_encoder(EncoderConfig(len(toy_tokenizer), dim=48, layers=1, heads=2))
    d_z = encode_passages(wide, toy_tokenizer, toy_corpus, progress=False)  # (N, 48)
    with pytest.raises(ValueError, match="embedding sizes disagree: query encoder 32, document vectors 48"):
        Retriever(toy_rag.retriever.query_encoder, wide, toy_tokenizer, toy_corpus, d_z, build_index(d_z))


def test_an_index_of_another_corpus_is_refused(toy_corpus, toy_tokenizer, toy_rag):
    d_z = toy_rag.retriever.d_z[:50]
    with pytest.raises(ValueError, match="corpus has 60 passages but the vectors have 50 rows"):
        Retriever(toy_rag.retriever.query_encoder, toy_rag.retriever.doc_encoder, toy_tokenizer, toy_corpus,
                  d_z, build_index(d_z))


def test_index_round_trips_and_corrupt_files_are_errors(toy_rag, tmp_path):
    path = tmp_path / "index.faiss"
    save_index(toy_rag.retriever.index, path)
    loaded = load_index(path)
    q = toy_rag.retriever.d_z[:3].numpy()
    assert (loaded.search(q, 5)[1] == toy_rag.retriever.index.search(q, 5)[1]).all()
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        load_index(path)
    with pytest.raises(ValueError, match="unknown index kind 'lsh'"):
        build_index(toy_rag.retriever.d_z, kind="lsh")


def test_document_vectors_come_from_the_document_encoder(toy_corpus, toy_tokenizer, toy_rag):
    again = encode_passages(toy_rag.retriever.doc_encoder, toy_tokenizer, toy_corpus, progress=False)
    torch.testing.assert_close(again, toy_rag.retriever.d_z)
    assert isinstance(toy_rag.retriever.index, faiss.IndexFlatIP)


def test_an_uncased_vocabulary_reads_every_casing_and_accent_alike(toy_corpus):
    from ragedu.tokenizer import train_tokenizer

    tok = train_tokenizer([p.text for p in toy_corpus] + ["São Tomé"], vocab_size=300, lowercase=True)
    cased = train_tokenizer([p.text for p in toy_corpus], vocab_size=300)
    forms = ["Which country is Town 3 in?", "which country is town 3 in?", "WHICH COUNTRY IS TOWN 3 IN?"]
    assert len({tuple(tok(f).input_ids) for f in forms}) == 1
    assert len({tuple(cased(f).input_ids) for f in forms}) == 3   # the cased one tells them apart
    assert tok("São Tomé").input_ids == tok("sao tome").input_ids


def test_the_shipped_retriever_scores_a_question_the_same_in_any_casing():
    import ragedu
    from ragedu.tasks import load_task

    retriever = ragedu.load_default().retriever
    questions = [e.question for e in load_task("qa", "test")[::30]]
    with torch.no_grad():
        scores = [retriever.retrieve(qs, 5) for qs in
                  (questions, [q.lower() for q in questions], [q.upper() for q in questions])]
    for other in scores[1:]:
        assert other.ids == scores[0].ids
        torch.testing.assert_close(other.scores, scores[0].scores)
