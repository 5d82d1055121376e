"""The loss of each training stage, and how a batch is drawn.   (notebook 5)

    stage 0  denoise      −log p_θ(passage | passage with masked spans)              BART's pre-training, small
    stage 1  retriever    −log softmax over the batch's passages (DPR, in-batch negatives)
    stage 2  reader       −log p_θ(y | x, gold passage)                              the generator alone
    stage 3  rag          −log p(y|x) over the top-K passages, z latent: `RagModel.loss`
    baseline closed_book  −log p_θ(y | x), the question alone

Each `*_loss(...)` returns a function (rng, batch) -> loss that `ragedu.train.run_stage` calls once per step;
what a batch reads is drawn from rng and rewritten by ragedu.augment.
"""
from __future__ import annotations

import dataclasses
import random

import numpy as np
import torch

from ragedu.augment import (claim_pair, claim_values, fitted, mask_spans, null_question, passage_facts,
                            read_maybe_counterfactual, rephrase, restyle, stated_of, training_names)
from ragedu.corpus import Corpus, passage_text
from ragedu.generator import Generator
from ragedu.model import RagModel
from ragedu.offtopic import offtopic_question
from ragedu.phrasings import held_out_examples, random_style, style
from ragedu.relevance import EmptyPassage, calibrate, empty_passage_loss
from ragedu.retriever import Retriever, embed
from ragedu.tasks import Example, load_task
from ragedu.tokenizer import MASK
from ragedu.train_config import TrainConfig


# ---------------------------------------------------------------------------------------------- batches

def training_examples(data_dir=None) -> dict[str, list[Example]]:
    kwargs = {} if data_dir is None else {"data_dir": data_dir}
    return {task: load_task(task, "train", **kwargs) for task in ("qa", "claims", "clues")}


def by_relation(examples: dict[str, list[Example]]) -> dict[str, dict[str, list[Example]]]:
    """task -> relation -> examples, grouped once so that sampling a batch does not regroup them."""
    grouped: dict[str, dict[str, list[Example]]] = {}
    for task, rows in examples.items():
        for e in rows:
            grouped.setdefault(task, {}).setdefault(e.relation, []).append(e)
    return grouped


def sample_examples(grouped: dict[str, dict[str, list[Example]]], weights: dict, n: int,
                    rng: random.Random) -> list[Example]:
    """n examples: a task by its weight, then (for QA) a relation uniformly, then an example."""
    tasks = [t for t in weights if grouped.get(t)]
    picked = []
    for task in rng.choices(tasks, [weights[t] for t in tasks], k=n):
        relation = rng.choice(sorted(grouped[task]))
        picked.append(rng.choice(grouped[task][relation]))
    return picked



# ---------------------------------------------------------------------------------------------- losses

def denoise_loss(generator: Generator, corpus: Corpus, cfg: TrainConfig):
    """Stage 0: −log p_θ(passage | passage with masked spans)."""
    tok = generator.tokenizer
    texts = [" " + passage_text(p.title, p.text) for p in corpus]

    def loss(rng: random.Random, batch: int) -> torch.Tensor:
        rows_in, rows_out = [], []
        for text in rng.sample(texts, batch):
            ids = tok(text, add_special_tokens=False).input_ids[: generator.max_input_len - 2]
            rows_in.append([tok.bos_token_id, *mask_spans(ids, tok.convert_tokens_to_ids(MASK), cfg.mask_ratio, rng),
                            tok.eos_token_id])
            rows_out.append([*ids, tok.eos_token_id])
        x, x_mask = generator.pad(rows_in)
        y, y_mask = generator.pad(rows_out)
        log_p_yi = generator.log_p_yi(x[:, None], x_mask[:, None], y, y_mask)  # (B, 1, T)
        return -log_p_yi.sum() / y_mask.sum()
    return loss


def retriever_loss(encoder, tokenizer, corpus: Corpus, examples: dict[str, list[Example]], max_len: int = 64,
                   rephrase_share: float = 0.0, filler_share: float = 0.0, null_questions: int = 0,
                   offtopic_questions: int = 0, empty: EmptyPassage | None = None):
    """Stage 1, DPR: −log softmax over the batch's passages, one shared encoder for questions and passages.

    Negatives are the other questions' gold passages (in-batch) plus one hard negative per question:
    another passage of the same country, which shares the country's name with the gold passage, so that
    only the rest of the question (a relation, a city, a population) can tell them apart. A share
    `rephrase_share` of the questions is asked in a training phrasing (`rephrase`).

    `null_questions` questions about places that do not exist join each batch ("What is the capital of Naipala?",
    a training question with its subject replaced by an invented name, `null_question`), with no gold passage:
    their loss is KL(uniform ‖ softmax over the batch's passages), lowest when no passage stands out, which is
    what the memory signal (ragedu.relevance) reads on questions the memory holds nothing on.

    `offtopic_questions` made-up questions about other things ("Why do lobsters hibernate?", ragedu.offtopic) join
    each batch too, null questions as well. With an empty passage ∅ (`empty`), it is one more candidate for the
    real and the off-topic questions: the answer for the off-topic ones, a negative for the real ones
    (`relevance.empty_passage_loss`).
    """
    names, titles = training_names(examples), {p.title for p in corpus}
    asked = [e for e in examples.get("qa", []) if e.relation != "city_by_population"]  # its number names a city
    pairs = [(e, gold, e.entity) for task in examples.values() for e in task for gold in e.gold_ids]
    by_entity: dict[str, set[str]] = {}
    for _, gold, entity in pairs:
        by_entity.setdefault(entity, set()).add(gold)
    by_entity = {entity: sorted(ids) for entity, ids in by_entity.items()}

    def loss(rng: random.Random, batch: int) -> torch.Tensor:
        chosen = rng.sample(pairs, batch)
        hard = [rng.choice([i for i in by_entity[entity] if i != gold] or [gold]) for _, gold, entity in chosen]
        ids = list(dict.fromkeys([gold for _, gold, _ in chosen] + hard))  # unique: no false negatives
        questions = [restyle(p, e.question) for e, p in
                     (rephrase(e, rephrase_share, rng, filler_share) for e, _, _ in chosen)]
        questions += [null_question(rng.choice(asked), names, titles, rephrase_share, filler_share, rng)
                      for _ in range(null_questions)]
        questions += [style(offtopic_question(rng), *random_style(rng)) for _ in range(offtopic_questions)]
        q = tokenizer(questions, padding=True, truncation=True, max_length=max_len, return_tensors="pt")
        passages = [corpus[corpus.row(i)] for i in ids]
        d = tokenizer([passage_text(p.title, p.text) for p in passages], padding=True, truncation=True,
                      max_length=128, return_tensors="pt")
        q_x = embed(encoder, q.input_ids, q.attention_mask)   # (B, D)
        d_z = embed(encoder, d.input_ids, d.attention_mask)   # (P, D), P ≤ 2B passages
        gold = torch.tensor([ids.index(g) for _, g, _ in chosen])
        scores = q_x @ d_z.T                                  # (B + null + off-topic, P) d(z)ᵀq(x)
        if empty is None:
            loss = torch.nn.functional.cross_entropy(scores[:batch], gold)
        else:   # real questions, then the off-topic ones, against the passages and ∅
            rows = torch.cat([torch.arange(batch), torch.arange(batch + null_questions, len(questions))])
            target = torch.cat([gold, torch.full((offtopic_questions,), -1)])
            loss = empty_passage_loss(scores[rows], empty(q_x[rows]), target)
        if len(questions) > batch:   # null and off-topic: KL(uniform ‖ p) = logsumexp(s) − mean(s) − log P ≥ 0
            null = scores[batch:]
            loss = loss + (null.logsumexp(-1) - null.mean(-1) - np.log(null.shape[1])).mean()
        return loss
    return loss


def reader_loss(generator: Generator, corpus: Corpus, examples, cfg: TrainConfig):
    """Stage 2: −log p_θ(y | x, gold passage), the generator alone reading the right passage."""
    grouped = by_relation(examples)
    names, values, facts = training_names(examples), claim_values(examples), passage_facts(examples)

    def loss(rng: random.Random, batch: int) -> torch.Tensor:
        rows = []
        for e in sample_examples(grouped, cfg.task_weights, batch, rng):
            gold = corpus[corpus.row(e.gold_ids[0])]
            phrased, p = rephrase(e, cfg.rephrase, rng, cfg.filler)
            if e.task == "claims" and cfg.claim_pairs:
                rows += claim_pair(e, [gold.title], [gold.text], names, values, cfg.counterfactual, rng, p)
            else:
                t, x, q, a = read_maybe_counterfactual(phrased, [gold.title], [gold.text], names, cfg.counterfactual,
                                                       rng, facts.get(gold.id), stated_of(e))
                rows.append((t, x, restyle(p, q), a))
        titles, texts, questions, answers = map(list, zip(*rows))
        ids, mask = generator.context_inputs(titles, texts, [fitted(generator, q) for q in questions])
        y, y_mask = generator.targets(answers)
        return -generator.log_p_yi(ids, mask, y, y_mask).sum() / len(rows)
    return loss


def rag_loss(model: RagModel, examples, cfg: TrainConfig):
    """Stage 3: `RagModel.loss`, −log p(y|x) marginalised over the top-K passages ('both' averages the two
    models), on questions asked in training phrasings and passages read as counterfactuals."""
    grouped = by_relation(examples)
    names, facts = training_names(examples), passage_facts(examples)

    def loss(rng: random.Random, batch: int) -> torch.Tensor:
        chosen = sample_examples(grouped, cfg.task_weights, batch, rng)
        phrased = [rephrase(e, cfg.rephrase, rng, cfg.filler) for e in chosen]

        def read_as_trained(retrieved, answers):
            """The retrieved passages, the question and the answer, each maybe counterfactual."""
            rows = []
            for e, (e_phrased, p), titles, texts in zip(chosen, phrased, retrieved.titles, retrieved.texts):
                t, x, q, a = read_maybe_counterfactual(e_phrased, titles, texts, names, cfg.counterfactual, rng,
                                                       facts.get(e.gold_ids[0]), stated_of(e))
                rows.append((t, x, restyle(p, q), a))
            titles, texts, questions, answers = map(list, zip(*rows))
            questions = [fitted(model.generator, q) for q in questions]
            return dataclasses.replace(retrieved, titles=titles, texts=texts, questions=questions), answers
        return model.loss([restyle(p, e.question) for e, p in phrased], [e.answer for e in chosen], cfg.variant,
                          cfg.k, augment=read_as_trained)
    return loss


def closed_book_loss(generator: Generator, examples, cfg: TrainConfig):
    """Baseline: −log p_θ(y | x) with the question alone, no passage."""
    grouped = by_relation(examples)

    def loss(rng: random.Random, batch: int) -> torch.Tensor:
        chosen = sample_examples(grouped, cfg.task_weights, batch, rng)
        x, x_mask = generator.question_inputs([fitted(generator, restyle(p, e.question)) for e, p in
                                               (rephrase(e, cfg.rephrase, rng, cfg.filler) for e in chosen)])
        y, y_mask = generator.targets([e.answer for e in chosen])
        return -generator.log_p_yi(x, x_mask, y, y_mask).sum() / len(chosen)
    return loss


@torch.no_grad()
def calibrate_relevance(retriever: Retriever, quantile: float, batch: int = 256) -> float:
    """τ from the dev questions the memory answers: the task files' and the held-out dev phrasings', QA and claims."""
    questions = [e.question for task in ("qa", "claims")
                 for e in load_task(task, "dev") + held_out_examples(task, "dev")]
    s_x = torch.cat([retriever.retrieve(questions[i:i + batch], 1).margin
                     for i in range(0, len(questions), batch)])   # (Q,) s(x), ragedu.relevance
    return calibrate(s_x, quantile)

