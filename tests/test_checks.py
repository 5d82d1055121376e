"""Issue 17's bad-input probes: each gets one sentence naming what was wrong and what is allowed, before the
model runs where it can; the command line exits 2 without a traceback."""
import json
import math
import time
import warnings

import numpy as np
import pytest
import torch

from ragedu import checks
from ragedu.cli import main
from ragedu.decoding import LARGE_RESCORE, decode, rescoring_pairs
from ragedu.errors import CostWarning, RagEduError, RagEduFileNotFound

QUESTION = "Which country is Town 3 in?"


@pytest.mark.parametrize("value,expected", [(5, 5), (np.int64(5), 5), (np.int32(2), 2), (torch.tensor(3), 3)])
def test_integers_of_any_type_are_accepted(value, expected):
    n = checks.count("K", value, 1, 10)
    assert n == expected and type(n) is int


@pytest.mark.parametrize("value,message", [
    (True, "got the boolean True"), (np.bool_(True), "got the boolean"), (5.0, "got 5.0 of type float"),
    ("5", "got '5' of type str"), (None, "got None of type NoneType"), (0, "got 0"), (11, "got 11"),
])
def test_other_counts_are_refused_in_one_sentence(value, message):
    with pytest.raises(RagEduError, match=rf"^K must be an integer between 1 and 10, {message}"):
        checks.count("K", value, 1, 10)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, np.float64("nan"), True, "1.0", None])
def test_settings_must_be_finite_numbers(value):
    with pytest.raises(RagEduError, match="length_penalty must be a finite real number"):
        checks.number("length_penalty", value)


@pytest.mark.parametrize("question,message", [
    ("?!.,;:", "has no letter or digit"), ("\x00\x00\x00", "control character U[+]0000 at character 0"),
    ("What is\x1b[31m this?", "control character U[+]001B at character 7"), ("   ", "is empty"),
    (17, "must be a string"),
])
def test_questions_without_words_or_with_control_characters_are_refused(question, message):
    with pytest.raises(RagEduError, match=message):
        checks.question(question)


def test_score_refuses_a_bare_string_of_answers_instead_of_counting_its_characters(toy_rag):
    questions = [QUESTION] * 7  # "Nairobi" has 7 characters: they used to be 7 answers
    with pytest.raises(RagEduError, match="pass a list of answers, one per question.*not a bare string"):
        toy_rag.score(questions, "Nairobi", k=3)
    with pytest.raises(RagEduError, match="2 questions but 1 answers"):
        toy_rag.score([QUESTION, QUESTION], ["Land 3"], k=3)


def test_k_may_be_a_numpy_integer_but_not_a_boolean(toy_rag):
    with torch.no_grad():
        a, b = toy_rag.score([QUESTION], ["Land 3"], k=np.int64(5)), toy_rag.score([QUESTION], ["Land 3"], k=5)
    assert a.retrieved.ids == b.retrieved.ids and torch.equal(a.log_p_y_token, b.log_p_y_token)
    with pytest.raises(RagEduError, match="K must be an integer between 1 and the corpus size 60, got the boolean"):
        toy_rag.score([QUESTION], ["Land 3"], k=True)
    assert decode(toy_rag, [QUESTION], "token", k=np.int64(3), num_beams=np.int64(2), max_len=np.int32(4)).answers


def test_a_nan_length_penalty_is_refused_not_an_empty_answer(toy_rag):
    with pytest.raises(RagEduError, match="length_penalty must be a finite real number, got nan"):
        decode(toy_rag, [QUESTION], "token", k=3, num_beams=2, length_penalty=float("nan"))


def test_answers_and_max_len_beyond_the_decoders_positions_are_refused(toy_rag):
    limit = toy_rag.generator.max_target_len  # 256 positions, </s> included
    with pytest.raises(RagEduError, match=rf"answer 0 is \d+ tokens long; at most {limit} are allowed"):
        toy_rag.score([QUESTION], ["Land " * 500], k=2)
    with pytest.raises(RagEduError, match=rf"max_len must be an integer between 1 and the decoder's position "
                                          rf"limit {limit}, got 300"):
        decode(toy_rag, [QUESTION], "sequence", k=2, max_len=300)
    decode(toy_rag, [QUESTION], "token", k=2, max_len=limit)  # the limit itself decodes


def test_long_thorough_decoding_says_its_cost_up_front(toy_rag, capsys):
    assert rescoring_pairs(1, 2439, 1) == 2439 * 2438 > LARGE_RESCORE  # the probe: ragedu ask -k 2439
    with pytest.warns(CostWarning, match=r"K=60 with 4 beam\(s\) rescores up to 14,160 .*mode='fast'"):
        decode(toy_rag, [QUESTION], "sequence", k=60, num_beams=4, max_len=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CostWarning)  # small K, or fast decoding: no warning and no bar
        decode(toy_rag, [QUESTION], "sequence", k=5, num_beams=2, max_len=4)
        decode(toy_rag, [QUESTION], "sequence", k=60, num_beams=4, max_len=4, mode="fast")
    assert "rescoring" not in capsys.readouterr().err


def test_ask_states_the_cost_before_the_model_loads(tmp_path, capsys):
    with pytest.warns(CostWarning, match="K=2439 with 1 beam"):
        assert main(["ask", QUESTION, "-k", "2439", "--model", str(tmp_path / "none")]) == 2


def test_the_progress_bar_appears_for_large_rescoring(monkeypatch, capsys):
    import ragedu

    model = ragedu.load_default()  # the untrained toy finds the same beam in every passage: nothing to rescore
    monkeypatch.setattr("ragedu.decoding.LARGE_RESCORE", 10)
    with pytest.warns(CostWarning):
        decode(model, ["What is the capital of Kenya?"], "sequence", k=10, num_beams=2, max_len=8)
    assert "(hypothesis, passage) pairs" in capsys.readouterr().err


def test_from_hf_refuses_a_missing_local_path_without_asking_the_hub(monkeypatch):
    import ragedu
    import ragedu.hf

    monkeypatch.setattr(ragedu.hf, "check_kind", lambda *a: pytest.fail("the name went on to the hub"))
    for name in ("/nonexistent", "./my_rag", "~/models/rag", "models/rag/token", "my_rag/"):
        t = time.perf_counter()
        with pytest.raises(RagEduFileNotFound, match=rf"RAG checkpoint {name} does not exist; give an existing"):
            ragedu.from_hf(name, passages=[])
        assert time.perf_counter() - t < 1


# ---- the command line: exit code 2 and one sentence, checked before the model loads where it can ----

def run(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("argv,message", [
    (["ask", "?!.,;:"], "has no letter or digit"),
    (["ask", "a\x07b"], "control character U+0007"),
    (["ask", " "], "the question is empty"),
    (["ask", "Town 3?", "-k", "0"], "-k must be a positive integer, got 0"),
    (["ask", "Town 3?", "--beams", "0"], "--beams must be a positive integer (1 is greedy decoding), got 0"),
    (["ask", "Town 3?", "--memory", "1999"], "unknown memory edition '1999'"),
    (["eval", "--limit", "0", "--json"], "--limit must be a positive integer (examples of each task), got 0"),
    (["eval", "hot-swap", "--limit", "-3"], "--limit must be a positive integer"),
])
def test_mistakes_are_refused_before_the_model_loads(tmp_path, capsys, argv, message):
    code, out, err = run(argv + ["--model", str(tmp_path / "no-model")], capsys)  # would say "does not exist"
    assert code == 2 and out == "" and message in err and "Traceback" not in err and len(err.splitlines()) == 1


def test_a_directory_or_a_binary_file_as_file_is_one_sentence(tmp_path, capsys):
    code, _, err = run(["ask", "--file", str(tmp_path)], capsys)
    assert code == 2 and f"--file {tmp_path} is a directory" in err
    binary = tmp_path / "q.bin"
    binary.write_bytes(b"Which country?\n\xff\xfe\x00garbage\n")
    code, _, err = run(["ask", "--file", str(binary)], capsys)
    assert code == 2 and f"{binary} is not UTF-8 text (byte 0xff on line 2)" in err


def test_a_bad_line_in_file_is_named_and_the_others_answered(toy_model_dir, tmp_path, capsys):
    questions = tmp_path / "questions.txt"
    questions.write_text(f"{QUESTION}\n\x00\x00\x00\n?!.,;:\n{'why ' * 80}\nWhat is the population of Town 8?\n")
    code, out, err = run(["ask", "--file", str(questions), "--model", str(toy_model_dir), "-k", "3"], capsys)
    assert code == 2
    assert [json.loads(line)["question"] for line in out.splitlines()] == [QUESTION, "What is the population of Town 8?"]
    errors = err.strip().splitlines()
    assert [e.split(": ")[2] for e in errors[:3]] == [f"{questions}:2", f"{questions}:3", f"{questions}:4"]
    assert "control character" in errors[0] and "no letter or digit" in errors[1] and "at most 80" in errors[2]
    assert errors[3].endswith(f"3 of 5 questions in {questions} were not answered (above)")


def test_a_damaged_model_is_a_sentence_not_a_traceback(toy_model_dir, tmp_path, capsys):
    import shutil

    copy = shutil.copytree(toy_model_dir, tmp_path / "model")
    (copy / "generator.safetensors").write_bytes(b"\x00" * 100)
    code, _, err = run(["ask", QUESTION, "--model", str(copy)], capsys)
    assert code == 2 and "generator.safetensors was changed or damaged" in err


def test_a_bug_is_still_a_traceback(toy_model_dir, monkeypatch):
    monkeypatch.setattr("ragedu.cli.answer", lambda *a: {}["a bug"])
    with pytest.raises(KeyError):
        main(["ask", QUESTION, "--model", str(toy_model_dir)])


def test_ask_states_a_large_cost_once(toy_model_dir, monkeypatch):
    import warnings

    monkeypatch.setattr("ragedu.decoding.LARGE_RESCORE", 10)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["ask", QUESTION, "-k", "20", "--variant", "sequence", "--model", str(toy_model_dir)]) == 0
    assert [type(w.message) for w in caught].count(CostWarning) == 1
