"""What training reads instead of the task files as they are: phrasings, counterfactuals, claim pairs, masks.   (notebook 5)

Every function here draws from the `random.Random` it is given, so a batch is the same whenever it is drawn again:

    rephrase         a question or claim asked in a training family's phrasing, typed in a random casing
    counterfactual   the example's fact replaced, in passages, question and answer, by an invented value
    claim_pair       a claim twice about the same passage: stating its value ('supports') and another ('refutes')
    null_question    a training question about an invented place that no passage names
    mask_spans       BART's text infilling: spans of a passage replaced by <mask>

Held-out phrasing families (dev, test) are never drawn here.
"""
from __future__ import annotations

import dataclasses
import random

import numpy as np

from ragedu.generator import Generator
from ragedu.geonames import CONTINENTS, the
from ragedu.phrasings import TRAIN_FAMILIES, Phrasing, claim_value, classic_phrasing, training_phrasing
from ragedu.tasks import Example, mention_pattern


# ---------------------------------------------------------------------------------------------- phrasings

def rephrase(example: Example, share: float, rng: random.Random, filler_share: float = 0.0
             ) -> tuple[Example, Phrasing | None]:
    """With probability `share`, the example asked in a training family's phrasing and casing; else as it is.
    The returned example's question is written unstyled (cased as its template), so that counterfactual swaps
    still find the names in it; `Phrasing.restyled` types it afterwards.    -> (example, phrasing)"""
    if example.task not in TRAIN_FAMILIES or rng.random() >= share:
        return example, None
    p = training_phrasing(example, rng, filler_share)
    return dataclasses.replace(example, question=p.text(stated_of(example), styled=False)), p


def stated_of(example: Example) -> str | None:
    """The value a claim states (`phrasings.claim_value`); None for a question or a clue."""
    return claim_value(example) if example.task == "claims" else None


def restyle(phrasing: Phrasing | None, text: str) -> str:
    return text if phrasing is None else phrasing.restyled(text)


def fitted(generator: Generator, question: str) -> str:
    """The question, lowercased and then shortened from the front if it is too many tokens for the generator.
    Training only (a user's long question is refused): an invented three-word name in capitals with filler
    before it ('WE THE KISSIDOUGBO-DIOULASSO …') can pass the limit, as an all-caps word costs a token a letter."""
    if len(generator.tokenizer(" " + question, add_special_tokens=False).input_ids) <= generator.max_question_len:
        return question
    words = question.lower().split()
    while len(words) > 1 and len(generator.tokenizer(" " + " ".join(words),
                                                     add_special_tokens=False).input_ids) > generator.max_question_len:
        words = words[1:]
    return " ".join(words)



# ---------------------------------------------------------------------------------------------- counterfactuals

SUBSTITUTABLE = ("capital", "currency", "city_country", "city_by_population", "city_population")



def training_names(examples: dict[str, list[Example]]) -> list[str]:
    """The place names training questions answer with: the stuff invented names are spliced from."""
    return sorted({e.answer for e in examples.get("qa", []) if e.relation in ("capital", "city_country",
                                                                             "city_by_population")})


def invented_name(names: list[str], rng: random.Random) -> str:
    """A made-up place name spliced from two real ones ('Nairobi' + 'Kampala' -> 'Naipala')."""
    a, b = rng.choice(names), rng.choice(names)
    spliced = a[: rng.randint(2, max(2, len(a) - 1))] + b[rng.randint(1, max(1, len(b) - 2)):].lower()
    return " ".join(word[:1].upper() + word[1:] for word in spliced.split())


def invented_value(relation: str, value: str, names: list[str], rng: random.Random) -> str:
    """A value of the same kind as `value` but not it: an invented name (sometimes a real one, misplaced), or an
    invented number as long."""
    if relation == "city_population":
        digits = sum(ch.isdigit() for ch in value)
        return f"{rng.randrange(10 ** (digits - 1), 10 ** digits):,}"
    if rng.random() < 0.3:  # a real name in the wrong place: long ones ('Bosnia and Herzegovina') are copied whole
        name = rng.choice([n for n in names if n != value])
    else:
        name = " ".join(invented_name(names, rng) for _ in range(rng.choice((1, 1, 2, 2, 3))))
    return name.lower() if relation == "currency" else name


def counterfactual(example: Example, titles: list[str], texts: list[str], names: list[str], rng: random.Random,
                   others: dict[str, str] | None = None, stated: str | None = None):
    """The example with its fact's value replaced, in the passages, the input and the target, by an invented one.

    A generator trained on real facts alone can answer from memory; on a passage that says the capital of
    Kenya is 'Naipala' it can only be right by reading. (Longpre et al. 2021 train on such entity
    substitutions for the same reason.) `others`, the passage's other facts (relation -> value, see
    `passage_facts`), are invented too: were the asked value the passage's only strange name, 'copy the
    strange name' would answer every question, whichever relation it asks about. `stated`: the value a claim
    states (default: read back from its classic phrasing, `phrasings.claim_value`).
        -> (titles, texts, question, answer)
    """
    if example.relation not in SUBSTITUTABLE or example.task == "clues":
        return titles, texts, example.question, example.answer
    value = example.facts[example.relation]
    new = invented_value(example.relation, value, names, rng)
    swaps = [replacer(value, new)] + [replacer(v, invented_value(r, v, names, rng))
                                      for r, v in sorted((others or {}).items())
                                      if r != example.relation and v not in value and value not in v]

    def swap(s: str) -> str:
        for one in swaps:
            s = one(s)
        return s
    question = swap(example.question)
    if example.task == "claims" and example.answer == "refutes":
        # The claim's wrong value is invented too: were it left real, 'an invented name in the claim' would
        # mean 'supports', and the generator would learn that instead of comparing claim and passage.
        stated = stated if stated is not None else claim_value(example)
        question = replacer(stated, invented_value(example.relation, value, names, rng))(question)
    return [swap(t) for t in titles], [swap(t) for t in texts], question, swap(example.answer)


def passage_facts(examples: dict[str, list[Example]]) -> dict[str, dict[str, str]]:
    """passage id -> the facts training questions read in it: {'capital': 'Nairobi', 'currency': 'shilling'}"""
    facts: dict[str, dict[str, str]] = {}
    for e in examples.get("qa", []):
        if e.relation in SUBSTITUTABLE and e.relation != "city_by_population":  # not the city's own name
            facts.setdefault(e.gold_ids[0], {})[e.relation] = e.facts[e.relation]
    return facts


def replacer(value: str, new: str):
    """A function replacing every whole-word mention of `value` by `new` (as `tasks.mentions` finds them)."""
    pattern = mention_pattern(value)
    return lambda s: pattern.sub(lambda _: new, s)


def read_maybe_counterfactual(example: Example, titles: list[str], texts: list[str], names: list[str],
                              share: float, rng: random.Random, others: dict[str, str] | None = None,
                              stated: str | None = None):
    """With probability `share` the example's counterfactual, else the example as it is
    -> (titles, texts, question, answer)"""
    if rng.random() < share:
        return counterfactual(example, titles, texts, names, rng, others, stated)
    return titles, texts, example.question, example.answer


def claim_pair(claim: Example, titles: list[str], texts: list[str], names: list[str], values: dict[str, list[str]],
               share: float, rng: random.Random, phrasing: Phrasing | None = None) -> list[tuple]:
    """The claim twice about the same passages: stating the passage's value ('supports') and another value
    ('refutes'). The two inputs differ in the value alone, so neither what the generator remembers about the
    entity nor the phrasing can tell the labels apart; only comparing the value with the passage can. With
    probability `share` the passage's value is replaced by an invented one, as in `counterfactual`, and the wrong
    value is invented alike; failing that, with probability `share` again, by another real value (for a continent
    this is the only way), and the wrong value is another real one from `values` (relation -> the training values,
    see `claim_values`), or an invented one when there is none left. Both claims are written in `phrasing`
    (default: the claim's own classic template, as typed).
        -> [(titles, texts, claim, "supports"), (titles, texts, claim, "refutes")]
    """
    true = claim.facts[claim.relation]
    value, swap, invented = true, str, rng.random() < share and claim.relation in SUBSTITUTABLE
    real = values.get(claim.relation, [])
    if invented:
        value = invented_value(claim.relation, true, names, rng)
        swap = replacer(true, value)
    elif rng.random() < share and any(v != true for v in real):
        value = rng.choice([v for v in real if v != true])
        swap = replacer(true, value)
    titles, texts = [swap(t) for t in titles], [swap(t) for t in texts]

    def stated_by_passage(v: str) -> bool:
        return v == value or any(mention_pattern(v).search(t) for t in titles + texts)
    invent_wrong = invented or all(stated_by_passage(v) for v in real)   # no real value is left to state
    wrong = value   # drawn as the passage's value was, so that what kind of name it is says nothing
    while stated_by_passage(wrong):
        wrong = invented_value(claim.relation, value, names, rng) if invent_wrong else rng.choice(real)
    phrasing = phrasing or classic_phrasing(claim)
    phrasing = dataclasses.replace(phrasing, slots={k: swap(v) for k, v in phrasing.slots.items()})

    def stating(v: str) -> str:
        return phrasing.text(the(v) if claim.relation == "city_country" else v)
    return [(titles, texts, stating(value), "supports"), (titles, texts, stating(wrong), "refutes")]


def claim_values(examples: dict[str, list[Example]]) -> dict[str, list[str]]:
    """relation -> the values training claims may state: every continent, and the training facts' values."""
    values = {"continent": sorted(CONTINENTS.values())}
    for e in examples.get("claims", []):
        if e.relation != "continent":
            values.setdefault(e.relation, set()).add(e.facts[e.relation])
    return {relation: sorted(v) for relation, v in values.items()}


def null_question(example: Example, names: list[str], titles: set[str], share: float, filler_share: float,
                  rng: random.Random) -> str:
    """The example's question, phrased as in training, about an invented place that no passage names."""
    slots = classic_phrasing(example).slots
    subject = slots.get("city") or slots["country"].removeprefix("the ")
    invented = subject
    while invented in titles or invented.lower() == subject.lower():
        invented = invented_name(names, rng)
    phrased, p = rephrase(example, share, rng, filler_share)
    return restyle(p, replacer(subject, invented)(phrased.question))


def mask_spans(ids: list[int], mask_id: int, ratio: float, rng: random.Random) -> list[int]:
    """BART's text infilling: spans (Poisson(3) long) replaced by one <mask> each, until `ratio` is hidden."""
    ids, budget = list(ids), round(ratio * len(ids))
    while budget > 0 and len(ids) > 1:
        span = min(max(1, int(np.random.default_rng(rng.randrange(2**31)).poisson(3))), budget)
        start = rng.randrange(0, max(1, len(ids) - span))
        ids[start:start + span] = [mask_id]
        budget -= span
    return ids

