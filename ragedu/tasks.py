"""The three tasks, built from the same GeoNames facts as the corpus.   (notebooks 1, 4 and 5)

Each is a small analogue of a task in the paper:
    qa      open-domain QA with short answers (NQ, TriviaQA)    "What is the capital of Kenya?" -> "Nairobi"
    clues   Jeopardy question generation: a clue about an        "Nairobi" -> "This city of 4,397,073 people
            entity, with facts from TWO passages                              is the capital of Kenya."
    claims  FEVER fact verification, as supports / refutes       "Kenya lies in Europe." -> "refutes"

Splits are disjoint by entity: every country, with all its cities, belongs to one split (about
70/15/15), so a test question never names a country or city seen in a training question.
Every example is one JSON line in data/tasks/{task}/{split}.jsonl with the keys of `Example`.
"""
from __future__ import annotations

import json
import random
import re
import zlib
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

from ragedu.corpus import DATA_DIR, Corpus
from ragedu.geonames import Facts, city_titles, fmt, sentence, the

TASKS = ("qa", "clues", "claims")
SPLITS = ("train", "dev", "test")
LABELS = ("supports", "refutes")


@dataclass(frozen=True)
class Example:
    id: str                      # "qa-capital-KE"
    task: str                    # one of TASKS
    relation: str                # "capital", "city_population", ...
    question: str                # the input x
    answer: str                  # the target y
    entity: str                  # code of the country the example is about (decides its split)
    gold_ids: tuple[str, ...]    # ids of the passages that hold the facts needed
    facts: dict[str, str]        # values the answer must contain (for claims: the true value)


def load_task(task: str, split: str, data_dir: str | Path = DATA_DIR) -> list[Example]:
    """The examples of one task and split, in file order."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; the tasks are {', '.join(TASKS)}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; the splits are {', '.join(SPLITS)}")
    path = Path(data_dir) / "tasks" / task / f"{split}.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"task file {path} does not exist (build it with `python -m ragedu.build_data`)")
    with path.open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return [Example(**{**row, "gold_ids": tuple(row["gold_ids"])}) for row in rows]


def save_tasks(examples: dict[str, dict[str, list[Example]]], data_dir: Path) -> None:
    for task, splits in examples.items():
        for split, rows in splits.items():
            path = Path(data_dir) / "tasks" / task / f"{split}.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("w", encoding="utf-8") as f:
                for e in rows:
                    f.write(json.dumps({**asdict(e), "gold_ids": list(e.gold_ids)}, ensure_ascii=False) + "\n")


def split_of_countries(codes: list[str]) -> dict[str, str]:
    """Country code -> split: a seeded shuffle of the sorted codes, cut 70/15/15."""
    codes = sorted(codes)
    random.Random(0).shuffle(codes)
    n_train, n_dev = round(0.70 * len(codes)), round(0.15 * len(codes))
    return {code: "train" if i < n_train else "dev" if i < n_train + n_dev else "test"
            for i, code in enumerate(codes)}


def mention_pattern(value: str) -> re.Pattern:
    """The value as a whole word or number: '500' is not in '1,500', 'Male' is not in 'Malel'."""
    return re.compile(rf"(?<![\w,.]){re.escape(value)}(?!\w|[,.]\d)")


def mentions(text: str, value: str) -> bool:
    """Does the text state this value as a whole word or number?"""
    return mention_pattern(value).search(text) is not None


def pick(templates: tuple[str, ...], example_id: str) -> str:
    """The template of an example: fixed by a checksum of its id, so phrasings vary but never change."""
    return templates[zlib.crc32(example_id.encode()) % len(templates)]


QA_TEMPLATES = {
    "capital": ("What is the capital of {country}?", "Which city is the capital of {country}?",
                "What city serves as the capital of {country}?"),
    "currency": ("What is the currency of {country}?", "Which currency is used in {country}?",
                 "What money do people use in {country}?"),
    "continent": ("Which continent is {country} in?", "On which continent is {country}?",
                  "{country} is part of which continent?"),
    "city_country": ("Which country is {city} in?", "In which country is the city of {city}?",
                     "{city} is a city in which country?"),
    "city_by_population": ("Which city of {country} has a population of {population}?",
                           "What city in {country} has {population} inhabitants?",
                           "Which city in {country} is home to {population} people?"),
    "city_population": ("What is the population of {city}?", "How many people live in {city}?",
                        "How many inhabitants does {city} have?"),
}
CLAIM_TEMPLATES = {
    "capital": ("The capital of {country} is {value}.", "{value} is the capital of {country}.",
                "{country} has {value} as its capital."),
    "currency": ("The currency of {country} is the {value}.", "{country} uses the {value} as its currency.",
                 "People in {country} pay with the {value}."),
    "continent": ("{country} is in {value}.", "{country} lies in {value}.", "{country} is a country of {value}."),
    "city_country": ("{city} is in {value}.", "{city} is a city in {value}.", "{city} lies in {value}."),
}
CLUE_TEMPLATE = "This city of {population} people is the capital of {country}."


@dataclass(frozen=True)
class _Fact:
    """One (subject, relation, value) triple and the passage that states it."""
    subject_id: str      # "KE" or "184745"
    relation: str
    value: str
    entity: str          # country code
    passage_id: str
    slots: dict          # template slots naming the subject: {"country": "Kenya"} or {"city": "Mombasa"}


def _facts(facts: Facts, corpus: Corpus) -> list[_Fact]:
    """The triples that questions and claims are made of, skipping ones a question could not pin down:
    cities whose name is ambiguous (see geonames.city_titles) and population ties within a country."""
    titles = city_titles(facts)
    name_of = {c.code: c.name for c in facts.countries}
    cities_of = defaultdict(list)
    for city in facts.cities:
        cities_of[city.country_code].append(city)
    triples = []
    for country in facts.countries:
        where = {"country": the(country.name)}
        pid = f"country-{country.code}"
        triples.append(_Fact(country.code, "capital", country.capital, country.code, pid, where))
        if country.currency:
            triples.append(_Fact(country.code, "currency", country.currency, country.code, pid, where))
        triples.append(_Fact(country.code, "continent", country.continent, country.code, pid, where))
        populations = defaultdict(int)
        for city in cities_of[country.code]:
            populations[city.population] += 1
        for city in cities_of[country.code]:
            pid, cid = f"city-{city.geonameid}", str(city.geonameid)
            if titles[city.geonameid] == city.name:   # the name alone picks out this city
                triples.append(_Fact(cid, "city_country", name_of[city.country_code], country.code, pid,
                                     {"city": city.name}))
                triples.append(_Fact(cid, "city_population", fmt(city.population), country.code, pid,
                                     {"city": city.name}))
            if populations[city.population] == 1:
                triples.append(_Fact(cid, "city_by_population", city.name, country.code, pid,
                                     {"country": the(country.name), "population": fmt(city.population)}))
    for t in triples:
        assert mentions(corpus[corpus.row(t.passage_id)].text, t.value), f"{t.value!r} not in passage {t.passage_id}"
    return triples


def qa_examples(triples: list[_Fact]) -> list[Example]:
    examples = []
    for t in triples:
        eid = f"qa-{t.relation}-{t.subject_id}"
        question = sentence(pick(QA_TEMPLATES[t.relation], eid).format(**t.slots))
        examples.append(Example(eid, "qa", t.relation, question, t.value, t.entity, (t.passage_id,),
                                {t.relation: t.value}))
    return examples


def clue_examples(facts: Facts, corpus: Corpus) -> list[Example]:
    """x = a capital's name; y = a clue with its population (city passage) and its country (country passage)."""
    titles = city_titles(facts)
    city_by_id = {c.geonameid: c for c in facts.cities}
    examples = []
    for country in facts.countries:
        city = city_by_id.get(country.capital_id)
        if city is None or titles[city.geonameid] != city.name:
            continue
        city_id, country_id = f"city-{city.geonameid}", f"country-{country.code}"
        population = fmt(city.population)
        city_text, country_text = (corpus[corpus.row(i)].text for i in (city_id, country_id))
        if mentions(country_text, population):   # then the clue would not need the city passage
            continue
        assert mentions(city_text, population) and mentions(country_text, f"capital is {city.name}"), city_id
        examples.append(Example(f"clues-{country.code}", "clues", "capital", city.name,
                                CLUE_TEMPLATE.format(population=population, country=the(country.name)),
                                country.code, (city_id, country_id),
                                {"population": population, "country": country.name}))
    return examples


def claim_examples(triples: list[_Fact], split_of: dict[str, str]) -> list[Example]:
    """Half of each (split, relation) supported; the other half states a wrong value of the same
    relation, taken from another entity in the same split so that no other split's names leak in."""
    rng = random.Random(0)
    examples = []
    for split in SPLITS:
        for relation in CLAIM_TEMPLATES:
            group = [t for t in triples if t.relation == relation and split_of[t.entity] == split]
            values = sorted({t.value for t in group})
            refuted = set(rng.sample(range(len(group)), len(group) // 2))
            for i, t in enumerate(group):
                eid = f"claims-{relation}-{t.subject_id}"
                value = rng.choice([v for v in values if v != t.value]) if i in refuted else t.value
                if relation == "city_country":
                    value = the(value)   # "Mombasa is in the United States."
                claim = sentence(pick(CLAIM_TEMPLATES[relation], eid).format(value=value, **t.slots))
                examples.append(Example(eid, "claims", relation, claim, LABELS[i in refuted], t.entity,
                                        (t.passage_id,), {relation: t.value}))
    return examples


# Relations kept for training only. "Which city of France has 2,138,551 inhabitants?" teaches the generator to
# copy a city name it has never produced, but a 128-d dense retriever cannot match a 7-digit number well:
# after 800 steps of retriever training its recall@5 on unseen countries was 0.37-0.41 against 0.92-1.0 for
# every other relation (DPR's known weakness on exact lexical matches, where BM25 shines). So it teaches the
# reader in training and is not asked at dev/test time, where retrieval would decide it.
TRAIN_ONLY_RELATIONS = {"qa": {"city_by_population"}}


def build_tasks(facts: Facts, corpus: Corpus) -> dict[str, dict[str, list[Example]]]:
    """task -> split -> examples, each example in the split of its country."""
    split_of = split_of_countries([c.code for c in facts.countries])
    triples = _facts(facts, corpus)
    by_task = {"qa": qa_examples(triples), "clues": clue_examples(facts, corpus),
               "claims": claim_examples(triples, split_of)}
    return {task: {split: [e for e in examples if split_of[e.entity] == split
                           and (split == "train" or e.relation not in TRAIN_ONLY_RELATIONS.get(task, ()))]
                   for split in SPLITS}
            for task, examples in by_task.items()}
