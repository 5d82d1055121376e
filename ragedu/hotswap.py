"""The index hot-swap experiment: the paper's 2×2 table of (index edition, answer edition) accuracies.   (notebook 6)

The same model answers the questions whose answer changed between the memory's editions (ragedu.editions) with each
edition's index swapped in (ragedu.memory): answers that follow the index, not the weights, show that RAG's
knowledge lives in its memory. Questions about countries no change touched measure what the swap costs elsewhere.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import torch

from ragedu.corpus import Corpus
from ragedu.editions import EDITIONS, ChangedFact, load_changes, load_edition, plain
from ragedu.decoding import GREEDY
from ragedu.evaluate import answer_questions, exact_match, mean
from ragedu.geonames import sentence, the
from ragedu.memory import swap_memory
from ragedu.model import RagModel
from ragedu.tasks import QA_TEMPLATES, Example, load_task


@dataclass(frozen=True)
class SwapQuestion:
    """A question whose answer differs between editions, asked the same way under both."""

    code: str
    relation: str
    question: str
    answers: dict    # edition -> gold answer
    passage_id: str  # the passage whose text changed


def changed_questions(today: Corpus, changes: list[ChangedFact]) -> list[SwapQuestion]:
    """One question per changed fact, in the training templates' first phrasing.
    A renamed country cannot be named in the question (either name gives away the edition), so it is asked
    through its capital, whose name did not change: "Which country is Mbabane in?" -> Swaziland / Eswatini."""
    renamed = {c.code for c in changes if c.relation == "name"}
    questions = []
    for fact in changes:
        country = today[today.row(f"country-{fact.code}")]
        if fact.relation == "name":
            capital = re.search(r"Its capital is (.+?)\.", country.text).group(1)
            q = QA_TEMPLATES["city_country"][0].format(city=capital)
        else:
            if fact.code in renamed:
                raise ValueError(f"{fact.code} is renamed and has a changed {fact.relation}: ask about one only")
            q = QA_TEMPLATES[fact.relation][0].format(country=the(country.title))
        questions.append(SwapQuestion(fact.code, fact.relation, sentence(q),
                                      {e: plain(v) for e, v in fact.values.items()}, country.id))
    return questions


def unchanged_questions(changes: list[ChangedFact], split: str = "test", limit: int | None = 200) -> list[Example]:
    """QA examples of a split about countries no changed fact touches (their answer is the same in every edition)."""
    touched = {c.code for c in changes}
    examples = [e for e in load_task("qa", split) if e.entity not in touched]
    return examples[:limit]


@dataclass
class HotSwap:
    """Answers of one model under each edition's index, and the tables they make."""

    questions: list[SwapQuestion]
    predictions: dict                 # index edition -> answers to the changed questions
    retrieved_gold: dict              # index edition -> did the top-K hold the changed passage? per question
    unchanged_correct: dict           # index edition -> exact match per unchanged question
    seen_in_training: list[bool] = field(default_factory=list)  # was the question's country a training entity?

    def changed_table(self, mask: list[bool] | None = None) -> dict:
        """{index edition: {answer edition: accuracy}} over the changed facts (those where mask is True)."""
        keep = mask or [True] * len(self.questions)
        return {i: {a: mean(exact_match(p, q.answers[a]) for p, q, k in zip(preds, self.questions, keep) if k)
                    for a in self.predictions} for i, preds in self.predictions.items()}

    def to_json(self) -> dict:
        return {"changed_facts": self.changed_table(),
                "unchanged_facts": {i: mean(c) for i, c in self.unchanged_correct.items()}}


@torch.no_grad()
def hot_swap(model: RagModel, editions: tuple[str, ...] = EDITIONS, k: int = 5, variant: str = "token",
             unchanged_limit: int | None = 200, progress: bool = False) -> HotSwap:
    """Greedy-decode the changed-fact questions and a sample of unchanged ones with each edition's index."""
    changes = load_changes()
    questions = changed_questions(load_edition("today"), changes)
    unchanged = unchanged_questions(changes, limit=unchanged_limit)
    result = HotSwap(questions, {}, {}, {})
    trained = {e.entity for e in load_task("qa", "train")}
    result.seen_in_training = [q.code in trained for q in questions]
    for edition in editions:
        swapped = swap_memory(model, load_edition(edition), progress=progress)
        asked = [q.question for q in questions]
        retrieved = swapped.retriever.retrieve(asked, k)
        result.predictions[edition] = answer_questions(swapped, asked, k, GREEDY, retrieved)[variant]
        result.retrieved_gold[edition] = [q.passage_id in ids for q, ids in zip(questions, retrieved.ids)]
        correct = []
        for start in range(0, len(unchanged), 64):
            batch = unchanged[start:start + 64]
            answers = answer_questions(swapped, [e.question for e in batch], k, GREEDY)[variant]
            correct += [exact_match(a, e.answer) for a, e in zip(answers, batch)]
        result.unchanged_correct[edition] = correct
    return result

