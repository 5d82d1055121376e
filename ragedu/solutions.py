"""Solutions to the course's exercises, one function per exercise, for a teacher to read.   (notebooks 1–7, 9)

Students see one with `python -m ragedu.exercises --solution 3.1` (or `show_solution("3.1")` in a cell).
Each function takes the notebook's variables by the names the exercise cell passes to `check` and returns
the answer that cell asks for. Predict and derive exercises return a letter; their reasoning is the docstring.
"""
from __future__ import annotations

import torch

from ragedu.corpus import Corpus, Passage
from ragedu.decoding import decode
from ragedu.editions import load_edition
from ragedu.evaluate import exact_match
from ragedu.memory import swap_memory
from ragedu.retriever import index_vectors

# ---- notebook 1: the retriever ----


def solution_1_1(p_full, rows):
    """The top-K posterior is the full posterior renormalised over the K retrieved rows."""
    kept = p_full[rows]                      # (K,) p_full(z|x) of the top K
    return kept / kept.sum()                 # (K,) sums to 1


def solution_1_2(log_p_z):
    """Scale every d(z) by 2: every score s(z) = d(z)ᵀq(x) doubles, and softmax(2s) ∝ exp(s)² ∝ p(z|x)².
    The order of the scores is unchanged, so FAISS returns the same top K; the softmax over them is sharper."""
    p_z = log_p_z.exp()                      # (K,)
    return p_z ** 2 / (p_z ** 2).sum()       # (K,)


def solution_1_3():
    """(b): p(z|x) is renormalised over the K passages found, whatever they are about, so it sums to 1 even when
    none is relevant; the raw scores (and the memory signal s(x)) are what can tell."""
    return "b"


# ---- notebook 2: the generator ----


def solution_2_1(log_p_yi):
    """log p_θ(y|x,z) = Σ_i log p_θ(y_i|x,z,y<i): sum each passage's row, take the largest."""
    log_p_y_given_z = log_p_yi[0].sum(-1)    # (K,)
    return int(log_p_y_given_z.argmax())


def solution_2_2():
    """(b): the decoder is causal; token i attends only to y<i, so cutting what comes after a token cannot change
    its log-probability. Only the last position changes: the shorter target has </s> there."""
    return "b"


def solution_2_3(generator, question, title, text):
    """One very long passage: the generator cuts the passage's text and keeps ` //`, the question and </s>."""
    long_text = " ".join([text] * 30)
    ids, mask = generator.context_inputs([[title]], [[long_text]], [question])   # (1, 1, L)
    return ids[0, 0][mask[0, 0] == 1]                                           # (L,) without padding


# ---- notebook 3: marginalization ----


def solution_3_1(log_p_z, log_p_yi):
    """RAG-Sequence: log p(y|x) = logsumexp_z(log p(z|x) + Σ_i log p_θ(y_i|x,z,y<i))."""
    log_p_y_given_z = log_p_yi.sum(-1)                       # (B, K)
    return torch.logsumexp(log_p_z + log_p_y_given_z, dim=-1)  # (B,)


def solution_3_2(log_p_z, log_p_yi):
    """RAG-Token by plain loops in probability space: a product over tokens of a sum over passages."""
    p_z, p_yi = log_p_z[0].exp().tolist(), log_p_yi[0].exp().tolist()   # K numbers; K lists of T numbers
    p_y = 1.0
    for i in range(len(p_yi[0])):
        p_y *= sum(p_z[k] * p_yi[k][i] for k in range(len(p_z)))
    return p_y


def solution_3_3():
    """(a): token 1 is explained only by passage 0 and token 2 only by passage 1. RAG-Token mixes the passages
    afresh at each token, Π_i Σ_z, so each token finds its passage; RAG-Sequence needs one passage to explain
    both tokens, Σ_z Π_i, and neither does."""
    return "a"


def solution_3_4(q, T):
    """Only z* states the facts. RAG-Sequence pays p(z*|x) once: p(y|x) = q · 1. RAG-Token pays it at every one
    of the T tokens, Π_i (q · 1 + Σ_{z≠z*} p(z|x) · 0) = q^T. In log space: (log q, T log q)."""
    log_q = torch.tensor(q).log()
    return torch.stack([log_q, T * log_q])


def solution_3_5(log_p_z, log_p_yi):
    """Bayes: p(z|x,y) = p(z|x) p_θ(y|x,z) / p(y|x), with p(y|x) RAG-Sequence's sum."""
    joint = log_p_z + log_p_yi.sum(-1)                                  # (B, K) log p(z|x) p_θ(y|x,z)
    return (joint - torch.logsumexp(joint, dim=-1, keepdim=True)).exp()  # (B, K)


# ---- notebook 4: decoding ----


def solution_4_1(log_p_z, log_p_y_given_z, on_beam):
    """Fast decoding: p(y|x) ≈ Σ over the passages whose beam found y of p(z|x) p_θ(y|x,z); the rest count 0."""
    found = log_p_y_given_z.masked_fill(~on_beam, float("-inf"))          # (H, K) log 0 off the beams
    return torch.logsumexp(log_p_z + found, dim=-1).exp()                 # (H,)


def solution_4_2():
    """(a): fast keeps only some terms of the same sum of non-negative numbers p(z|x) p_θ(y|x,z)."""
    return "a"


def solution_4_3(trace):
    """One extra pass per (hypothesis, passage) cell that no beam filled: the cells marked 'rescored'."""
    return sum(mark == "rescored" for row in trace.source for mark in row)


def solution_4_4():
    """(a): RAG-Token's beam search walks the mixed transition, so its answer can take each token from another
    passage; RAG-Sequence, thorough or fast, only ranks Y, the union of the per-passage beams."""
    return "a"


def solution_4_5():
    """(a): p(y|x) = Π_i p'(y_i|x,y<i) with p'(y_i|x,y<i) = Σ_z p(z|x) p_θ(y_i|x,z,y<i), a distribution over the
    vocabulary, so every prefix has its exact score and one more token multiplies it by one more factor.
    RAG-Sequence's log Σ_z p(z|x) Π_i … has no such per-prefix factor."""
    return "a"


# ---- notebook 5: training ----


def solution_5_1(index):
    """The first 400 vectors the FAISS index keeps: the document encoder's d(z), untouched by fine-tuning."""
    return index_vectors(index)[:400]


def solution_5_2():
    """(a): stage 3 trains the query encoder (η) and the generator (θ); the document encoder and the index stay."""
    return "a"


def solution_5_3(before, after, questions, gold):
    """recall@1 over the whole corpus: the share of questions whose gold passage has the largest p(z|x)."""
    return {name: (r.full_log_p_z(questions).argmax(-1) == gold).float().mean().item()
            for name, r in (("before", before), ("after", after))}


def solution_5_4(scores, log_p_y_given_z):
    """d(−log p(y|x)) / d s_z = p(z|x) − p(z|x,y) for RAG-Sequence, where p(z|x) = softmax(s):
    −log p(y|x) = −logsumexp(s + log p_θ(y|x,z)) + logsumexp(s)."""
    p_z = scores.softmax(-1)                                    # (B, K) p(z|x)
    p_z_given_y = (scores + log_p_y_given_z).softmax(-1)        # (B, K) p(z|x,y)
    return p_z - p_z_given_y


# ---- notebook 6: the memory ----


def solution_6_1(rows):
    """Bytes per passage: each index's size over the number of vectors it holds."""
    return {r["kind"]: r["bytes"] / r["n"] for r in rows}


def solution_6_2():
    """(b): the top-K approximation renormalises, dividing the kept p(z|x) by mass(K) ≤ 1; if the kept passages
    explain y better than the dropped ones, the estimate is larger than the exact sum."""
    return "b"


def solution_6_3(model):
    """Today's corpus with Kenya's capital changed, swapped in: same weights, new memory."""
    edited = Corpus([Passage(p.id, p.title, p.text.replace("Its capital is Nairobi.", "Its capital is Mombasa."))
                     for p in load_edition("today")])
    return swap_memory(model, edited)


# ---- notebook 7: evaluation ----


def solution_7_1(model, questions):
    """Greedy RAG-Token, K = 5, as evaluate() decodes QA; exact match after normalisation."""
    answers = decode(model, [e.question for e in questions], "token", k=5, num_beams=1, max_len=24).answers
    return sum(exact_match(a, e.answer) for a, e in zip(answers, questions)) / len(questions)


def solution_7_2(results, counts):
    """Each system's per-relation exact matches, weighted by how many questions each relation has."""
    by_relation = results["qa_exact_match_by_relation"]                 # relation -> system -> exact match
    total = sum(counts[r] for r in by_relation)
    return {system: sum(counts[r] * by_relation[r][system] for r in by_relation) / total
            for system in results["qa_exact_match"]}


def solution_7_3():
    """(a): every test question names a country never seen in training; a closed-book model could only guess."""
    return "a"


# ---- notebook 9: the explorer ----


def solution_9_1():
    """(b): with K = 1 the softmax over one passage gives p(z|x) = 1, and a sum over one passage is its one
    term, so both models are p_θ(y|x,z) = Π_i p_θ(y_i|x,z,y<i): the same number, and greedy finds the same y."""
    return "b"


def solution_9_2():
    """(a): p(top|x) = exp s_1 / Σ_{k≤K} exp s_k; each new passage adds a positive term to the denominator."""
    return "a"
