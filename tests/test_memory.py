"""Memory editions: building them from the table, swapping them into a model (nothing else changes), hot-swap."""
import hashlib
import json

import pytest
import torch

import ragedu
from ragedu.corpus import load_corpus
from ragedu.editions import EDITIONS, build_edition, edition_path, load_changes, load_edition, rename
from ragedu.hotswap import HotSwap, SwapQuestion, changed_questions
from ragedu.pretrained import DEFAULT_MODEL_DIR


def test_the_table_has_enough_dated_sourced_facts():
    changes = load_changes()
    assert len(changes) >= 25
    assert {c.relation for c in changes} == {"currency", "capital", "name"}
    for c in changes:
        assert c.values["2000"] != c.values["today"] and 2000 <= c.year <= 2025 and c.source.startswith("https://")
    assert len({(c.code, c.relation) for c in changes}) == len(changes)   # one row per fact


def test_the_shipped_edition_is_what_the_code_builds():
    rebuilt = build_edition(load_edition("today"), load_changes(), "2000")
    shipped = load_corpus(edition_path("2000"))
    assert [(p.id, p.title, p.text) for p in rebuilt] == [(p.id, p.title, p.text) for p in shipped]


def test_the_2000_edition_states_every_old_fact_and_only_changes_those():
    today, old = load_edition("today"), load_edition("2000")
    changes = load_changes()
    assert [p.id for p in today] == [p.id for p in old]
    for c in changes:
        before, now = old[old.row(f"country-{c.code}")], today[today.row(f"country-{c.code}")]
        word = {"currency": "Its currency is the {}.", "capital": "Its capital is {}.", "name": "{}"}[c.relation]
        assert word.format(c.values["2000"].removeprefix("the ")) in before.title + " " + before.text
        assert word.format(c.values["today"]) in now.title + " " + now.text
    renamed = [c.values["today"] for c in changes if c.relation == "name"]
    touched = {f"country-{c.code}" for c in changes}
    for a, b in zip(today, old):
        if (a.title, a.text) != (b.title, b.text):
            assert a.id in touched or any(name in a.title + a.text for name in renamed), a.id
    assert sum((a.title, a.text) != (b.title, b.text) for a, b in zip(today, old)) > len(changes)  # cities too


def test_renaming_writes_the_article_and_leaves_longer_words_alone():
    assert rename("Czechia is a country. It borders Czechia.", "Czechia", "the Czech Republic") == \
        "The Czech Republic is a country. It borders the Czech Republic."
    assert rename("Its languages include Macedonian.", "Macedonia", "Macedonia (old)") == \
        "Its languages include Macedonian."


def test_renamed_countries_are_asked_about_through_their_capital():
    questions = changed_questions(load_edition("today"), load_changes())
    assert len(questions) == len(load_changes())
    by_code = {q.code: q for q in questions}
    assert by_code["SZ"].question == "Which country is Mbabane in?"
    assert by_code["SZ"].answers == {"2000": "Swaziland", "today": "Eswatini"}
    assert by_code["CZ"].answers["2000"] == "Czech Republic"
    assert by_code["MM"].question == "What is the capital of Myanmar?"
    for q in questions:   # the question names nothing that differs between the editions
        assert not any(v in q.question for v in q.answers.values())


def test_an_unknown_edition_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown memory edition '1999'; the known editions are 2000, today"):
        ragedu.load_default(memory="1999")


def _digest(directory):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def default_and_2000():
    before = _digest(DEFAULT_MODEL_DIR)
    models = ragedu.load_default(), ragedu.load_default(memory="2000")
    assert _digest(DEFAULT_MODEL_DIR) == before, "swapping the memory wrote into data/model"
    return models


def test_swapping_changes_the_passages_and_index_and_nothing_else(default_and_2000):
    today, old = default_and_2000
    for part in ("query_encoder", "doc_encoder"):
        a, b = getattr(today.retriever, part).state_dict(), getattr(old.retriever, part).state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[n], b[n]) for n in a)
    a, b = today.generator.state_dict(), old.generator.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[n], b[n]) for n in a)
    assert today.retriever.index is not old.retriever.index
    row = old.retriever.corpus.row("country-DE")
    assert "Deutsche Mark" in old.retriever.corpus[row].text and "euro" in today.retriever.corpus[row].text
    assert not torch.equal(today.retriever.d_z[row], old.retriever.d_z[row])


def test_an_edition_index_is_built_by_the_models_own_document_encoder(default_and_2000):
    from ragedu.memory import swap_memory

    today, _ = default_and_2000
    rebuilt = swap_memory(today, load_edition("today"))     # today's passages, encoded again at load time
    torch.testing.assert_close(rebuilt.retriever.d_z, today.retriever.d_z, atol=1e-5, rtol=1e-5)


def test_the_2000_memory_retrieves_the_2000_passage(default_and_2000):
    _, old = default_and_2000
    with torch.no_grad():
        found = old.retriever.retrieve(["What is the currency of Germany?"], 3)
    assert "Deutsche Mark" in " ".join(found.texts[0])


def test_hot_swap_tables_count_exact_matches():
    q = [SwapQuestion("DE", "currency", "?", {"2000": "Deutsche Mark", "today": "euro"}, "country-DE"),
         SwapQuestion("MM", "capital", "?", {"2000": "Yangon", "today": "Nay Pyi Taw"}, "country-MM")]
    result = HotSwap(q, {"2000": ["deutsche mark", "Nay Pyi Taw"], "today": ["euro", "Nay Pyi Taw"]},
                     {}, {"2000": [True, False], "today": [True, True]}, [True, False])
    assert result.to_json() == {"changed_facts": {"2000": {"2000": 0.5, "today": 0.5},
                                                  "today": {"2000": 0.0, "today": 1.0}},
                                "unchanged_facts": {"2000": 0.5, "today": 1.0}}
    assert result.changed_table([True, False]) == {"2000": {"2000": 1.0, "today": 0.0},
                                                   "today": {"2000": 0.0, "today": 1.0}}


def test_eval_hot_swap_prints_the_2x2_table(toy_model_dir, capsys):
    from ragedu.cli import main

    assert main(["eval", "hot-swap", "--json", "--limit", "4", "--model", str(toy_model_dir)]) == 0
    table = json.loads(capsys.readouterr().out)
    assert set(table) == {"changed_facts", "unchanged_facts"}
    assert set(table["changed_facts"]) == set(EDITIONS) and set(table["unchanged_facts"]) == set(EDITIONS)
    assert all(set(row) == set(EDITIONS) and all(0 <= v <= 1 for v in row.values())
               for row in table["changed_facts"].values())


def test_ask_with_a_memory_edition(toy_model_dir, capsys):
    from ragedu.cli import main

    assert main(["ask", "What is the currency of Germany?", "--memory", "2000", "--json", "-k", "2",
                 "--variant", "token", "--model", str(toy_model_dir)]) == 0
    assert len(json.loads(capsys.readouterr().out)["passages"]) == 2
    assert main(["ask", "hello?", "--memory", "1999", "--model", str(toy_model_dir)]) == 2
    assert "the known editions are 2000, today" in capsys.readouterr().err


def test_plain_eval_still_parses(toy_model_dir, capsys):
    from ragedu.cli import main

    assert main(["eval", "--json", "--limit", "1", "--model", str(toy_model_dir)]) == 0
    assert "qa_exact_match" in json.loads(capsys.readouterr().out)
