"""The many ways people ask a question or state a claim, in families, and held-out families to test on.   (notebook 1)

Our task files ask each fact in one of three fixed templates per relation (`tasks.QA_TEMPLATES`, the "classic"
family). A student types "what's the capital of austria", "Kenya's capital?", "Name the capital of Peru." or
"denmark capital". So every question here belongs to a *family* of phrasings, one syntactic form with a template
per relation, and is written in a *style* (casing, final punctuation):

    family     "whats"      What's the capital of {country}?        form of the sentence
    style      lower, no ?   what's the capital of austria           how it is typed

Families are split three ways, like entities (`tasks.split_of_countries`):
    TRAIN_FAMILIES      drawn at random while training (ragedu.train), on training entities only
    DEV_FAMILIES        never trained on; asked about dev entities: what the recipe is tuned and stopped on
    TEST_FAMILIES       never trained on, never tuned on; asked about test entities: `ragedu eval`'s phrasing_* figures
Every template names its subject ({country} or {city}), so each question stays answerable from its one gold passage.
Clue inputs (a capital's bare name) are not rephrased: the clue task's input is a name, whatever its casing.
"""
from __future__ import annotations

import dataclasses
import random
import re
import zlib
from dataclasses import dataclass

from ragedu.frames import CLAIM_FRAMES, CLAUSE_FRAMES, CORE_FRAMES, QA_CLAUSES, QA_CORES, framed, inner
from ragedu.geonames import sentence
from ragedu.tasks import CLAIM_TEMPLATES, QA_TEMPLATES, Example, load_task

# family -> relation -> templates. Slots: {country} ("the Bahamas"), {country_s} ("the Bahamas'"), {city},
# {city_s}, {population}, and {value} for claims. A family may leave a relation out in training, not when held out.
QA_FAMILIES: dict[str, dict[str, tuple[str, ...]]] = {
    "classic": QA_TEMPLATES,
    "whats": {
        "capital": ("What's the capital of {country}?", "What's the capital city of {country}?"),
        "currency": ("What's the currency of {country}?", "What's the official currency of {country}?"),
        "continent": ("What continent is {country} on?", "What continent is {country} located on?"),
        "city_country": ("What country is {city} in?", "What country is {city} located in?"),
        "city_population": ("What's the population of {city}?", "What's the number of people living in {city}?"),
    },
    "possessive": {
        "capital": ("{country_s} capital?", "What is {country_s} capital?"),
        "currency": ("{country_s} currency?", "What is {country_s} currency called?"),
        "continent": ("{country_s} continent?", "What is {country_s} continent?"),
        "city_country": ("{city_s} country?", "What is {city_s} country?"),
        "city_population": ("{city_s} population?", "What is {city_s} population?"),
        "city_by_population": ("{country_s} city of {population} people?",),
    },
    "name": {
        "capital": ("Name the capital of {country}.", "Name the capital city of {country}."),
        "currency": ("Name the currency of {country}.", "Name the money used in {country}."),
        "continent": ("Name the continent {country} is on.", "Name the continent where {country} lies."),
        "city_country": ("Name the country {city} is in.", "Name the country where {city} lies."),
        "city_population": ("Give the population of {city}.", "Give the number of people who live in {city}."),
        "city_by_population": ("Name the city of {country} with {population} inhabitants.",),
    },
    "terse": {
        "capital": ("capital of {country}?", "{country} capital", "capital {country}"),
        "currency": ("currency of {country}?", "{country} currency", "currency in {country}"),
        "continent": ("continent of {country}?", "{country} continent", "continent {country}"),
        "city_country": ("country of {city}?", "{city} country", "{city} in which country?"),
        "city_population": ("population of {city}?", "{city} population", "population {city}"),
    },
    "verbs": {
        "capital": ("Which city does {country} have as its capital?", "Which city is the seat of government of {country}?"),
        "currency": ("Which currency do people pay with in {country}?", "What currency is used in {country}?"),
        "continent": ("{country} is located in which continent?", "Which continent does {country} belong to?",
                      "On which continent can {country} be found?", "{country} lies on which continent?"),
        "city_country": ("{city} is located in which country?", "Which country does {city} belong to?",
                         "In which country can {city} be found?", "{city} lies in which country?",
                         "Where is {city}?"),
        "city_population": ("How many people does {city} have?", "How many residents does {city} have?"),
    },
    "do_you_know": {
        "capital": ("Do you know the capital of {country}?", "Do you know what the capital of {country} is?"),
        "currency": ("Do you know the currency of {country}?", "Do you know what money {country} uses?"),
        "continent": ("Do you know which continent {country} is in?", "Do you know where {country} lies?"),
        "city_country": ("Do you know which country {city} is in?", "Do you know where {city} is?"),
        "city_population": ("Do you know the population of {city}?", "Do you know how many people live in {city}?"),
    },
    # held out for dev
    "i_want": {
        "capital": ("I want to know the capital of {country}.", "I'd like to know {country_s} capital"),
        "currency": ("I want to know the currency of {country}.", "I'd like to know {country_s} currency"),
        "continent": ("I want to know the continent of {country}.", "I'd like to know which continent {country} is on"),
        "city_country": ("I want to know the country of {city}.", "I'd like to know which country {city} is in"),
        "city_population": ("I want to know the population of {city}.", "I'd like to know how many live in {city}"),
    },
    "curious": {
        "capital": ("I'm curious about the capital of {country}.", "Curious: which city is {country_s} capital?"),
        "currency": ("I'm curious about the currency of {country}.", "Curious: what money do they use in {country}?"),
        "continent": ("I'm curious which continent {country} is on.", "Curious: where on earth is {country}?"),
        "city_country": ("I'm curious which country {city} is in.", "Curious: where on earth is {city}?"),
        "city_population": ("I'm curious about the population of {city}.", "Curious: how big is {city}?"),
    },
    "tell_me": {
        "capital": ("Tell me the capital of {country}", "Tell me what the capital of {country} is."),
        "currency": ("Tell me the currency of {country}", "Tell me what money is used in {country}."),
        "continent": ("Tell me which continent {country} is on", "Tell me the continent of {country}."),
        "city_country": ("Tell me which country {city} is in", "Tell me the country {city} lies in."),
        "city_population": ("Tell me the population of {city}", "Tell me how many people live in {city}."),
    },
    # held out for test
    "could_you": {
        "capital": ("Could you find the capital of {country}?", "Could you look up {country_s} capital?"),
        "currency": ("Could you find the currency of {country}?", "Could you look up what {country} pays with?"),
        "continent": ("Could you check which continent {country} is on?", "Could you look up {country_s} continent?"),
        "city_country": ("Could you find the country {city} is in?", "Could you check where {city} lies?"),
        "city_population": ("Could you look up the population of {city}?", "Could you check how many live in {city}?"),
    },
    "is_what": {
        "capital": ("The capital of {country} is what?", "{country_s} capital is which city?"),
        "currency": ("The currency of {country} is what?", "The currency used in {country} is called what?"),
        "continent": ("{country} is on what continent?", "{country} is in what continent?"),
        "city_country": ("{city} is in what country?", "{city} is located in what country?"),
        "city_population": ("The population of {city} is what?", "{city} has how many inhabitants?"),
    },
}

CLAIM_FAMILIES: dict[str, dict[str, tuple[str, ...]]] = {
    "classic": CLAIM_TEMPLATES,
    "possessive": {
        "capital": ("{value} is {country_s} capital.", "{country_s} capital is {value}."),
        "currency": ("{country_s} currency is the {value}.", "The {value} is {country_s} currency."),
        "continent": ("{country_s} continent is {value}.", "{country} belongs to {value}."),
        "city_country": ("{city} belongs to {value}.", "{city_s} country is {value}."),
    },
    "verbs": {
        "capital": ("The capital city of {country} is {value}.", "{value} serves as the capital of {country}."),
        "currency": ("In {country} people pay with the {value}.", "The {value} is the money of {country}."),
        "continent": ("{country} is located in {value}.", "{country} can be found in {value}."),
        "city_country": ("{city} can be found in {value}.", "{city} is located in {value}."),
    },
    # held out for dev
    "sits": {
        "capital": ("{country} has its capital at {value}.", "{country} is governed from {value}."),
        "currency": ("{country} pays in the {value}.", "{country} has the {value} as its money."),
        "continent": ("{country} sits in {value}.", "{country} is situated in {value}."),
        "city_country": ("{city} sits in {value}.", "{city} is situated in {value}."),
    },
    # held out for test
    "i_think": {
        "capital": ("I think {value} is the capital of {country}.", "I believe {country_s} capital is {value}."),
        "currency": ("I think {country} uses the {value}.", "I believe the currency of {country} is the {value}."),
        "continent": ("I think {country} lies in {value}.", "I believe {country} is in {value}."),
        "city_country": ("I think {city} is in {value}.", "I believe {city} lies in {value}."),
    },
}

# Composed families (ragedu.frames): every frame around every core of a relation
QA_FAMILIES["asks"] = framed(CORE_FRAMES, "{np}", QA_CORES)
QA_FAMILIES["wonders"] = framed(CLAUSE_FRAMES, "{wh}", QA_CLAUSES)
CLAIM_FAMILIES["hedged"] = framed(CLAIM_FRAMES, "{claim}", {
    relation: tuple(inner(t) for family in ("classic", "possessive", "verbs") for t in CLAIM_FAMILIES[family][relation])
    for relation in CLAIM_FAMILIES["possessive"]})

TRAIN_FAMILIES = {"qa": ("classic", "whats", "possessive", "name", "terse", "verbs", "do_you_know", "tell_me", "asks",
                         "wonders"),
                  "claims": ("classic", "possessive", "verbs", "hedged")}
DEV_FAMILIES = {"qa": ("i_want", "curious"), "claims": ("sits",)}
TEST_FAMILIES = {"qa": ("could_you", "is_what"), "claims": ("i_think",)}
HELD_OUT = {"dev": DEV_FAMILIES, "test": TEST_FAMILIES}
FAMILIES = {"qa": QA_FAMILIES, "claims": CLAIM_FAMILIES}

# How a phrasing is typed: casing, and whether the final punctuation is kept. Weights: how often in training.
CASINGS = {"as_written": 0.45, "lower": 0.35, "upper": 0.05, "first_lower": 0.15}

# Filler: everyday words a training phrasing may be padded with ("so, um, what's the capital of Peru"), and what
# questions about nothing in the memory are made of in training (ragedu.train). Our encoders' word embeddings stay
# random (ragedu.train), so a word never seen in training looks like a name never seen in training; filler in
# many places teaches the encoder that such words alone pick no passage. No word of a held-out family is a filler.
_EVERYDAY = """a about actually again all also always am an and any anyone anything are around as ask asked asking
at back bad be because been before best better big book both bring but by can car cat come coming day dear did
does dog doing done down each easy else enough even ever every exactly fact far fast few fine first for friend from
fun game get give go going gone good got great guess had happy hard has have he hello help her here hey hi him his
home hope hour house idea if into it its just keep kind last later learn left let little long lot love made make
maybe me mean might mind more morning most much must my need never new next nice night no not now off oh ok okay
old one only or other our out over own people please pretty quick quickly quite rather read ready real really
remember right said same say school see seems she should show simple since so some someone something soon sorry
still story sure take talk teacher than thank thanks that the their them then there these they thing think this
those though time today too tried try trying two um us very wait want was way we well were when while who why will
with work world would yeah year yes yet you your""".split()


def held_out_words() -> set[str]:
    """Every word of a dev or test family's templates, lowercased."""
    words = set()
    for split in ("dev", "test"):
        for task, families in HELD_OUT[split].items():
            for family in families:
                for templates in FAMILIES[task][family].values():
                    words |= {w.lower() for t in templates for w in re.findall(r"[A-Za-z']+", re.sub(r"\{\w+\}", " ", t))}
    return words | {w.split("'")[0] for w in words}


FILLER_WORDS = tuple(w for w in _EVERYDAY if w not in held_out_words())


@dataclass(frozen=True)
class Phrasing:
    """One way of writing an example: a template, its slots, a casing and whether the final mark stays."""

    template: str
    slots: dict
    casing: str = "as_written"
    final_mark: bool = True
    filler: str = ""          # words before the sentence ("so um"), or "" for none

    def text(self, value: str | None = None, styled: bool = True) -> str:
        """The sentence, with {value} (claims) filled in; unstyled it is cased as the template is (see `style`)."""
        slots = {**self.slots, "value": value} if value is not None else self.slots
        written = sentence(" ".join(filter(None, [self.filler, self.template.format(**slots)])))
        return style(written, self.casing, self.final_mark) if styled else written

    def restyled(self, text: str) -> str:
        return style(text, self.casing, self.final_mark)


def style(text: str, casing: str, final_mark: bool) -> str:
    """'What's the capital of Austria?' as typed: lower -> "what's the capital of austria?", and so on."""
    if casing not in CASINGS:
        raise ValueError(f"unknown casing {casing!r}; the casings are {', '.join(CASINGS)}")
    if not final_mark:
        text = text.rstrip("?.!")
    if casing == "lower":
        return text.lower()
    if casing == "upper":
        return text.upper()
    if casing == "first_lower":
        return text[:1].lower() + text[1:]
    return text


def possessive(name: str) -> str:
    """'Kenya' -> "Kenya's", 'the Bahamas' -> "the Bahamas'"."""
    return name + ("'" if name.endswith("s") else "'s")


def classic_phrasing(example: Example) -> Phrasing:
    """The phrasing an example of the task files is written in, read back through its classic templates:
    'Which country is Mombasa in?' -> template "Which country is {city} in?", slots {'city': 'Mombasa', ...};
    for claims the slots hold the stated 'value' too."""
    for template in FAMILIES[example.task]["classic"][example.relation]:
        parts = re.split(r"(\{\w+\})", template)
        pattern = "".join(f"(?P<{p[1:-1]}>.+?)" if p.startswith("{") else re.escape(p) for p in parts if p)
        match = re.fullmatch(pattern, example.question, flags=re.IGNORECASE)
        if match:
            slots = match.groupdict()
            if "country" in slots and slots["country"].startswith("The "):  # capitalised by `sentence`
                slots["country"] = "the " + slots["country"][4:]
            for name in ("country", "city"):
                if name in slots:
                    slots[f"{name}_s"] = possessive(slots[name])
            return Phrasing(template, slots)
    raise ValueError(f"example {example.id!r} matches none of the classic templates of {example.relation!r}")


def slots_of(example: Example) -> dict:
    """The names an example's question is made of (`classic_phrasing`): {'city': 'Mombasa', 'city_s': "Mombasa's"}"""
    return classic_phrasing(example).slots


def phrasing(example: Example, family: str, rng: random.Random, styled: bool = True) -> Phrasing | None:
    """A phrasing of the example in this family, its template and style drawn with `rng`; None if the family has no
    template for the example's relation."""
    templates = FAMILIES[example.task][family].get(example.relation)
    if not templates:
        return None
    slots = {k: v for k, v in slots_of(example).items() if k != "value"}
    casing, final_mark = random_style(rng) if styled else ("as_written", True)
    return Phrasing(rng.choice(templates), slots, casing, final_mark)


def random_style(rng: random.Random) -> tuple[str, bool]:
    """A casing drawn by its weight in `CASINGS`, and whether the final mark stays (60%)."""
    return rng.choices(list(CASINGS), list(CASINGS.values()))[0], rng.random() < 0.6


def filler(rng: random.Random, low: int, high: int) -> str:
    """low to high everyday words drawn at random: 'so maybe please'."""
    return " ".join(rng.choice(FILLER_WORDS) for _ in range(rng.randint(low, high)))


def training_phrasing(example: Example, rng: random.Random, filler_share: float = 0.0) -> Phrasing:
    """A phrasing for training: a training family drawn at random (one that has the relation), then a style;
    with probability `filler_share`, one to three filler words before it."""
    families = [f for f in TRAIN_FAMILIES[example.task] if example.relation in FAMILIES[example.task][f]]
    p = phrasing(example, rng.choice(families), rng)
    return dataclasses.replace(p, filler=filler(rng, 1, 3)) if rng.random() < filler_share else p


def claim_value(claim: Example) -> str:
    """The value a classic claim states: 'Kenya lies in Europe.' -> 'Europe' (with 'the' for a country)."""
    return slots_of(claim)["value"]


def held_out_examples(task: str, split: str, data_dir=None) -> list[Example]:
    """The split's examples of `task` ("qa" or "claims") asked in its held-out families: one question per
    example, family, template and style fixed by a checksum of the example's id, so the set never changes."""
    if split not in HELD_OUT:
        raise ValueError(f"held-out phrasings exist for the splits {', '.join(HELD_OUT)}, not {split!r}")
    kwargs = {} if data_dir is None else {"data_dir": data_dir}
    rephrased = []
    for e in load_task(task, split, **kwargs):
        rng = random.Random(zlib.crc32(f"held-out-{e.id}".encode()))
        families = [f for f in HELD_OUT[split][task] if e.relation in FAMILIES[task][f]]
        if not families:
            continue
        p = phrasing(e, rng.choice(families), rng)
        value = slots_of(e)["value"] if task == "claims" else None
        rephrased.append(dataclasses.replace(e, question=p.text(value)))
    return rephrased
