"""Phrasings: families disjoint across training and the held-out sets, every question answerable from its gold
passage, held-out sets about their split's entities only, and training drawing training families alone."""
import random
import re

import pytest

from ragedu.corpus import load_corpus
from ragedu.phrasings import (CASINGS, DEV_FAMILIES, FAMILIES, TEST_FAMILIES, TRAIN_FAMILIES, Phrasing,
                              classic_phrasing, held_out_examples, possessive, style, training_phrasing)
from ragedu.tasks import load_task, mentions
from ragedu.augment import claim_pair, claim_values, training_names
from ragedu.stages import training_examples

ASKED = {"qa": {"capital", "currency", "continent", "city_country", "city_population"},
         "claims": {"capital", "currency", "continent", "city_country"}}


def templates(task, families):
    return {t.lower() for f in families for ts in FAMILIES[task][f].values() for t in ts}


@pytest.mark.parametrize("task", ["qa", "claims"])
def test_families_and_their_templates_are_disjoint_across_train_dev_and_test(task):
    train, dev, test = (set(g[task]) for g in (TRAIN_FAMILIES, DEV_FAMILIES, TEST_FAMILIES))
    assert not (train & dev) and not (train & test) and not (dev & test)
    assert train | dev | test == set(FAMILIES[task])
    t_train, t_dev, t_test = (templates(task, g) for g in (train, dev, test))
    assert not (t_train & t_dev) and not (t_train & t_test) and not (t_dev & t_test)


@pytest.mark.parametrize("task", ["qa", "claims"])
def test_every_held_out_family_asks_every_evaluated_relation(task):
    for family in DEV_FAMILIES[task] + TEST_FAMILIES[task]:
        assert ASKED[task] <= set(FAMILIES[task][family]), family


@pytest.mark.parametrize("split", ["dev", "test"])
def test_held_out_questions_are_about_the_split_and_answerable_from_their_gold_passage(split):
    corpus = load_corpus()
    for task in ("qa", "claims"):
        originals = {e.id: e for e in load_task(task, split)}
        rephrased = held_out_examples(task, split)
        assert len(rephrased) == len(originals)
        for e in rephrased:
            original = originals[e.id]
            assert (e.answer, e.entity, e.gold_ids, e.facts) == (original.answer, original.entity, original.gold_ids,
                                                                 original.facts)
            assert e.question.lower() != original.question.lower()
            slots = classic_phrasing(original).slots
            subject = slots.get("city") or slots["country"]
            assert subject.lower() in e.question.lower(), (subject, e.question)   # names its subject
            fact = e.facts[e.relation]
            assert mentions(corpus[corpus.row(e.gold_ids[0])].text, fact)             # the passage holds the answer
            if task == "claims":
                assert slots["value"].lower() in e.question.lower()


def test_held_out_sets_are_fixed_and_mix_casings():
    first, again = held_out_examples("qa", "test"), held_out_examples("qa", "test")
    assert [e.question for e in first] == [e.question for e in again]
    lowered = sum(e.question == e.question.lower() for e in first) / len(first)
    assert 0.2 < lowered < 0.6
    assert any(not e.question.endswith(("?", ".")) for e in first)


def test_training_draws_only_training_families_and_every_casing():
    allowed = {task: templates(task, TRAIN_FAMILIES[task]) for task in ("qa", "claims")}
    rng, seen = random.Random(0), set()
    examples = training_examples()
    for task in ("qa", "claims"):
        for e in rng.sample(examples[task], 300):
            p = training_phrasing(e, rng)
            assert p.template.lower() in allowed[task]
            seen.add(p.casing)
    assert seen == set(CASINGS)


def test_styles_and_possessives():
    assert style("What's the capital of Austria?", "lower", False) == "what's the capital of austria"
    assert style("Capital of Peru?", "upper", True) == "CAPITAL OF PERU?"
    assert style("Name the capital of Peru.", "first_lower", True) == "name the capital of Peru."
    assert possessive("Kenya") == "Kenya's" and possessive("the Bahamas") == "the Bahamas'"
    with pytest.raises(ValueError, match="casings"):
        style("x", "shouting", True)
    p = Phrasing("{country_s} capital is {value}.", {"country": "the Bahamas", "country_s": "the Bahamas'"})
    assert p.text("Nassau") == "The Bahamas' capital is Nassau."


def test_classic_phrasing_reads_every_task_file_question_back():
    for task in ("qa", "claims"):
        for split in ("train", "dev", "test"):
            for e in load_task(task, split):
                p = classic_phrasing(e)
                value = p.slots.get("value")
                assert p.text(value) == e.question


def test_claim_pairs_in_a_new_phrasing_differ_in_the_stated_value_alone():
    corpus, examples = load_corpus(), training_examples()
    names, values, rng = training_names(examples), claim_values(examples), random.Random(1)
    for e in examples["claims"][:200]:
        gold = corpus[corpus.row(e.gold_ids[0])]
        p = training_phrasing(e, rng)
        (t1, x1, supports, l1), (t2, x2, refutes, l2) = claim_pair(e, [gold.title], [gold.text], names, values,
                                                                  0.5, rng, p)
        assert (t1, x1, l1, l2) == (t2, x2, "supports", "refutes")
        groups = [template_match(p.template, claim) for claim in (supports, refutes)]
        assert all(groups), (p.template, supports, refutes)
        other = [{k: v for k, v in g.items() if k != "value"} for g in groups]
        assert other[0] == other[1] and groups[0]["value"] != groups[1]["value"]


def template_match(template, text):
    parts = re.split(r"(\{\w+\})", template.rstrip("?."))
    pattern = "".join(f"(?P<{q[1:-1]}>.+?)" if q.startswith("{") else re.escape(q) for q in parts if q)
    match = re.fullmatch(pattern, text.rstrip("?."), flags=re.IGNORECASE)
    return match and {k: v.lower() for k, v in match.groupdict().items()}


def test_filler_words_are_none_of_the_held_out_families_words():
    from ragedu.phrasings import FILLER_WORDS, held_out_words

    assert len(FILLER_WORDS) > 150
    assert not set(FILLER_WORDS) & held_out_words()
    assert {"could", "curious", "think", "want", "know", "what", "capital"} <= held_out_words()


def test_filler_pads_a_training_phrasing_and_survives_its_style():
    rng = random.Random(3)
    e = load_task("qa", "train")[0]
    padded = [training_phrasing(e, rng, filler_share=1.0) for _ in range(20)]
    assert all(p.filler for p in padded)
    for p in padded:
        words = p.text(styled=False).split()
        assert [w.lower() for w in words[:len(p.filler.split())]] == p.filler.lower().split()
    assert not any(training_phrasing(e, rng, filler_share=0.0).filler for _ in range(20))


def words_of(texts):
    return {w.lower() for t in texts for w in re.findall(r"[A-Za-z']+", re.sub(r"\{\w+\}", " ", t))}


def only_held_out_words():
    """Words some held-out family has and no hand-written training family has: 'curious', 'could', 'I', ..."""
    from ragedu.phrasings import held_out_words

    written = {(task, f) for task in ("qa", "claims") for f in TRAIN_FAMILIES[task]} - COMPOSED
    return held_out_words() - words_of(t for task, f in written for ts in FAMILIES[task][f].values() for t in ts)


COMPOSED = {("qa", "asks"), ("qa", "wonders"), ("claims", "hedged")}


def test_composed_frames_use_no_word_that_only_a_held_out_family_has():
    from ragedu.offtopic import TEMPLATES, filled_words
    from ragedu.frames import CLAIM_FRAMES, CLAUSE_FRAMES, CORE_FRAMES

    forbidden = only_held_out_words()
    assert {"curious", "could", "think", "i", "about"} <= forbidden     # the check can fail
    assert not words_of(CORE_FRAMES + CLAUSE_FRAMES + CLAIM_FRAMES) & forbidden
    assert not (words_of(TEMPLATES) | filled_words()) & forbidden


def test_composed_families_put_every_frame_around_every_core_and_name_the_subject():
    from ragedu.frames import CLAIM_FRAMES, CORE_FRAMES, QA_CORES

    assert len(FAMILIES["qa"]["asks"]["capital"]) == len(CORE_FRAMES) * len(QA_CORES["capital"])
    assert "Need the capital of {country}." in FAMILIES["qa"]["asks"]["capital"]
    assert "Is it true that the capital city of {country} is {value}?" in FAMILIES["claims"]["hedged"]["capital"]
    for task, family in COMPOSED:
        for relation, ts in FAMILIES[task][family].items():
            subject = "{city" if relation.startswith("city") else "{country"
            assert all(subject in t for t in ts), (family, relation)
            assert task == "qa" or all("{value}" in t for t in ts)
            assert len(ts) >= len(CLAIM_FRAMES)
