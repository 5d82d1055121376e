"""Property-based (Hypothesis): arbitrary strings, numbers and file contents thrown at `ragedu ask`'s input
checks, `score`, `decode` and `load`. Each either answers or raises RagEduError with a message; any other
exception is a bug. Small example counts keep it to seconds on the toy model."""
import shutil

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ragedu
from ragedu import checks
from ragedu.decoding import decode
from ragedu.errors import RagEduError
from ragedu.manifest import write_manifest

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

anything = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30), st.binary(max_size=8), st.builds(np.int64, st.integers(-100, 100)),
    st.builds(np.float32, st.floats(width=32)), st.lists(st.integers(0, 9), max_size=3),
)
questions = st.one_of(st.text(max_size=80), st.lists(st.one_of(st.text(max_size=80), anything), max_size=3),
                      anything)
counts = st.one_of(st.integers(-3, 70), anything)


def answers_or_refuses(call):
    """call() returns, or raises RagEduError with a message: nothing else."""
    try:
        call()
    except RagEduError as error:
        assert str(error).strip(), "an error without a message"


@FAST
@given(text=st.one_of(st.text(), st.binary().map(lambda b: b.decode("latin-1"))))
def test_ask_input_checks_accept_or_explain_any_string(text):
    answers_or_refuses(lambda: checks.question(text))


@FAST
@given(content=st.binary(max_size=300))
def test_ask_file_checks_accept_or_explain_any_file(tmp_path, content):
    path = tmp_path / "questions.txt"
    path.write_bytes(content)
    try:
        lines = checks.question_lines(path)
    except RagEduError as error:
        assert str(error)
        return
    assert lines and all(isinstance(q, (str, RagEduError)) for _, q in lines)
    assert all(isinstance(n, int) and n >= 1 for n, _ in lines)


@FAST
@given(qs=questions, ys=questions, k=counts)
def test_score_answers_or_explains(toy_rag, qs, ys, k):
    with torch.no_grad():
        answers_or_refuses(lambda: toy_rag.score(qs, ys, k=k))


@FAST
@given(qs=questions, variant=st.one_of(st.sampled_from(["token", "sequence"]), anything),
       mode=st.one_of(st.sampled_from(["thorough", "fast"]), anything), k=counts,
       num_beams=st.one_of(st.integers(-1, 3), anything), max_len=st.one_of(st.integers(-1, 300), anything),
       length_penalty=st.one_of(st.floats(-3, 3), anything))
def test_decode_answers_or_explains(toy_rag, qs, variant, mode, k, num_beams, max_len, length_penalty):
    answers_or_refuses(lambda: decode(toy_rag, qs, variant, k, mode=mode, num_beams=num_beams, max_len=max_len,
                                      length_penalty=length_penalty))


MODEL_FILES = ["config.json", "tokenizer.json", "query_encoder.safetensors", "doc_encoder.safetensors",
               "generator.safetensors", "corpus.jsonl", "index.faiss", "manifest.json"]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(MODEL_FILES), content=st.binary(max_size=400), keep=st.floats(0, 1),
       forge=st.booleans())
def test_load_answers_or_explains_whatever_a_file_holds(toy_model_dir, tmp_path_factory, name, content, keep,
                                                        forge):
    """A file replaced by arbitrary bytes, or cut short; with forge=True the manifest is rewritten to match,
    so the file's own reader meets the bytes."""
    copy = shutil.copytree(toy_model_dir, tmp_path_factory.mktemp("damaged") / "model")
    original = (copy / name).read_bytes()
    (copy / name).write_bytes(original[:int(len(original) * keep)] + content)
    if forge and name != "manifest.json":
        write_manifest(copy)
    answers_or_refuses(lambda: ragedu.load(copy))


@pytest.mark.parametrize("name", ["config.json", "corpus.jsonl"])
def test_plausible_json_in_a_forged_directory_is_explained(toy_model_dir, tmp_path, name):
    """JSON that parses but is not what the loader expects: a list, wrong types, missing keys."""
    for text in ["[]", "{}", '{"format": "ragedu-model/1", "encoder": 3}', '{"id": 1, "title": 2, "text": 3}',
                 '"just a string"', "null"]:
        copy = shutil.copytree(toy_model_dir, tmp_path / f"m{len(list(tmp_path.iterdir()))}")
        (copy / name).write_text(text + "\n")
        write_manifest(copy)
        with pytest.raises(RagEduError):
            ragedu.load(copy)
