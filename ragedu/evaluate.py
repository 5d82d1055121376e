"""Evaluating RAG and its closed-book twin on the three tasks, as the paper's Tables 1 and 2 do.   (notebook 7)

    QA       exact match of the greedy answer (the paper decodes QA greedily), per relation too
    claims   accuracy of the label with the higher p(y_1|x): one target token, so RAG-Sequence and
             RAG-Token give the same number (Σ_z and Π_i commute when there is one i)
    clues    share of each clue's facts (population, country) found in the beam-searched clue
    retrieval recall@K of the gold passage on QA questions
    phrasing_*   the same QA and claim figures on the held-out phrasing families (ragedu.phrasings): the split's
             entities asked in forms never trained on ("Tell me the capital of austria", "I think ...")
    memory signal  how often ragedu.relevance's signal stays quiet on those held-out phrasings, and how often it
             speaks on questions about things the memory does not hold (data/tasks/out_of_corpus*.txt)
"""
from __future__ import annotations

import re
import string

import torch
from tqdm.auto import tqdm

from ragedu.decoding import BEAM, GREEDY, DecodeSettings, decode, rag_token_decode
from ragedu.generator import Generator
from ragedu.marginalize import VARIANTS, rag_sequence_log_likelihood, rag_token_log_likelihood
from ragedu.corpus import DATA_DIR
from ragedu.model import RagModel
from ragedu.phrasings import held_out_examples
from ragedu.retriever import Retrieved
from ragedu.tasks import LABELS, Example, load_task

# questions our geography memory holds nothing on: the dev ones tuned on, the test ones reported
OUT_OF_CORPUS = {"dev": DATA_DIR / "tasks" / "out_of_corpus_dev.txt", "test": DATA_DIR / "tasks" / "out_of_corpus.txt"}


def normalize_answer(s: str) -> str:
    """SQuAD's normalisation: lower case, no punctuation, no articles, single spaces."""
    s = "".join(ch for ch in s.lower() if ch not in set(string.punctuation))
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", s).split())


def exact_match(prediction: str, answer: str) -> bool:
    return normalize_answer(prediction) == normalize_answer(answer)


def batches(examples: list[Example], size: int, desc: str, progress: bool):
    for start in tqdm(range(0, len(examples), size), desc=desc, disable=not progress):
        yield examples[start:start + size]


@torch.no_grad()
def answer_questions(model: RagModel, questions: list[str], k: int, settings: DecodeSettings,
                     retrieved: Retrieved | None = None) -> dict[str, list[str]]:
    """The answer of each variant from one retrieval, decoded with `settings` (e.g. GREEDY or BEAM)."""
    retrieved = retrieved if retrieved is not None else model.retriever.retrieve(questions, k)
    return {variant: decode(model, questions, variant, k, retrieved=retrieved, settings=settings).answers
            for variant in VARIANTS}


@torch.no_grad()
def closed_book_answers(generator: Generator, questions: list[str], num_beams: int = 1, max_len: int = 20):
    """The baseline reads the question alone: one 'passage' with p(z|x) = 1."""
    ids, mask = generator.question_inputs(questions)  # (B, 1, L)
    log_p_z = torch.zeros(len(questions), 1, device=ids.device)
    return rag_token_decode(generator, log_p_z, ids, mask, DecodeSettings(num_beams=num_beams, max_len=max_len)).answers


@torch.no_grad()
def classify_claims(model: RagModel, claims: list[str], k: int) -> dict[str, list[str]]:
    """The label whose one token is likelier, under each variant    -> {'sequence': [...], 'token': [...]}"""
    retrieved = model.retriever.retrieve(claims, k)
    log_p_y = {"sequence": [], "token": []}
    for label in LABELS:
        log_p_yi, y, _ = model.generator_log_p_yi(retrieved, [label] * len(claims))  # (B, K, T)
        if (y[:, 1] != model.generator.tokenizer.eos_token_id).any():
            raise ValueError(f"the label {label!r} is more than one token in this vocabulary")
        first = log_p_yi[:, :, :1]  # (B, K, 1): the label token; the </s> after it says nothing about the class
        log_p_y["sequence"].append(rag_sequence_log_likelihood(retrieved.log_p_z, first))
        log_p_y["token"].append(rag_token_log_likelihood(retrieved.log_p_z, first))
    return {v: [LABELS[i] for i in torch.stack(scores, -1).argmax(-1).tolist()] for v, scores in log_p_y.items()}


def mean(xs) -> float:
    xs = list(xs)
    return round(sum(xs) / len(xs), 4) if xs else float("nan")


def qa_figures(model: RagModel, closed_book: Generator | None, qa: list[Example], k: int, batch_size: int,
               progress: bool, desc: str = "QA") -> dict:
    """recall@5, and exact match per decoder and per relation, on QA examples."""
    hits, correct = [], {"sequence": [], "token": [], "closed_book": []}
    for batch in batches(qa, batch_size, desc, progress):
        questions = [e.question for e in batch]
        with torch.no_grad():
            retrieved = model.retriever.retrieve(questions, max(k, 5))  # once: recall@5 and both decoders
        hits += [e.gold_ids[0] in ids[:5] for e, ids in zip(batch, retrieved.ids)]
        answers = answer_questions(model, questions, k, GREEDY, retrieved)
        if closed_book is not None:
            answers["closed_book"] = closed_book_answers(closed_book, questions)
        for name, preds in answers.items():
            correct[name] += [exact_match(p, e.answer) for p, e in zip(preds, batch)]
    names = [n for n in correct if correct[n]]
    relations = sorted({e.relation for e in qa})
    return {"recall_at_5": mean(hits), "exact_match": {n: mean(correct[n]) for n in names},
            "by_relation": {r: {n: mean(c for c, e in zip(correct[n], qa) if e.relation == r) for n in names}
                            for r in relations}}


def claim_figures(model: RagModel, claims: list[Example], k: int, batch_size: int, progress: bool,
                  desc: str = "claims") -> dict:
    """Label accuracy per variant on claims."""
    right = {"sequence": [], "token": []}
    for batch in batches(claims, batch_size, desc, progress):
        for variant, labels in classify_claims(model, [e.question for e in batch], k).items():
            right[variant] += [label == e.answer for label, e in zip(labels, batch)]
    return {v: mean(r) for v, r in right.items()}


def out_of_corpus_questions(split: str = "test") -> list[str]:
    """The split's questions about things the memory does not hold (never trained on)."""
    if split not in OUT_OF_CORPUS:
        raise ValueError(f"out-of-corpus questions exist for the splits {', '.join(OUT_OF_CORPUS)}, not {split!r}")
    lines = OUT_OF_CORPUS[split].read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


@torch.no_grad()
def signal_speaks(model: RagModel, questions: list[str], batch_size: int = 256) -> float | None:
    """Share of questions on which the memory signal speaks (None if the model has no calibrated threshold)."""
    speaks = []
    for start in range(0, len(questions), batch_size):
        signals = model.retriever.retrieve(questions[start:start + batch_size], 1).memory_signals
        if signals is None:
            return None
        speaks += [s.speaks for s in signals]
    return mean(speaks)


def evaluate(model: RagModel, closed_book: Generator | None, split: str = "test", k: int = 5,
             batch_size: int = 64, progress: bool = True, limit: int | None = None) -> dict:
    """The figures of `ragedu eval --json` for one split."""
    model.eval()
    qa, claims, clues = (load_task(t, split)[:limit] for t in ("qa", "claims", "clues"))
    qa_held_out, claims_held_out = (held_out_examples(t, split)[:limit] if split != "train" else []
                                    for t in ("qa", "claims"))
    ours = qa_figures(model, closed_book, qa, k, batch_size, progress)
    claim = claim_figures(model, claims, k, batch_size, progress)

    clue_facts = {"sequence": [], "token": []}
    for batch in batches(clues, batch_size, "clues", progress):
        for variant, texts in answer_questions(model, [e.question for e in batch], k, BEAM).items():
            clue_facts[variant] += [v in text for text, e in zip(texts, batch) for v in e.facts.values()]

    figures = {
        "split": split, "k": k,
        "retrieval_recall_at_5": ours["recall_at_5"],
        "qa_exact_match": ours["exact_match"],
        "qa_exact_match_by_relation": ours["by_relation"],
        "claim_accuracy": claim,
        "clue_fact_accuracy": {v: mean(r) for v, r in clue_facts.items()},
        "examples": {"qa": len(qa), "claims": len(claims), "clues": len(clues)},
    }
    if qa_held_out:
        phrased = qa_figures(model, closed_book, qa_held_out, k, batch_size, progress, "QA, held-out phrasings")
        phrased_claims = claim_figures(model, claims_held_out, k, batch_size, progress, "claims, held-out phrasings")
        out_of_corpus = out_of_corpus_questions(split)
        figures.update({
            "phrasing_retrieval_recall_at_5": phrased["recall_at_5"],
            "phrasing_qa_exact_match": phrased["exact_match"],
            "phrasing_qa_exact_match_by_relation": phrased["by_relation"],
            "phrasing_claim_accuracy": phrased_claims,
            "memory_signal": {   # quiet = 1 - speaks
                "speaks_on_held_out_phrasings": signal_speaks(model, [e.question for e in qa_held_out + claims_held_out]),
                "speaks_out_of_corpus": signal_speaks(model, out_of_corpus),
                "out_of_corpus_questions": len(out_of_corpus),
                "threshold": model.retriever.relevance_threshold,
            },
        })
        figures["examples"].update({"phrasing_qa": len(qa_held_out), "phrasing_claims": len(claims_held_out)})
    return figures
