"""Where RAG-Sequence's thorough and fast decoding disagree (ragedu.disagreement): both answers come from one
fast-mode decode, equal to decoding each mode on its own; every case listed in FOUND still disagrees on the shipped
model; the command reports counts per setting."""
import json

import pytest
import torch

import ragedu
from ragedu.decoding import decode
from ragedu.disagreement import FOUND, MAX_LEN, answers_of_both, main, still_disagrees

pytestmark = pytest.mark.usefixtures("one_thread")   # small matrices: on a busy CPU extra threads only spin

RERUN = ("rerun `python -m ragedu.disagreement` and replace ragedu.disagreement.FOUND with the cases it prints "
         "(notebook 4 draws FOUND[0])")


@pytest.fixture(scope="module")
def shipped():
    torch.set_grad_enabled(False)
    yield ragedu.load_default()
    torch.set_grad_enabled(True)


def test_one_fast_trace_gives_the_answers_of_both_modes(shipped):
    questions = [FOUND[1].question, "What is the capital of Austria?"]
    settings = FOUND[1].settings
    pairs = answers_of_both(shipped, questions, batch_size=1, **settings)  # two batches: the split is seamless
    fast = decode(shipped, questions, "sequence", mode="fast", **settings).answers
    thorough = decode(shipped, questions, "sequence", mode="thorough", **settings).answers
    assert pairs == list(zip(fast, thorough))
    assert pairs[0][0] != pairs[0][1] and pairs[1][0] == pairs[1][1]       # a case, and a question that agrees


@pytest.mark.parametrize("case", FOUND, ids=[c.question for c in FOUND])
def test_every_listed_case_still_disagrees_on_the_shipped_model(shipped, case):
    fast, thorough = still_disagrees(shipped, case)
    assert fast != thorough, f"{case.question!r} no longer disagrees ({fast!r} both): {RERUN}"
    assert (fast, thorough) == (case.fast, case.thorough), f"{case.question!r} now gives {fast!r}, {thorough!r}: {RERUN}"


def test_the_listed_cases_are_test_inputs_at_the_searched_settings():
    from ragedu.tasks import load_task

    for case in FOUND:
        assert case.question in {e.question for e in load_task(case.task, case.split)}
        assert case.split == "test" and case.max_len == MAX_LEN[case.task]


def test_the_command_reports_a_count_per_setting(capsys):
    assert main(["--tasks", "claims", "qa", "--k", "5", "--beams", "2", "--limit", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [(c["task"], c["k"], c["num_beams"], c["max_len"], c["searched"]) for c in out["counts"]] == \
        [("claims", 5, 2, MAX_LEN["claims"], 3), ("qa", 5, 2, MAX_LEN["qa"], 3)]
    assert all(0 <= c["disagree"] <= c["searched"] for c in out["counts"])
    assert len(out["cases"]) == sum(c["disagree"] for c in out["counts"])


def test_the_command_refuses_a_bad_setting_in_one_sentence(capsys):
    assert main(["--tasks", "qa", "--k", "0", "--beams", "2", "--limit", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("python -m ragedu.disagreement: K must be") and "Traceback" not in err
