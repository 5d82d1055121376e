"""The shipped tasks (data/tasks): entity-disjoint splits, answers grounded in their gold passages."""
import re
from collections import Counter, defaultdict

import pytest

from ragedu.corpus import load_corpus
from ragedu.tasks import LABELS, SPLITS, TASKS, load_task

RELATIONS = {
    "qa": {"capital", "currency", "continent", "city_country", "city_by_population", "city_population"},
    "clues": {"capital"},
    "claims": {"capital", "currency", "continent", "city_country"},
}


@pytest.fixture(scope="module")
def corpus():
    return load_corpus()


@pytest.fixture(scope="module")
def data():
    return {task: {split: load_task(task, split) for split in SPLITS} for task in TASKS}


def text_of(corpus, passage_id):
    return corpus[corpus.row(passage_id)].text


def title_of(corpus, passage_id):
    return corpus[corpus.row(passage_id)].title


def states(text, value):
    """value occurs in text as a whole word or number ('500' is not in '1,500')."""
    return re.search(rf"(?<![\w,.]){re.escape(value)}(?![\w]|[,.]\d)", text) is not None


@pytest.fixture(scope="module")
def name_finder(corpus):
    """Finds the country and city names a question mentions, longest first ('Guinea-Bissau' is not 'Guinea')."""
    names = sorted({p.title for p in corpus}, key=len, reverse=True)
    pattern = re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, names)) + r")(?!\w)")
    return lambda text: set(pattern.findall(text))


def test_unknown_task_or_split_names_the_allowed_ones():
    with pytest.raises(ValueError, match="qa, clues, claims"):
        load_task("jeopardy", "train")
    with pytest.raises(ValueError, match="train, dev, test"):
        load_task("qa", "validation")


def test_sizes(data):
    qa, clues, claims = (data[t] for t in TASKS)
    assert len(qa["train"]) >= 2000 and len(claims["train"]) >= 1000
    assert all(len(qa[s]) >= 300 and len(claims[s]) >= 150 and len(clues[s]) >= 15 for s in SPLITS)
    n_countries = len({e.entity for s in SPLITS for e in qa[s]})
    assert 0.8 * n_countries <= sum(len(clues[s]) for s in SPLITS) <= n_countries
    n_train = len({e.entity for e in qa["train"]})
    assert 0.6 <= n_train / n_countries <= 0.8, "about 70% of the countries train"


def test_examples_are_well_formed_and_ids_unique(data, corpus):
    ids = [e.id for t in TASKS for s in SPLITS for e in data[t][s]]
    assert len(ids) == len(set(ids))
    for task in TASKS:
        for split in SPLITS:
            for e in data[task][split]:
                assert e.task == task and e.question and e.answer and e.gold_ids, e
                assert re.fullmatch(r"[A-Z]{2}", e.entity), e
                for pid in e.gold_ids:
                    assert pid in corpus, f"{e.id}: gold passage {pid} is not in the corpus"


def test_every_relation_in_every_split(data):
    """Every relation in train; at dev and test time all but the train-only ones."""
    from ragedu.tasks import TRAIN_ONLY_RELATIONS

    for task, relations in RELATIONS.items():
        for split in SPLITS:
            expected = relations if split == "train" else relations - TRAIN_ONLY_RELATIONS.get(task, set())
            assert {e.relation for e in data[task][split]} == expected, (task, split)


def test_splits_are_disjoint_by_entity(data, corpus, name_finder):
    """No country is in two splits, and no country or city a test (or dev) question names is named
    by any training question."""
    entities = {s: {e.entity for t in TASKS for e in data[t][s]} for s in SPLITS}
    assert not entities["train"] & entities["dev"] and not entities["train"] & entities["test"]
    assert not entities["dev"] & entities["test"]
    named = defaultdict(set)
    for task in TASKS:
        for split in SPLITS:
            for e in data[task][split]:
                named[split] |= name_finder(e.question)
    assert len(named["test"]) > 100, "the name finder finds the names in test questions"
    assert "Kenya" in name_finder("What is the capital of Kenya?")
    assert not named["train"] & named["test"], sorted(named["train"] & named["test"])[:10]
    assert not named["train"] & named["dev"], sorted(named["train"] & named["dev"])[:10]


def test_qa_answers_are_in_their_gold_passage_and_phrasings_vary(data, corpus, name_finder):
    for split in SPLITS:
        for e in data["qa"][split]:
            assert any(states(text_of(corpus, pid), e.answer) for pid in e.gold_ids), e
            assert e.facts == {e.relation: e.answer}, e
    # at least 3 phrasings per relation: questions with names and numbers blanked out
    shapes = defaultdict(set)
    for e in data["qa"]["train"]:
        shape = e.question
        for name in name_finder(e.question):
            shape = shape.replace(name, "X")
        shapes[e.relation].add(re.sub(r"\d[\d,]*", "N", shape))
    assert all(len(shapes[r]) >= 3 for r in RELATIONS["qa"]), {r: len(s) for r, s in shapes.items()}


def test_qa_city_by_population_needs_the_passage(data):
    """Answers are (nearly) all different, so a generator cannot just memorise frequent ones."""
    answers = [e.answer for s in SPLITS for e in data["qa"][s] if e.relation == "city_by_population"]
    assert len(set(answers)) >= 0.99 * len(answers), Counter(answers).most_common(3)


def test_clue_facts_come_from_two_passages(data, corpus):
    for split in SPLITS:
        for e in data["clues"][split]:
            city_id, country_id = e.gold_ids
            assert city_id.startswith("city-") and country_id.startswith("country-"), e
            assert e.question == title_of(corpus, city_id)
            assert set(e.facts) == {"population", "country"}
            population, country = e.facts["population"], e.facts["country"]
            assert states(e.answer, population) and states(e.answer, country), e
            assert states(text_of(corpus, city_id), population), e
            assert not states(text_of(corpus, country_id), population), e
            assert f"Its capital is {e.question}." in text_of(corpus, country_id), e
            assert title_of(corpus, country_id) == country


def test_claims_are_labelled_supports_or_refutes_about_half_each(data):
    for split in SPLITS:
        labels = Counter(e.answer for e in data["claims"][split])
        assert set(labels) == set(LABELS), labels
        assert 0.4 <= labels["supports"] / sum(labels.values()) <= 0.6, (split, labels)


def test_claims_are_decided_by_their_gold_passage(data, corpus):
    for split in SPLITS:
        for e in data["claims"][split]:
            (pid,) = e.gold_ids
            (true_value,) = e.facts.values()
            assert states(text_of(corpus, pid), true_value), e
            if e.answer == "supports":
                assert states(e.question, true_value), e
            else:   # the true value is not claimed (it may occur inside the subject: Guinea-Bissau, Bissau)
                subject = title_of(corpus, pid)
                assert not states(e.question.replace(subject, "X"), true_value), e
