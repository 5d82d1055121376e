"""The checkers of notebook 4 (the decoders) and notebook 9 (the explorer).   (notebooks 4 and 9)

Each checker takes (verdicts, answer, **the notebook's inputs) and computes the expected answer from those
inputs; the choice exercises explain the right answer whichever letter was chosen.
"""
from __future__ import annotations

import torch

from ragedu import solutions as s
from ragedu.exercise_kit import exercise, compare_choice, compare_number, compare_tensor, shipped_model
from ragedu.marginalize import rag_sequence_ranking


def constructed_example() -> dict:
    """Notebook 4's constructed case: two passages, two hypotheses, one greedy beam each."""
    return {"log_p_z": torch.tensor([0.5, 0.5]).log(), "log_p_y_given_z": torch.tensor([[0.5, 0.3], [0.45, 0.4]]).log(),
            "on_beam": torch.tensor([[True, False], [False, True]])}


def thorough_example() -> dict:
    """Notebook 4's thorough trace for the Austria question (K = 5, 3 beams)."""
    from ragedu.decoding import decode

    decoded = decode(shipped_model(), ["What is the capital of Austria?"], "sequence", k=5, mode="thorough",
                     num_beams=3, max_len=12, trace=True)
    return {"trace": decoded.trace[0]}


def check_4_1(v, answer, log_p_z, log_p_y_given_z, on_beam):
    found = log_p_y_given_z.masked_fill(~on_beam, float("-inf"))              # (H, K) p_θ := 0 off the beams
    fast, _ = rag_sequence_ranking(log_p_z[None], found[None])                   # (1, H)
    thorough, _ = rag_sequence_ranking(log_p_z[None], log_p_y_given_z[None])     # (1, H)
    beams_only = torch.logsumexp(found, dim=-1).exp()                            # (H,) without the prior
    return compare_tensor(v, answer, fast[0].exp(), "fast decoding sums p(z|x) p_θ(y|x,z) over the passages whose "
                          "beam found y and counts every other cell as 0: no extra forward pass, and an "
                          "under-count wherever a beam missed y", {
                              "that is thorough decoding: you also counted the cells no beam filled": thorough[0].exp(),
                              "off by the prior: weigh each p_θ(y|x,z) by p(z|x)": beams_only},
                          "your fast p(y|x)", probability=True)


def check_4_2(v, answer, trace=None):
    holds = "" if trace is None else (
        f" In the Austria trace it holds for {int((trace.log_p_y_fast <= trace.log_p_y_thorough + 1e-5).sum())} of "
        f"{len(trace.texts)} hypotheses.")
    return compare_choice(v, answer, {
        "a": "fast p(y|x) ≤ thorough p(y|x) for every hypothesis",
        "b": "fast p(y|x) ≥ thorough p(y|x) for every hypothesis",
        "c": "either can be larger, hypothesis by hypothesis"}, "a",
        "Both are Σ_z p(z|x) p_θ(y|x,z), a sum of non-negative terms; fast drops the terms of passages whose beam "
        "missed y, so it can only under-count (the ranking can still change)." + holds,
        {"b": "fast sets some terms to 0 and adds nothing", "c": "fast drops terms and never adds any"})


def check_4_3(v, answer, trace):
    marks = [mark for row in trace.source for mark in row]
    extra, beam = sum(m == "rescored" for m in marks), sum(m == "beam" for m in marks)
    return compare_number(v, answer, extra, f"thorough decoding ran {extra} extra teacher-forced passes of "
                          f"{len(marks)} cells: every (y, z) cell no beam filled, which fast decoding sets to 0", {
                              "that is every cell of the matrix; the beams already filled some of them": len(marks),
                              "those are the cells the beams filled; thorough rescored the others": beam},
                          "your number of extra passes", atol=0.0, rtol=0.0)


def check_4_4(v, answer):
    return compare_choice(v, answer, {
        "a": "RAG-Token", "b": "RAG-Sequence with thorough decoding", "c": "RAG-Sequence with fast decoding",
        "d": "none: every answer comes from some passage's beam"}, "a",
        "RAG-Token's one beam search walks the mixed transition Σ_z p(z|x) p_θ(y_i|x,z,y<i), so its answer can take "
        "each token from another passage; RAG-Sequence, thorough or fast, only ranks Y, the union of the "
        "per-passage beams: thorough rescores them, it finds no new hypothesis",
        {"b": "thorough rescores the hypotheses in Y but adds none to it",
         "c": "fast ranks the same Y as thorough, with fewer terms",
         "d": "RAG-Token runs no beam per passage at all"})


def check_4_5(v, answer):
    return compare_choice(v, answer, {
        "a": "p(y|x) factorises left to right into per-token marginals Σ_z p(z|x) p_θ(y_i|x,z,y<i)",
        "b": "each step of its search picks a passage from the document index",
        "c": "it commits to the retriever's best passage, so it is BART's own beam search",
        "d": "p(z|x) is renormalised over the top K"}, "a",
        "p(y|x) = Π_i p'(y_i|x,y<i), each factor a distribution over the vocabulary, so every prefix has an exact "
        "score and one more token multiplies it by one more factor: an ordinary beam search over tokens. "
        "RAG-Sequence's Σ_z Π_i has no such per-prefix factor, hence one search per passage",
        {"b": "the search runs over the vocabulary of tokens; the passages are summed out at every step, never chosen",
         "c": "every step mixes all K passages, weighted by p(z|x)",
         "d": "the renormalisation holds for RAG-Sequence too, which still cannot use one beam search"})


def check_9_1(v, answer, p_z=None, answers=None):
    shown = ""
    if p_z is not None and answers is not None:
        (token, p_token), (sequence, p_sequence) = answers["token"], answers["sequence"]
        shown = (f" The explorer shows K = {len(p_z)}: RAG-Token {token!r} with p(y|x) = {p_token:.3f}, "
                 f"RAG-Sequence {sequence!r} with {p_sequence:.3f}"
                 + ("." if len(p_z) == 1 else "; set K to 1 (and the beam size to 1) to see them agree."))
    return compare_choice(v, answer, {
        "a": "they differ: RAG-Token still mixes passages at each token",
        "b": "p(z|x) = 1 for the one passage, and both models become Π_i p_θ(y_i|x,z,y<i)",
        "c": "they agree only when the answer has one token"}, "b",
        "A softmax over one passage is 1, and a sum over one passage is its one term, so Σ_z and Π_i commute: "
        "both models are the same p_θ(y|x,z), and greedy decoding finds the same y." + shown,
        {"a": "with one passage there is nothing to mix: Σ_z has a single term",
         "c": "one token (T = 1) is another case where they agree; one passage (K = 1) is enough on its own"})


def check_9_2(v, answer, p_top=None):
    shown = ""
    if p_top is not None:
        steps = [round(float(p), 3) for p in p_top]
        falls = all(a >= b - 1e-9 for a, b in zip(steps, steps[1:]))
        shown = f" Here, K = 1…{len(steps)}: {steps}" + ("" if falls else " (these were not read at growing K)")
    return compare_choice(v, answer, {"a": "it goes down (or stays)", "b": "it goes up", "c": "it stays the same"}, "a",
                          "p(top|x) = exp s_1 / Σ_{k≤K} exp s_k: each new passage adds a positive term to the "
                          "denominator, so the same passage's share can only shrink." + shown,
                          {"b": "the numerator stays while the denominator grows",
                           "c": "the new passages take their share of the softmax"})


EXERCISES = [
    exercise("4.1", "compute", "fast p(y|x) of the constructed case", check_4_1, constructed_example, s.solution_4_1,
        [lambda log_p_z, log_p_y_given_z, on_beam: torch.logsumexp(log_p_z + log_p_y_given_z, dim=-1).exp(),
         lambda log_p_z, log_p_y_given_z, on_beam: (log_p_y_given_z.exp() * on_beam).sum(-1)],
        "set log p_θ(y|x,z) to -inf where on_beam is False, add log p(z|x), logsumexp over passages, exp",
        ("log_p_z", "log_p_y_given_z", "on_beam")),
    exercise("4.2", "predict", "fast p(y|x) against thorough p(y|x)", check_4_2, thorough_example, s.solution_4_2,
        [lambda: "b", lambda: "c"], "both are a sum of non-negative terms; which terms does fast keep?", ("trace",)),
    exercise("4.3", "compute", "count thorough decoding's extra forward passes", check_4_3, thorough_example,
        s.solution_4_3, [lambda trace: len(trace.source) * len(trace.source[0]),
                         lambda trace: sum(m == "beam" for row in trace.source for m in row)],
        "count the cells of trace.source marked 'rescored'", ("trace",)),
    exercise("4.4", "predict", "which decoder can return an answer no single passage's beam found", check_4_4, dict,
        s.solution_4_4, [lambda: "b", lambda: "d"], "which decoder searches once, over the mixed transition?"),
    exercise("4.5", "derive", "why an ordinary beam search decodes RAG-Token's own model", check_4_5, dict,
        s.solution_4_5, [lambda: "b", lambda: "c"],
        "write p(y|x) of RAG-Token as a product over i: what is each factor?"),
    exercise("9.1", "derive", "why K = 1 makes the two models one", check_9_1, dict, s.solution_9_1,
        [lambda: "a", lambda: "c"], "what is a softmax over one passage? a sum with one term?", ("p_z", "answers")),
    exercise("9.2", "predict", "how the top passage's p(z|x) moves as K grows", check_9_2, dict, s.solution_9_2,
        [lambda: "b", lambda: "c"], "write p(top|x) as a softmax over the top K: what does a larger K add?",
        ("p_top",)),
]
