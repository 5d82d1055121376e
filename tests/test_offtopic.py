"""Off-topic training questions: about nothing the memory holds, and filled with no word of the questions the
memory signal is measured on (data/tasks/out_of_corpus*.txt), so that measure is of questions never trained on."""
import random
import re

from ragedu.corpus import load_corpus
from ragedu.evaluate import out_of_corpus_questions
from ragedu.offtopic import filled_words, offtopic_question


def words(texts):
    found = {w.lower() for t in texts for w in re.findall(r"[A-Za-z]+", t)}
    return found | {w + "s" for w in found} | {w.removesuffix("s") for w in found}


def test_no_filled_word_is_in_the_out_of_corpus_questions():
    asked = words(out_of_corpus_questions("test") + out_of_corpus_questions("dev"))
    assert {"hamlet", "spider", "octopus"} <= asked          # the check can fail
    assert not filled_words() & asked


def test_no_filled_word_is_part_of_a_place_the_memory_holds():
    places = words(p.title for p in load_corpus())
    assert {"kenya", "nairobi"} <= places
    assert not filled_words() & places


def test_the_questions_are_varied_and_fixed_by_the_seed():
    first = [offtopic_question(random.Random(7)) for _ in range(3)]
    assert len(set(first)) == 1
    rng = random.Random(0)
    drawn = [offtopic_question(rng) for _ in range(300)]
    assert len(set(drawn)) > 250
    assert all("{" not in q for q in drawn)


def test_dev_and_test_out_of_corpus_questions_are_apart():
    dev, test = out_of_corpus_questions("dev"), out_of_corpus_questions("test")
    assert len(dev) >= 30 and len(test) >= 30 and not set(dev) & set(test)
