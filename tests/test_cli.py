"""The `ragedu` command line: ask (text, JSON, a file of questions) and its errors."""
import json

import pytest

from ragedu.cli import main


def test_ask_json_has_passages_posterior_and_both_answers(toy_model_dir, capsys):
    assert main(["ask", "Which country is Town 3 in?", "-k", "4", "--json", "--model", str(toy_model_dir)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["question"] == "Which country is Town 3 in?" and result["k"] == 4
    assert len(result["passages"]) == 4
    assert sum(p["p_z"] for p in result["passages"]) == pytest.approx(1, abs=1e-3)
    assert set(result["answers"]) == {"sequence", "token"}
    assert all(isinstance(a["log_p_y"], float) and a["log_p_y"] <= 0 for a in result["answers"].values())


def test_ask_text_and_one_variant(toy_model_dir, capsys):
    assert main(["ask", "Town", "7?", "--variant", "token", "--model", str(toy_model_dir)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Q: Town 7?") and "RAG-Token" in out and "RAG-Sequence" not in out
    assert "top-5 passages, p(z|x):" in out


def test_ask_file_prints_one_json_object_a_line(toy_model_dir, tmp_path, capsys):
    questions = tmp_path / "questions.txt"
    questions.write_text("Which country is Town 3 in?\n\nWhat is the population of Town 8?\n")
    assert main(["ask", "--file", str(questions), "--model", str(toy_model_dir)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [json.loads(line)["question"] for line in lines] == ["Which country is Town 3 in?",
                                                              "What is the population of Town 8?"]


@pytest.mark.parametrize("argv,message", [
    (["ask", " "], "the question is empty"),
    (["ask", "Town 3?", "-k", "0"], "-k must be a positive integer, got 0"),
    (["ask", "Town 3?", "-k", "61"], "K must be an integer between 1 and the corpus size 60, got 61"),
    (["ask", "why " * 120], "at most 80 are allowed"),
    (["ask"], "give a question"),
])
def test_bad_questions_are_clear_errors(toy_model_dir, capsys, argv, message):
    assert main(argv + ["--model", str(toy_model_dir)]) == 2
    assert message in capsys.readouterr().err


def test_a_missing_model_directory_is_a_clear_error(tmp_path, capsys):
    assert main(["ask", "hello?", "--model", str(tmp_path / "none")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_an_unknown_variant_is_refused_by_the_parser(toy_model_dir, capsys):
    with pytest.raises(SystemExit):
        main(["ask", "hello?", "--variant", "both", "--model", str(toy_model_dir)])
    assert "invalid choice: 'both'" in capsys.readouterr().err
