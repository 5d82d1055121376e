"""Composed phrasing families: a frame around a core that names what is asked.   (notebook 1)

    frame   "Please give me {np}."   "Wondering {wh}."   "Fact: {claim}."
    core    "the capital of {country}"  "which city is the capital of {country}"  a claim template as a clause

Frames are many and cheap to write, so training (ragedu.phrasings' families asks, wonders and hedged) meets
questions dressed in ways no single template shows: a question stated with a full stop is still a question, a
claim inside a question still states its value. No frame uses a word that only a held-out family has
(tests/test_phrasings.py checks it), so the held-out families still measure phrasings never trained on.
"""
from __future__ import annotations

QA_CORES = {
    "capital": ("the capital of {country}", "{country_s} capital", "the capital city of {country}"),
    "currency": ("the currency of {country}", "{country_s} currency", "the money of {country}"),
    "continent": ("the continent of {country}", "{country_s} continent"),
    "city_country": ("the country of {city}", "{city_s} country"),
    "city_population": ("the population of {city}", "{city_s} population", "the number of people in {city}"),
}
QA_CLAUSES = {
    "capital": ("which city is the capital of {country}", "what the capital of {country} is"),
    "currency": ("which currency {country} uses", "what the currency of {country} is"),
    "continent": ("which continent {country} is on", "what continent {country} is in"),
    "city_country": ("which country {city} is in", "what country {city} is in"),
    "city_population": ("how many people live in {city}", "what the population of {city} is"),
}
CORE_FRAMES = ("Please give me {np}.", "Give me {np}", "{np}, please.", "Need {np}.", "Show me {np}.",
               "Question: {np}?", "Quick question: {np}?", "Looking for {np}.", "Please name {np}.",
               "Remind me of {np}.", "Hey, {np}?", "And {np}?", "Next: {np}?", "Search {np}",
               "{np} - any idea?", "Help me with {np}.")
CLAUSE_FRAMES = ("Please tell me {wh}.", "Any idea {wh}?", "Remind me {wh}.", "Wondering {wh}.", "Can you say {wh}?",
                 "Do you remember {wh}?", "Help me work out {wh}.", "Who knows {wh}?", "Question: {wh}?",
                 "Let me hear {wh}.", "Please say {wh}", "Hey, {wh}?")
CLAIM_FRAMES = ("Is it true that {claim}?", "True or false: {claim}.", "Apparently {claim}.", "Someone told me {claim}.",
                "Fact: {claim}.", "{claim}, right?", "{claim}, correct?", "Is this so: {claim}?")


def framed(frames: tuple[str, ...], slot: str, cores: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    """Every frame around every core, per relation: ("Need {np}.", "the capital of {country}") ->
    "Need the capital of {country}." """
    return {relation: tuple(frame.replace(slot, core) for frame in frames for core in ts)
            for relation, ts in cores.items()}


def inner(claim: str) -> str:
    """A claim template as a clause inside a frame: 'The capital city of {country} is {value}.' ->
    'the capital city of {country} is {value}'."""
    claim = claim.rstrip(".")
    return claim[:1].lower() + claim[1:] if claim[:1].isupper() else claim
