"""The course's exercises (ragedu.exercises): every checker accepts its solution and refuses typical wrong answers,
the notebooks call exactly the registered exercises, stubs never raise, and the diagnoses name the mistake."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ragedu.errors import RagEduError
from ragedu.exercises import EXERCISES, check, main, solution_source, verdict

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def notebook_source(path: Path) -> str:
    return "\n".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code")


def test_json_command_every_solution_passes_and_a_wrong_answer_fails():
    result = subprocess.run([sys.executable, "-m", "ragedu.exercises", "--json"], capture_output=True, text=True,
                            cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [r["id"] for r in rows] == list(EXERCISES)
    for r in rows:
        assert set(r) >= {"id", "notebook", "solution_passes", "wrong_answer_fails"}
        assert r["notebook"] == int(r["id"].split(".")[0])
        assert r["solution_passes"] is True, f"exercise {r['id']}: the checker refuses its own solution"
        assert r["wrong_answer_fails"] is True, f"exercise {r['id']}: the checker accepts a typical wrong answer"


def test_enough_exercises_with_unique_ids_across_the_course():
    ids = [e.id for e in EXERCISES.values()]
    assert len(ids) >= 24 and len(set(ids)) == len(ids)
    assert sum(e.kind in ("predict", "derive") for e in EXERCISES.values()) >= 8
    assert {e.notebook for e in EXERCISES.values()} >= {1, 2, 3, 4, 5, 6, 7, 9}
    summaries = [e.summary for e in EXERCISES.values()]
    assert len(set(summaries)) == len(summaries)
    assert all(e.wrong for e in EXERCISES.values()), "every exercise carries at least one typical wrong answer"


def test_each_exercise_is_checked_in_its_notebook_and_each_notebook_check_is_registered():
    called = {}
    for path in NOTEBOOKS:
        for id in re.findall(r'check\("([^"]+)"', notebook_source(path)):
            called.setdefault(id, []).append(int(path.name[:2]))
    assert set(called) == set(EXERCISES), (set(EXERCISES) - set(called), set(called) - set(EXERCISES))
    for id, notebooks in called.items():
        assert notebooks == [EXERCISES[id].notebook], f"{id} is checked in notebooks {notebooks}"


def test_each_notebook_passes_its_checker_exactly_the_inputs_it_declares():
    import ast

    for path in NOTEBOOKS:
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] != "code" or 'check("' not in "".join(cell["source"]):
                continue
            for node in ast.walk(ast.parse("".join(cell["source"]))):
                if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "check":
                    ex = EXERCISES[node.args[0].value]
                    assert len(node.args) == 2, f"{ex.id}: check(id, answer, **inputs)"
                    assert {k.arg for k in node.keywords} == set(ex.given), f"{path.name}: check({ex.id!r}, …)"
                    assert isinstance(node.args[1], ast.Name), f"{ex.id}: the answer is a variable the stub sets"


def test_no_notebook_holds_a_worked_solution_any_more():
    for path in NOTEBOOKS:
        assert "Exercise 1, checked" not in notebook_source(path) and ", checked:" not in notebook_source(path)


def test_the_readme_counts_the_exercises_as_the_registry_does():
    text = " ".join((ROOT / "README.md").read_text().split())
    total, reasoned = map(int, re.search(r"Of the (\d+) exercises, (\d+) ask the student to predict or derive", text).groups())
    assert total == len(EXERCISES)
    assert reasoned == sum(e.kind in ("predict", "derive") for e in EXERCISES.values())


def test_an_untouched_stub_never_raises_and_says_it_is_not_answered(capsys):
    for id in EXERCISES:
        for stub in (..., None):
            result = check(id, stub)               # no inputs at all: a stub needs none
            assert not result and result.status == "unanswered"
    out = capsys.readouterr().out
    assert out.count("not answered yet") == 2 * len(EXERCISES)
    assert "--solution 3.1" in out


def test_a_checker_asks_for_the_notebooks_inputs_by_name_and_an_unknown_id_is_refused():
    with pytest.raises(RagEduError, match="takes the notebook's log_p_z, log_p_yi as keywords; log_p_yi missing"):
        verdict("3.1", torch.zeros(1), log_p_z=torch.zeros(1, 1))
    with pytest.raises(RagEduError, match="not log_p_y"):
        verdict("3.1", ..., log_p_z=torch.zeros(1, 1), log_p_yi=torch.zeros(1, 1, 1), log_p_y=torch.zeros(1))
    with pytest.raises(RagEduError, match="no exercise '3.9'"):
        verdict("3.9", 1.0)


# ---- the diagnoses, on toy tensors: B = 1 question, K = 3 passages, T = 2 tokens ----
log_p_z = torch.tensor([[0.6, 0.3, 0.1]]).log()                                  # (1, K)
log_p_yi = torch.tensor([[[0.9, 0.5], [0.2, 0.7], [0.1, 0.1]]]).log()            # (1, K, T)
joint = log_p_z + log_p_yi.sum(-1)                                               # (1, K)


def test_rag_sequence_diagnoses_sum_instead_of_logsumexp_the_missing_prior_and_the_shape():
    given = dict(log_p_z=log_p_z, log_p_yi=log_p_yi)
    assert verdict("3.1", torch.logsumexp(joint, -1), **given)
    summed = verdict("3.1", joint.sum(-1), **given)
    assert not summed and "logsumexp" in summed.message and "summed" in summed.message
    no_prior = verdict("3.1", torch.logsumexp(log_p_yi.sum(-1), -1), **given)
    assert not no_prior and "off by the prior" in no_prior.message
    scalar = verdict("3.1", torch.logsumexp(joint, -1)[0], **given)
    assert not scalar and "shape" in scalar.message
    token = verdict("3.1", torch.logsumexp(log_p_z[..., None] + log_p_yi, 1).sum(-1), **given)
    assert not token and "RAG-Token" in token.message


def test_probability_answers_diagnose_log_space_and_normalisation():
    p_full = torch.tensor([0.5, 0.2, 0.2, 0.1])
    rows = torch.tensor([0, 2])
    assert verdict("1.1", torch.tensor([0.5, 0.2]) / 0.7, p_full=p_full, rows=rows)
    as_log = verdict("1.1", (torch.tensor([0.5, 0.2]) / 0.7).log(), p_full=p_full, rows=rows)
    assert "log-probability" in as_log.message
    posterior = verdict("3.5", joint.exp(), log_p_z=log_p_z, log_p_yi=log_p_yi)   # Bayes' numerator only
    assert not posterior and "not normalised" in posterior.message


def test_doubling_d_z_is_the_softmax_of_twice_the_scores_and_unchanged_is_refused():
    p = log_p_z[0].exp()
    assert verdict("1.2", p ** 2 / (p ** 2).sum(), log_p_z=log_p_z[0])
    unchanged = verdict("1.2", p, log_p_z=log_p_z[0])
    assert not unchanged and "scale" in unchanged.message


def test_a_choice_is_explained_whichever_letter_is_chosen_and_a_non_letter_is_refused():
    right, wrong = verdict("4.4", "A"), verdict("4.4", "b")
    assert right and "union of the per-passage beams" in right.message
    assert not wrong and "The answer is (a)" in wrong.message and "union of the per-passage beams" in wrong.message
    assert "one of the letters" in verdict("4.4", "RAG-Token").message


def test_which_model_is_larger_is_computed_from_the_pattern_given():
    one_passage = dict(log_p_z=torch.tensor([[0.5, 0.5]]).log(),
                       log_p_yi=torch.tensor([[[0.9, 0.9], [0.1, 0.1]]]).log())     # passage 0 explains both tokens
    assert verdict("3.3", "b", **one_passage) and not verdict("3.3", "a", **one_passage)
    split = dict(log_p_z=torch.tensor([[0.5, 0.5]]).log(), log_p_yi=torch.tensor([[[0.9, 0.1], [0.1, 0.9]]]).log())
    assert verdict("3.3", "a", **split)


def test_the_gradient_is_checked_against_autograd_and_a_flipped_sign_is_named():
    scores, log_p_y_given_z = torch.tensor([[1.0, 0.0, -1.0]]), torch.tensor([[-2.0, -0.5, -3.0]])
    p_z, p_z_y = scores.softmax(-1), (scores + log_p_y_given_z).softmax(-1)
    assert verdict("5.4", p_z - p_z_y, scores=scores, log_p_y_given_z=log_p_y_given_z)
    flipped = verdict("5.4", p_z_y - p_z, scores=scores, log_p_y_given_z=log_p_y_given_z)
    assert not flipped and "sign is flipped" in flipped.message


def test_a_weird_answer_is_a_wrong_verdict_not_a_crash():
    assert "should be numbers" in verdict("3.1", "logsumexp", log_p_z=log_p_z, log_p_yi=log_p_yi).message
    assert not verdict("7.2", [0.5], results={"qa_exact_match": {"token": 1.0},
                                              "qa_exact_match_by_relation": {"capital": {"token": 1.0}}},
                       counts={"capital": 1})


def test_solutions_are_revealed_by_the_command_line(capsys):
    assert main(["--solution", "3.1"]) == 0
    out = capsys.readouterr().out
    assert "def solution_3_1" in out and "logsumexp" in out and out == solution_source("3.1") + "\n"
    assert main(["--solution", "0.0"]) == 2
    assert main(["--list"]) == 0
    listed = capsys.readouterr().out
    assert all(f"{id}  " in listed for id in EXERCISES)
