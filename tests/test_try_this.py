"""The explorer's "try this" inputs (ragedu.try_this): each stored entry still shows its effect on the shipped
model, and each criterion refuses an input that cannot show it."""
import json

import pytest

import ragedu
from ragedu.explorer import ExplorerState
from ragedu.try_this import COMMAND, KINDS, TRY_THIS_FILE, TryThis, leaning_titles, load_try_this, problem

ENTRIES = load_try_this()


@pytest.fixture(scope="module")
def state(one_thread):
    return ExplorerState(ragedu.load_default(), k_max=10)


def test_the_stored_file_offers_one_input_of_each_kind():
    assert TRY_THIS_FILE.exists(), f"data/try_this.json is missing: run `{COMMAND}`"
    assert sorted(e.kind for e in ENTRIES) == sorted(KINDS)
    assert json.loads(TRY_THIS_FILE.read_text())["made_by"] == COMMAND


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.kind for e in ENTRIES])
def test_each_stored_input_still_shows_its_effect(state, entry):
    why = problem(state, entry)
    assert why is None, (f"{entry.kind} {entry.question!r} no longer shows its effect on the shipped model ({why}); "
                         f"if the model was retrained, rerun `{COMMAND}`")


def test_the_mixing_input_leans_on_two_titles_token_by_token(state):
    entry = next(e for e in ENTRIES if e.kind == "mixes")
    titles = leaning_titles(state, entry)
    view = state.view(entry.question, entry.k, "token", entry.mode, entry.num_beams)
    assert len(titles) == len(view.tokens) - 1 and len(set(titles)) >= 2


def test_each_criterion_refuses_an_input_that_cannot_show_it(state):
    question = ENTRIES[0].question if ENTRIES else "Prague"
    # with one passage RAG-Token has nothing to mix, and thorough has nothing to rescore
    assert "one passage only" in problem(state, TryThis("mixes", question, 1, 4, "thorough", "token"))
    assert "the same answer" in problem(state, TryThis("modes", question, 1, 4, "thorough", "sequence"))
    assert "the same at K = 3 and K = 3" in problem(state, TryThis("k", question, 3, 4, "thorough", "sequence", 3))


def test_entries_say_what_to_look_at(tmp_path):
    k = TryThis("k", "Q?", 1, 4, "thorough", "sequence", k_to=5)
    assert "Move K from 1 to 5" in k.sentence() and "K = 1 → 5" in k.label()
    assert "hatched" in TryThis("modes", "Q?", 5, 4, "thorough", "sequence").sentence()
    assert "two passages" in TryThis("mixes", "Q?", 5, 4, "thorough", "token").sentence()
    assert load_try_this(tmp_path / "none.json") == []
