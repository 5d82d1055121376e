"""Questions about things the memory holds nothing on, made up for training.   (notebook 1)

Our memory holds countries and cities. A student also types "Who wrote Hamlet?". The retriever must learn what
such a question looks like, so that the empty passage ∅ beats every real passage for it (the memory signal,
ragedu.relevance). Stage 1 of training (ragedu.stages.retriever_loss) asks two kinds of null questions, with no
gold passage:

    invented places      "What is the capital of Naipala?"       a real form about a place that does not exist
    off-topic questions  "Who carved the lighthouse?"            other forms, about other things (this module)

An off-topic question is a template of everyday question forms filled from small word lists of things, people
and verbs, and some numbers (a number alone must not make a question look like one about a population). None
of the words filled in occurs in data/tasks/out_of_corpus.txt (the test questions of `ragedu eval`) or
out_of_corpus_dev.txt (what the recipe was tuned on); tests/test_offtopic.py checks it, so both measure how the
signal generalises to questions nobody trained on.
"""
from __future__ import annotations

import random

THINGS = """anchor bakery balloon banjo barrel basket beetle blanket bracelet bridge broom bucket butterfly cactus
candle canoe carpet castle chimney clock cloud compass cookie crystal cupboard drum eagle elevator envelope
fountain frog glove harp helmet hive jellyfish kite lamp lemon lighthouse lizard lobster mirror mosquito
motorcycle mushroom necklace nest owl oyster pancake parachute peacock pearl pillow pirate pumpkin pyramid
raccoon ribbon saddle pretzel scarf scorpion shark skateboard snail spoon squirrel stamp sunflower swan tent
thermometer tractor trumpet turtle vase wagon wheel windmill""".split()
PEOPLE = """Aristotle Bach Caesar Chaucer Confucius Copernicus Dante Darwin Dickens Edison Euclid Faraday Galileo
Goethe Handel Homer Kafka Kepler Mandela Mendel Michelangelo Mozart Nietzsche Pasteur Plato Rembrandt Socrates
Tesla Tolstoy Vivaldi""".split()
ATTRIBUTES = """weight volume price age shape purpose size lifespan smell taste texture diet""".split()
DEEDS = """carved built designed sold stole repaired ordered baked sewed drew""".split()
HABITS = """sleep swim hum glow shrink sneeze float hibernate migrate""".split()
SUPERLATIVES = """heaviest oldest loudest rarest softest strongest cheapest brightest""".split()

TEMPLATES = (
    "Who {deed} the {thing}?",
    "What is the {attribute} of a {thing}?",
    "How many {thing}s does a {other} have?",
    "When was the {thing} first {deed}?",
    "Why do {thing}s {habit}?",
    "What did {person} study?",
    "What is a {thing}?",
    "how does a {thing} work",
    "Describe {person}.",
    "Which {thing} is the {superlative}?",
    "How old was {person} when he died?",
    "Is a {thing} heavier than a {other}?",
    "how to clean a {thing}",
    "Who was {person}?",
    "What does a {thing} eat?",
    "Where do {thing}s {habit}?",
    "What is {a} times {b}?",
    "How much is {a} plus {b}?",
    "Who won the {year} {thing} contest?",
    "What happened in {year}?",
    "Which {thing} has {a} legs?",
    "how many {thing}s make {b}",
)


def offtopic_question(rng: random.Random) -> str:
    """One made-up question about something the memory holds nothing on: 'Why do lobsters hibernate?'."""
    thing, other = rng.sample(THINGS, 2)
    return rng.choice(TEMPLATES).format(thing=thing, other=other, person=rng.choice(PEOPLE),
                                        attribute=rng.choice(ATTRIBUTES), deed=rng.choice(DEEDS),
                                        habit=rng.choice(HABITS), superlative=rng.choice(SUPERLATIVES),
                                        a=rng.randint(2, 99), b=rng.randint(2, 999), year=rng.randint(1500, 2020))


def filled_words() -> set[str]:
    """Every word the templates are filled with, lowercased (tests check none is in the out-of-corpus files)."""
    return {w.lower() for words in (THINGS, PEOPLE, ATTRIBUTES, DEEDS, HABITS, SUPERLATIVES) for w in words}
