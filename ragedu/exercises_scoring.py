"""The checkers of notebooks 1–3: the retriever, the generator, and the two marginals.   (notebooks 1, 2 and 3)

Each checker takes (verdicts, answer, **the notebook's inputs) and computes the expected answer from those
inputs with the library (ragedu.marginalize, the generator's own input builder), not from the solution.
"""
from __future__ import annotations

import torch

from ragedu import solutions as s
from ragedu.exercise_kit import (exercise, as_tensor, compare_choice, compare_number, compare_tensor,
                                 shipped_model)
from ragedu.marginalize import (rag_sequence_log_likelihood, rag_token_log_likelihood, sequence_posterior,
                                token_posterior)

AUSTRIA = "What is the capital of Austria?"


def retrieval_example() -> dict:
    """Notebook 1's inputs: the Austria question, K = 5."""
    retriever = shipped_model().retriever
    retrieved = retriever.retrieve([AUSTRIA], k=5)
    return {"p_full": retriever.full_log_p_z([AUSTRIA]).exp()[0], "rows": retrieved.rows[0],
            "log_p_z": retrieved.log_p_z[0]}


def scored_example() -> dict:
    """Notebooks 2 and 3's inputs: one held-out clue scored with K = 5, and the generator that scored it."""
    from ragedu.tasks import load_task

    model = shipped_model()
    example = load_task("clues", "test")[0]
    scores = model.score([example.question], [example.answer], k=5)
    return {"log_p_z": scores.log_p_z, "log_p_yi": scores.log_p_yi, "generator": model.generator,
            "question": example.question, "title": scores.retrieved.titles[0][0], "text": scores.retrieved.texts[0][0]}


# ---- notebook 1 ----

def check_1_1(v, answer, p_full, rows):
    kept = p_full[rows].double()                                   # (K,)
    return compare_tensor(v, answer, kept / kept.sum(), "the top-K p(z|x) is the corpus-wide posterior "
                          "renormalised over the K passages found: the paper's truncation keeps their ratios",
                          {"that is p(z|x) over the whole corpus, not renormalised over the top K: divide by its "
                           "sum over the K rows": kept}, "your p(z|x)", probability=True, normalised_dim=-1)


def check_1_2(v, answer, log_p_z):
    p_z = log_p_z.double().exp()                                     # (K,)
    return compare_tensor(v, answer, p_z ** 2 / (p_z ** 2).sum(),
                          "softmax(2·s) ∝ p(z|x)²: the same top K in the same order (doubling every score keeps "
                          "their order), but sharper: the top passage gains, the tail loses",
                          {"that is p(z|x) unchanged, but a softmax ignores a shift of the scores, not a scale: "
                           "every d(z)ᵀq(x) doubles": p_z,
                           "you doubled p(z|x); a doubled score squares exp(s), and p(z|x) must still sum to 1":
                               2 * p_z,
                           "that is softmax(s/2), flatter: doubling d(z) doubles the scores":
                               p_z.sqrt() / p_z.sqrt().sum()},
                          "your new p(z|x)", probability=True, normalised_dim=-1)


def check_1_3(v, answer):
    return compare_choice(v, answer, {
        "a": "near 0: no passage is about it",
        "b": "it can be large: p(z|x) is renormalised over the top K, whatever they are about",
        "c": "exactly 1/K: the retriever has no preference"}, "b",
        "A softmax over the K passages found always sums to 1, so a question the memory cannot answer still gives "
        "its best match a large share; the raw scores (the memory signal s(x)) are what can tell",
        {"a": "the softmax runs over the top K only, so their p(z|x) sum to 1 even if all K are off topic",
         "c": "the scores d(z)ᵀq(x) of unrelated passages still differ, and the softmax keeps their differences"})


# ---- notebook 2 ----

def check_2_1(v, answer, log_p_yi, log_p_z=None):
    log_p_y_given_z = log_p_yi[0].sum(-1)                            # (K,) log p_θ(y|x,z)
    K, best = log_p_y_given_z.numel(), int(log_p_y_given_z.argmax())
    given = as_tensor(answer)
    if given is None or given.numel() != 1 or given.item() != int(given.item()) or not 0 <= given.item() < K:
        return v.wrong(f"answer with a passage index k, a whole number from 0 to {K - 1}, got {answer!r}")
    k = int(given.item())
    if k == best:
        return v.right(f"passage {k} gives the clue log p_θ(y|x,z) = {log_p_y_given_z[k]:.2f}, the most of the K: "
                       "the generator finds the answer likely under the passage that states its facts")
    if log_p_z is not None and k == int(log_p_z.reshape(-1).argmax()):
        return v.wrong(f"passage {k} is the retriever's first choice, largest p(z|x); the question is which passage "
                       "makes the clue likeliest under the generator")
    return v.wrong(f"passage {k} gives log p_θ(y|x,z) = {log_p_y_given_z[k]:.2f}, not the largest of the K")


def check_2_2(v, answer):
    return compare_choice(v, answer, {
        "a": "all of them change: the shorter target is another sequence",
        "b": "none of the tokens before the last one change: token i sees only y<i",
        "c": "only the first token keeps its log-probability"}, "b",
        "Teacher forcing feeds <s> y_1 … y_{T-1}, and the decoder's self-attention is causal, so the score of y_i "
        "depends on y<i alone; only the last position differs, where the short target has </s>",
        {"a": "the tokens before the cut see the same prefix y<i, and the decoder cannot look ahead",
         "c": "every token i before the cut sees the same y<i, not only the first"})


def check_2_3(v, answer, generator, question, title, text):
    long_text = " ".join([text] * 30)
    ids, mask = generator.context_inputs([[title]], [[long_text]], [question])     # (1, 1, L)
    expected = ids[0, 0][mask[0, 0] == 1].tolist()
    given = as_tensor(answer)
    if given is None or given.dim() != 1:
        return v.wrong("give the input's token ids as one list (or 1-D tensor), padding removed")
    got = [int(t) for t in given.tolist()]
    x, eos = generator.question_tokens(question), generator.tokenizer.eos_token_id
    tail, separator = x + [eos], generator.separator_tokens
    if got == expected:
        return v.right(f"the input fills max_input_len = {generator.max_input_len} tokens and still ends with ` //`, "
                       "the question and </s>: the passage is cut, never the question")
    if len(got) > generator.max_input_len:
        return v.wrong(f"{len(got)} tokens is more than the generator reads ({generator.max_input_len}); build the "
                       "input with generator.context_inputs, which cuts it")
    if got[-len(tail):] != tail:
        return v.wrong("your input does not end with the question and </s>: the question was cut, as Hugging Face's "
                       "RAG cuts the whole string; ragedu cuts the passage instead")
    if got[-len(tail) - len(separator):-len(tail)] != separator:
        return v.wrong("the ` //` separator before the question is missing")
    return v.wrong("these are not the ids generator.context_inputs builds for the long passage")


def wrong_2_3_cut_at_the_end(generator, question, title, text):
    """The whole string cut at max_input_len, question included (Hugging Face's way)."""
    words = generator.tokenizer(generator.passage_text(title, " ".join([text] * 30)),
                                add_special_tokens=False).input_ids
    row = [generator.tokenizer.bos_token_id, *words, *generator.question_tokens(question),
           generator.tokenizer.eos_token_id]
    return row[:generator.max_input_len]


# ---- notebook 3 ----

def check_3_1(v, answer, log_p_z, log_p_yi):
    joint = log_p_z + log_p_yi.sum(-1)                                  # (B, K)
    return compare_tensor(v, answer, rag_sequence_log_likelihood(log_p_z, log_p_yi), "one logsumexp over the "
                          "passages of log p(z|x) + log p_θ(y|x,z): a mixture in which each passage explains the "
                          "whole answer", {
                              "you summed over the passages in log space; log Σ_z needs a logsumexp, not a sum":
                                  joint.sum(-1),
                              "off by the prior: add log p(z|x) to each passage's log p_θ(y|x,z) before the logsumexp":
                                  torch.logsumexp(log_p_yi.sum(-1), dim=-1),
                              "that is RAG-Token (Σ_z inside Π_i); RAG-Sequence puts the sum over z outside the "
                              "product": rag_token_log_likelihood(log_p_z, log_p_yi),
                              "you took the best passage only (a max); RAG-Sequence sums over all K":
                                  joint.max(-1).values},
                          "your log p(y|x)", probability=False)


def check_3_2(v, answer, log_p_z, log_p_yi):
    token = rag_token_log_likelihood(log_p_z, log_p_yi).double()
    return compare_number(v, answer, token.exp().item(), "your loops give RAG-Token's p(y|x): at every token a "
                          "sum over passages, then the product over tokens", {
                              "that is log p(y|x); the exercise asks for the probability": token.item(),
                              "that is RAG-Sequence: you multiplied over tokens inside the sum over passages; "
                              "RAG-Token sums over z inside the product over i":
                                  rag_sequence_log_likelihood(log_p_z, log_p_yi).exp().item()},
                          "your p(y|x)", rtol=1e-4, atol=0.0)


def check_3_3(v, answer, log_p_z, log_p_yi):
    token = rag_token_log_likelihood(log_p_z, log_p_yi).exp().item()
    sequence = rag_sequence_log_likelihood(log_p_z, log_p_yi).exp().item()
    right = "c" if abs(token - sequence) <= 1e-6 * max(token, sequence) else ("a" if token > sequence else "b")
    why = (f"Here RAG-Token gives {token:.3g} and RAG-Sequence {sequence:.3g}. RAG-Token wins when different tokens "
           "need different passages (it mixes afresh at each token); RAG-Sequence wins when one passage explains "
           "every token (it pays the prior once)")
    return compare_choice(v, answer, {"a": "RAG-Token is larger", "b": "RAG-Sequence is larger",
                                      "c": "they are equal"}, right, why,
                          {"a": "RAG-Token is not the larger here", "b": "RAG-Sequence is not the larger here",
                           "c": "the two differ here"})


def check_3_4(v, answer, q, T):
    log_q = torch.tensor(float(q), dtype=torch.float64).log()
    return compare_tensor(v, answer, torch.stack([log_q, T * log_q]), "RAG-Sequence pays the prior once, "
                          "log q; RAG-Token pays it at every fact token, T·log q: an unsure retriever costs RAG-Token "
                          "much more on answers only one passage explains", {
                              "you swapped them: RAG-Sequence is the mixture that pays p(z*|x) once":
                                  torch.stack([T * log_q, log_q]),
                              "RAG-Token does not pay the prior once: with Σ_z inside Π_i, each of the T tokens "
                              "pays a factor q": torch.stack([log_q, log_q])},
                          "your (RAG-Sequence, RAG-Token) log p(y|x)", probability=False)


def check_3_5(v, answer, log_p_z, log_p_yi):
    joint = (log_p_z + log_p_yi.sum(-1)).double()                        # (B, K)
    return compare_tensor(v, answer, sequence_posterior(log_p_z, log_p_yi)[..., -1].exp(), "p(z|x,y) = "
                          "p(z|x) p_θ(y|x,z) / p(y|x): the evidence of the whole answer moves the prior onto the "
                          "passages that explain it", {
                              "that is the prior p(z|x): Bayes multiplies it by p_θ(y|x,z)": log_p_z.exp(),
                              "that is RAG-Token's posterior for the last token alone (</s>); p(z|x,y) weighs every "
                              "token of the answer": token_posterior(log_p_z, log_p_yi)[..., -1].exp()},
                          "your p(z|x,y)", probability=True, normalised_dim=-1)


def pattern_example() -> dict:
    """Two passages, each explaining one of two tokens."""
    return {"log_p_z": torch.tensor([[0.5, 0.5]]).log(), "log_p_yi": torch.tensor([[[0.9, 0.1], [0.1, 0.9]]]).log()}


EXERCISES = [
    exercise("1.1", "compute", "renormalise the corpus-wide p(z|x) over the top-K rows", check_1_1, retrieval_example,
        s.solution_1_1, [lambda p_full, rows: p_full[rows],
                         lambda p_full, rows: (p_full[rows] / p_full[rows].sum()).log()],
        "take p_full at the K rows and divide by their sum", ("p_full", "rows")),
    exercise("1.2", "derive", "p(z|x) when every d(z) is scaled by 2, from log p(z|x) alone",
        check_1_2, retrieval_example,
        s.solution_1_2, [lambda log_p_z: log_p_z.exp(), lambda log_p_z: 2 * log_p_z.exp()],
        "every score d(z)ᵀq(x) doubles; write softmax(2s) in terms of p(z|x) = softmax(s)", ("log_p_z",)),
    exercise("1.3", "predict", "can a question no passage is about give its top passage a large p(z|x)?",
        check_1_3, dict,
        s.solution_1_3, [lambda: "a", lambda: "c"], "what does p(z|x) sum to over the top K?"),
    exercise("2.1", "compute", "which passage makes the clue likeliest under the generator", check_2_1, scored_example,
        s.solution_2_1, [lambda log_p_yi: int(log_p_yi[0].sum(-1).argmin()), lambda log_p_yi: log_p_yi.shape[1]],
        "sum log_p_yi over the tokens, one number per passage, and take the argmax", ("log_p_yi", "log_p_z")),
    exercise("2.2", "predict", "does scoring a shorter target change the earlier tokens' log-probabilities?", check_2_2,
        dict, s.solution_2_2, [lambda: "a", lambda: "c"], "what may the decoder look at when it scores token i?"),
    exercise("2.3", "compute", "build the input for a very long passage; the question must survive", check_2_3,
        scored_example, s.solution_2_3, [wrong_2_3_cut_at_the_end,
                                         lambda generator, question, title, text: wrong_2_3_cut_at_the_end(
                                             generator, question, title, text) + [0]],
        "generator.context_inputs([[title]], [[long_text]], [question]), then keep the ids where the mask is 1",
        ("generator", "question", "title", "text")),
    exercise("3.1", "compute", "RAG-Sequence log p(y|x) from log p(z|x) and log p_θ(y_i|…)",
        check_3_1, scored_example,
        s.solution_3_1, [lambda log_p_z, log_p_yi: (log_p_z + log_p_yi.sum(-1)).sum(-1),
                         lambda log_p_z, log_p_yi: torch.logsumexp(log_p_yi.sum(-1), dim=-1),
                         lambda log_p_z, log_p_yi: rag_token_log_likelihood(log_p_z, log_p_yi)],
        "sum log_p_yi over tokens, add log_p_z, then torch.logsumexp over the passage axis", ("log_p_z", "log_p_yi")),
    exercise("3.2", "compute", "RAG-Token p(y|x) with plain loops in probability space", check_3_2, scored_example,
        s.solution_3_2, [lambda log_p_z, log_p_yi: rag_token_log_likelihood(log_p_z, log_p_yi).item(),
                         lambda log_p_z, log_p_yi: rag_sequence_log_likelihood(log_p_z, log_p_yi).exp().item()],
        "p = 1; for each token i: p *= Σ_k p(z_k|x) · p(y_i|x,z_k,y<i)", ("log_p_z", "log_p_yi")),
    exercise("3.3", "predict", "which model gives the two-token pattern the larger p(y|x)?", check_3_3, pattern_example,
        s.solution_3_3, [lambda: "b", lambda: "c"], "does any single passage explain both tokens?",
        ("log_p_z", "log_p_yi")),
    exercise("3.4", "derive", "both log p(y|x) when only z* (prior q) explains T fact tokens", check_3_4,
        lambda: {"q": 0.4, "T": 3}, s.solution_3_4, [lambda q, T: s.solution_3_4(q, T).flip(0),
                                                    lambda q, T: s.solution_3_4(q, T).exp()],
        "write both formulas with p_θ = 1 under z* and 0 under every other passage", ("q", "T")),
    exercise("3.5", "compute", "RAG-Sequence's posterior p(z|x,y) by Bayes' rule", check_3_5, scored_example,
        s.solution_3_5, [lambda log_p_z, log_p_yi: log_p_z.exp(),
                         lambda log_p_z, log_p_yi: (log_p_z + log_p_yi.sum(-1)).exp()],
        "log p(z|x) + log p_θ(y|x,z), minus its logsumexp over z, then exp", ("log_p_z", "log_p_yi")),
]
