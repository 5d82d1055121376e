"""The checkers of notebooks 5–7: training, the memory, the evaluation.   (notebooks 5, 6 and 7)

Each checker takes (verdicts, answer, **the notebook's inputs) and computes the expected answer from those
inputs (the model's own weights, index and retrievals; the notebook's own table), never from a stored number.
"""
from __future__ import annotations

import torch

from ragedu import solutions as s
from ragedu.exercise_kit import exercise, as_tensor, compare_choice, compare_number, compare_tensor, shipped_model


def index_example() -> dict:
    """Notebook 5's re-encoded first 400 passages and the shipped index."""
    from ragedu.corpus import Corpus
    from ragedu.retriever import encode_passages

    retriever = shipped_model().retriever
    d_z = encode_passages(retriever.doc_encoder, retriever.tokenizer, Corpus(retriever.corpus.passages[:400]),
                          progress=False)
    return {"d_z": d_z, "index": retriever.index, "retriever": retriever}


def recall_example() -> dict:
    """Notebook 5's retrievers before and after RAG fine-tuning, with the dev questions and their gold rows."""
    from ragedu.retriever import Retriever
    from ragedu.tasks import load_task

    r = shipped_model().retriever
    before = Retriever(r.doc_encoder, r.doc_encoder, r.tokenizer, r.corpus, r.d_z, r.index, r.max_len)
    dev = load_task("qa", "dev")
    return {"before": before, "after": r, "questions": [e.question for e in dev],
            "gold": torch.tensor([r.corpus.row(e.gold_ids[0]) for e in dev])}


def gradient_example() -> dict:
    g = torch.Generator().manual_seed(5)
    return {"scores": torch.randn(2, 4, generator=g), "log_p_y_given_z": -3 * torch.rand(2, 4, generator=g)}


def wrong_5_1_query_vectors(retriever):
    """The first 400 passages encoded by the fine-tuned query encoder instead."""
    from ragedu.corpus import Corpus
    from ragedu.retriever import encode_passages

    return encode_passages(retriever.query_encoder, retriever.tokenizer, Corpus(retriever.corpus.passages[:400]),
                           progress=False)


def check_5_1(v, answer, d_z, index=None):
    return compare_tensor(v, answer, d_z, "the index holds exactly what the document encoder computes, "
                          "d(z) = BERT_d(z): fine-tuning never touched it, so it never needed re-encoding",
                          {}, "your vectors", atol=1e-4)


def check_5_2(v, answer, retriever=None):
    shown = ""
    if retriever is not None:
        query, doc = retriever.query_encoder.state_dict(), retriever.doc_encoder.state_dict()
        moved = sum(not torch.equal(query[n], doc[n]) for n in query)
        shown = (f" In the shipped model {moved} of {len(query)} tensors of the query encoder differ from the "
                 "document encoder it started as; the document encoder is still the stage-1 encoder.")
    return compare_choice(v, answer, {
        "a": "the query encoder q(x) and the generator; the document encoder and the index stay",
        "b": "the query encoder, the document encoder and the generator",
        "c": "the generator only", "d": "the document encoder and the index"}, "a",
        "The paper fine-tunes BERT_q and BART and keeps BERT_d and the index fixed: re-encoding every passage after "
        "each update is what REALM pays. The gradient reaches q(x) through the scores d(z)ᵀq(x) in p(z|x)." + shown,
        {"b": "moving BERT_d would make every d(z) in the index stale",
         "c": "the retriever learns too, through p(z|x) ∝ exp(d(z)ᵀq(x))",
         "d": "those are exactly the two things kept fixed"})


def _pair(answer) -> torch.Tensor | None:
    if isinstance(answer, dict) and {"before", "after"} <= set(answer):
        return as_tensor([answer["before"], answer["after"]])
    return None


def check_5_3(v, answer, before, after, questions, gold):
    recall = {n: (r.full_log_p_z(questions).argmax(-1) == gold).double().mean() for n, r in
              (("before", before), ("after", after))}
    p_gold = {n: r.full_log_p_z(questions).exp()[torch.arange(len(questions)), gold].double().mean() for n, r in
              (("before", before), ("after", after))}
    pair = _pair(answer)
    if pair is None:
        return v.wrong('answer with a dict {"before": recall, "after": recall}')
    moved = "helped" if recall["after"] > recall["before"] else "did not help"
    return compare_tensor(v, pair, torch.stack([recall["before"], recall["after"]]),
                          f"recall@1 went from {recall['before']:.3f} to {recall['after']:.3f}: fine-tuning q(x) on "
                          f"the end task alone {moved} ranking the gold passage first", {
                              "that is the mean p(gold passage|x), not the share of questions whose gold passage "
                              "is ranked first": torch.stack([p_gold["before"], p_gold["after"]]),
                              "before and after are swapped": torch.stack([recall["after"], recall["before"]])},
                          "your recall@1 (before, after)")


def check_5_4(v, answer, scores, log_p_y_given_z):
    s_z = scores.detach().double().requires_grad_(True)                  # (B, K) d(z)ᵀq(x)
    with torch.enable_grad():
        nll = -torch.logsumexp(s_z.log_softmax(-1) + log_p_y_given_z.double(), dim=-1).sum()
        (grad,) = torch.autograd.grad(nll, s_z)                              # (B, K)
    p_z, p_z_given_y = s_z.detach().softmax(-1), (s_z.detach() + log_p_y_given_z).softmax(-1)
    return compare_tensor(v, answer, grad, "autograd agrees: d(−log p(y|x))/ds_z = p(z|x) − p(z|x,y). A step "
                          "raises the score of every passage the answer makes likelier than the retriever thought "
                          "and lowers the others, with no label saying which passage is right", {
                              "the sign is flipped: that is the gradient of +log p(y|x); descent moves against it":
                                  p_z_given_y - p_z,
                              "that is p(z|x) alone; the answer's evidence enters through p(z|x,y)": p_z},
                          "your gradient")


def check_6_1(v, answer, rows):
    if not isinstance(answer, dict) or set(answer) != {r["kind"] for r in rows}:
        return v.wrong(f"answer with a dict kind -> bytes per passage, for the kinds {[r['kind'] for r in rows]}")
    kinds = [r["kind"] for r in rows]
    per = {r["kind"]: r["bytes"] / r["n"] for r in rows}
    ratio = per.get("flat", 1) / per.get("ivfpq", 1)
    return compare_tensor(v, as_tensor([answer[k] for k in kinds]), as_tensor([per[k] for k in kinds]),
                          f"flat keeps 4·D bytes a passage; IVF-PQ {ratio:.1f}× less here (its codebooks weigh on "
                          "a small corpus, nothing at a million vectors)",
                          {"those are whole indexes, not per passage: divide by r['n']":
                               as_tensor([r["bytes"] for r in rows])}, "your bytes per passage", atol=1e-6)


def check_6_2(v, answer, curve=None):
    shown = ""
    if curve is not None and 5 in curve.ks:
        at = curve.ks.index(5)
        shown = " Here, at K = 5: " + "; ".join(
            f"{name} {float(curve.log_p_y[name][0, at]):.3f} against exact {float(curve.exact[name][0]):.3f}"
            for name in curve.log_p_y) + "."
    return compare_choice(v, answer, {
        "a": "never larger: the top K drops terms of a sum",
        "b": "it can be larger: renormalising divides the kept p(z|x) by mass(K) ≤ 1",
        "c": "always larger"}, "b",
        "Dropping the tail alone would under-count, but the top-K p(z|x) is renormalised, scaled up by 1 / mass(K); "
        "when the kept passages explain y better than the dropped ones, the estimate exceeds the exact sum." + shown,
        {"a": "the kept terms are not the corpus-wide ones: their p(z|x) was renormalised upwards",
         "c": "when the dropped passages explain y better than the kept ones, the estimate is smaller"})


def check_6_3(v, answer, question="What is the capital of Kenya?"):
    from ragedu.decoding import GREEDY
    from ragedu.evaluate import answer_questions
    from ragedu.model import RagModel

    if not isinstance(answer, RagModel):
        return v.wrong(f"answer with the model swap_memory returns, got a {type(answer).__name__}")
    text = answer.retriever.retrieve([question], k=1).texts[0][0]
    if "Mombasa" not in text:
        return v.wrong(f"the passage retrieved for {question!r} still says: {text!r}")
    said = answer_questions(answer, [question], 5, GREEDY)["token"][0]
    return v.right(f"the memory now says {text!r}, with every weight unchanged; the model answers {said!r}")


def eval_example() -> dict:
    from ragedu.tasks import load_task

    return {"model": shipped_model(), "questions": load_task("qa", "test")[:20]}


def check_7_1(v, answer, model, questions, reported=None):
    from ragedu.decoding import decode
    from ragedu.evaluate import exact_match

    answers = decode(model, [e.question for e in questions], "token", k=5, num_beams=1, max_len=24).answers
    hits = sum(exact_match(a, e.answer) for a, e in zip(answers, questions))
    expected = hits / len(questions)
    table = "" if reported is None else (" — the table's number" if abs(reported - expected) < 1e-9 else
                                         f", but the table says {reported:.3f}")
    return compare_number(v, answer, expected, f"{hits} of {len(questions)} exact matches, {expected:.3f}{table}",
                          {"that is the number of matches; exact match is their share": float(hits)},
                          "your exact match", atol=1e-9)


def table_example() -> dict:
    return {"results": {"qa_exact_match": {"sequence": 0.5, "token": 0.75},
                        "qa_exact_match_by_relation": {"capital": {"sequence": 1 / 3, "token": 2 / 3},
                                                       "currency": {"sequence": 1.0, "token": 1.0}}},
            "counts": {"capital": 3, "currency": 1}}


def check_7_2(v, answer, results, counts):
    systems, by_relation = list(results["qa_exact_match"]), results["qa_exact_match_by_relation"]
    if not isinstance(answer, dict) or set(answer) != set(systems):
        return v.wrong(f"answer with a dict system -> weighted exact match, for {systems}")
    total = sum(counts[r] for r in by_relation)
    weighted = as_tensor([sum(counts[r] * by_relation[r][x] for r in by_relation) / total for x in systems])
    overall = as_tensor([results["qa_exact_match"][x] for x in systems])
    adds_up = "equals" if torch.allclose(weighted, overall, atol=1e-6) else "differs from"
    adds_up += " the overall row"
    return compare_tensor(v, as_tensor([answer[x] for x in systems]), weighted,
                          f"the weighted mean {adds_up} for every system: the table adds up", {
                              "you averaged the relations without weighting them by how many questions each has":
                                  as_tensor([sum(by_relation[r][x] for r in by_relation) / len(by_relation)
                                             for x in systems])}, "your weighted exact match", atol=1e-6)


def check_7_3(v, answer, qa_exact_match=None):
    shown = "" if qa_exact_match is None else (
        " Here: " + ", ".join(f"{k} {x:.2f}" for k, x in qa_exact_match.items()) + ".")
    return compare_choice(v, answer, {
        "a": "closed-book near 0, RAG well above it", "b": "about the same", "c": "closed-book above RAG"}, "a",
        "Every test question names a country never seen in training, so its answer is in no weight; a closed-book "
        "model can only guess, while RAG reads it from a retrieved passage." + shown,
        {"b": "the closed-book model never saw these entities; only retrieval can reach their facts",
         "c": "the facts of test entities live only in the memory, which the closed-book model cannot read"})


EXERCISES = [
    exercise("5.1", "compute", "read d(z) back from the FAISS index and match the re-encoded vectors", check_5_1,
        index_example, s.solution_5_1, [wrong_5_1_query_vectors, lambda index: s.solution_5_1(index) + 0.01],
        "ragedu.retriever.index_vectors(retriever.index) holds the index's vectors; take the first 400",
        ("d_z", "index")),
    exercise("5.2", "predict", "which parameters stage 3 (RAG fine-tuning) moves", check_5_2, dict, s.solution_5_2,
        [lambda: "b", lambda: "d"], "which vectors would go stale if they moved?", ("retriever",)),
    exercise("5.3", "compute", "recall@1 over the corpus before and after fine-tuning q(x)", check_5_3, recall_example,
        s.solution_5_3, [lambda before, after, questions, gold: {"before": 0.0, "after": 1.0},
                         lambda before, after, questions, gold: dict(zip(("after", "before"), s.solution_5_3(
                             before, after, questions, gold).values()))],
        "r.full_log_p_z(questions).argmax(-1) == gold, averaged, for each retriever",
        ("before", "after", "questions", "gold")),
    exercise("5.4", "derive", "the gradient of −log p(y|x) (RAG-Sequence) with respect to each score", check_5_4,
        gradient_example, s.solution_5_4,
        [lambda scores, log_p_y_given_z: -s.solution_5_4(scores, log_p_y_given_z),
         lambda scores: scores.softmax(-1)],
        "write −log p(y|x) = −logsumexp(s + log p_θ(y|x,z)) + logsumexp(s) and differentiate each logsumexp",
        ("scores", "log_p_y_given_z")),
    exercise("6.1", "compute", "bytes per passage of each index kind", check_6_1,
        lambda: {"rows": [{"kind": "flat", "n": 10, "bytes": 5120}, {"kind": "ivfpq", "n": 10, "bytes": 900}]},
        s.solution_6_1, [lambda rows: {r["kind"]: r["bytes"] for r in rows}, lambda rows: {"flat": 1}],
        "r['bytes'] / r['n'] for each row", ("rows",)),
    exercise("6.2", "predict", "can the top-K estimate of p(y|x) exceed the exact marginal?", check_6_2, dict,
        s.solution_6_2, [lambda: "a", lambda: "c"], "compare the kept passages' p(z|x) before and after renormalising",
        ("curve",)),
    exercise("6.3", "compute", "write your own memory (Kenya's capital moved) and swap it in", check_6_3,
        lambda: {"model": shipped_model()}, s.solution_6_3, [lambda model: model, lambda model: "Mombasa"],
        "edit today's corpus (load_edition('today')), then swap_memory(model, edited)"),
    exercise("7.1", "compute", "recompute RAG-Token's QA exact match yourself", check_7_1, eval_example, s.solution_7_1,
        [lambda model, questions: float(round(s.solution_7_1(model, questions) * len(questions))),
         lambda model, questions: s.solution_7_1(model, questions) + 1 / len(questions)],
        "decode(model, [e.question for e in questions], 'token', k=5, num_beams=1, max_len=24), then the share of "
        "exact_match hits", ("model", "questions", "reported")),
    exercise("7.2", "compute", "the overall exact match as the per-relation ones weighted by their counts", check_7_2,
        table_example, s.solution_7_2,
        [lambda results, counts: {x: sum(r[x] for r in results["qa_exact_match_by_relation"].values()) /
                                  len(results["qa_exact_match_by_relation"]) for x in results["qa_exact_match"]}],
        "Σ_r counts[r] · exact_match[r][system] / Σ_r counts[r]", ("results", "counts")),
    exercise("7.3", "predict", "closed-book against RAG on entities never seen in training", check_7_3, dict,
        s.solution_7_3, [lambda: "b", lambda: "c"], "where can a model find a fact about a country it never saw?",
        ("qa_exact_match",)),
]
