"""Verifying model directories (issue 17's damaged-file probes, on copies of the shipped model): a flipped byte,
a reordered or swapped index, a truncated file are refused with the file's name before anything is used."""
import os
import shutil
import stat
import subprocess
import sys

import faiss
import numpy as np
import pytest

import ragedu
from ragedu.errors import RagEduError
from ragedu.manifest import MANIFEST, read_manifest, write_manifest
from ragedu.pretrained import DEFAULT_MODEL_DIR, check_retriever_index, write_checked_manifest


@pytest.fixture()
def shipped_copy(tmp_path):
    """A copy of data/model to damage (21 MB: copied in well under a second)."""
    return shutil.copytree(DEFAULT_MODEL_DIR, tmp_path / "model")


def flip(path, n=4096):
    """Invert n bytes in the middle of a file."""
    data = bytearray(path.read_bytes())
    start = len(data) // 2
    data[start:start + n] = bytes(b ^ 0xFF for b in data[start:start + n])
    path.write_bytes(bytes(data))


def test_the_shipped_manifest_lists_every_file_of_the_shipped_model():
    files = read_manifest(DEFAULT_MODEL_DIR)
    on_disk = {p.name for p in DEFAULT_MODEL_DIR.iterdir() if p.is_file() and p.name != MANIFEST}
    assert set(files) == on_disk
    assert all(files[name]["bytes"] == (DEFAULT_MODEL_DIR / name).stat().st_size for name in on_disk)


@pytest.mark.parametrize("name", ["generator.safetensors", "query_encoder.safetensors", "doc_encoder.safetensors",
                                  "tokenizer.json", "corpus.jsonl", "config.json", "closed_book.safetensors"])
def test_a_flipped_block_is_refused_naming_the_file(shipped_copy, name):
    flip(shipped_copy / name, n=min(4096, (shipped_copy / name).stat().st_size // 4))
    with pytest.raises(RagEduError, match=rf"{name} was changed or damaged .* re-copy the model directory"):
        ragedu.load(shipped_copy)


def test_a_truncated_safetensors_file_is_refused_by_size_and_by_its_reader(shipped_copy):
    weights = shipped_copy / "generator.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(RagEduError, match="generator.safetensors was changed or damaged"):
        ragedu.load(shipped_copy)
    write_manifest(shipped_copy)  # even with a manifest that agrees, the reader's error names the file
    with pytest.raises(RagEduError, match=r"generator.safetensors is not a readable safetensors file"):
        ragedu.load(shipped_copy)


def reorder_from_ninth_row(path):
    index = faiss.read_index(str(path))
    d_z = index.reconstruct_n(0, index.ntotal)
    d_z[8:] = d_z[8:][np.random.default_rng(0).permutation(len(d_z) - 8)]
    shuffled = faiss.IndexFlatIP(index.d)
    shuffled.add(d_z)
    faiss.write_index(shuffled, str(path))


def test_an_index_reordered_from_its_ninth_row_is_refused(shipped_copy):
    reorder_from_ninth_row(shipped_copy / "index.faiss")
    with pytest.raises(RagEduError, match="index.faiss was changed or damaged"):
        ragedu.load(shipped_copy)
    write_manifest(shipped_copy)  # a manifest forged over it: the rows sampled across the index still disagree
    with pytest.raises(RagEduError, match=r"index.faiss does not hold this model's d\(z\) of its passages: row"):
        ragedu.load(shipped_copy)


def test_the_2000_index_beside_todays_corpus_is_refused(shipped_copy):
    from ragedu.editions import load_edition
    from ragedu.memory import swap_memory

    model = ragedu.load(shipped_copy)
    old = swap_memory(model, load_edition("2000"))
    faiss.write_index(old.retriever.index, str(shipped_copy / "index.faiss"))
    with pytest.raises(RagEduError, match="index.faiss was changed or damaged"):
        ragedu.load(shipped_copy)
    (shipped_copy / MANIFEST).unlink()  # and blessing it re-encodes every passage, so it finds the 86 rows
    with pytest.raises(RagEduError, match=r"index.faiss does not hold this model's d\(z\)"):
        write_checked_manifest(shipped_copy)
    assert not (shipped_copy / MANIFEST).exists()


def test_an_editions_index_is_checked_against_its_own_corpus():
    from ragedu.editions import load_edition

    model = ragedu.load_default(memory="2000")
    assert model.retriever.corpus[0].id == load_edition("2000")[0].id
    today = ragedu.load_default()
    wrong = type(model.retriever)(model.retriever.query_encoder, model.retriever.doc_encoder,
                                  model.retriever.tokenizer, model.retriever.corpus, today.retriever.d_z,
                                  today.retriever.index, model.retriever.max_len)
    check_retriever_index(model.retriever, "the 2000 index", rows=list(range(len(model.retriever.corpus))))
    with pytest.raises(RagEduError, match="today's index over the 2000 passages does not hold this model's d"):
        check_retriever_index(wrong, "today's index over the 2000 passages",
                              rows=list(range(len(wrong.corpus))))


def test_a_directory_without_a_manifest_is_refused_with_the_command_that_writes_one(shipped_copy):
    (shipped_copy / MANIFEST).unlink()
    with pytest.raises(RagEduError, match=rf"has no manifest.json.*`ragedu manifest {shipped_copy}`"):
        ragedu.load(shipped_copy)
    write_checked_manifest(shipped_copy)
    assert (shipped_copy / MANIFEST).read_bytes() == (DEFAULT_MODEL_DIR / MANIFEST).read_bytes()
    ragedu.load(shipped_copy)


def test_a_damaged_manifest_or_an_unlisted_file_is_refused(shipped_copy):
    files = read_manifest(shipped_copy)
    (shipped_copy / "closed_book.safetensors").rename(shipped_copy / "closed_book.keep")
    write_manifest(shipped_copy)
    (shipped_copy / "closed_book.keep").rename(shipped_copy / "closed_book.safetensors")
    with pytest.raises(RagEduError, match="closed_book.safetensors is not in manifest.json"):
        ragedu.load(shipped_copy)
    (shipped_copy / MANIFEST).write_text("{not json")
    with pytest.raises(RagEduError, match="manifest.json is not a ragedu-manifest/1 manifest"):
        ragedu.load(shipped_copy)
    assert "generator.safetensors" in files


def test_a_malformed_config_names_the_file(shipped_copy):
    (shipped_copy / "config.json").write_text('{"format": "ragedu-model/1", ')
    write_manifest(shipped_copy)
    with pytest.raises(RagEduError, match=r"config.json is not valid JSON"):
        ragedu.load(shipped_copy)


LOAD_AND_SCORE = """
import sys, ragedu
m = ragedu.load(sys.argv[1])
s = m.score(["What is the capital of Kenya?"], ["Nairobi"], k=5)
print(s.retrieved.ids[0], round(float(s.log_p_y_token[0]), 5))
"""


def test_four_processes_agree_on_a_read_only_model_directory(shipped_copy):
    for p in [shipped_copy, *shipped_copy.iterdir()]:
        p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        env = dict(os.environ, OMP_NUM_THREADS="1")
        runs = [subprocess.Popen([sys.executable, "-c", LOAD_AND_SCORE, str(shipped_copy)], cwd=os.getcwd(),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
                for _ in range(4)]
        outs = [run.communicate(timeout=300) for run in runs]
        assert [run.returncode for run in runs] == [0] * 4, [err for _, err in outs]
        assert len({out for out, _ in outs}) == 1 and "country-KE" in outs[0][0]
        assert sorted(p.name for p in shipped_copy.iterdir()) == sorted(p.name for p in DEFAULT_MODEL_DIR.iterdir())
    finally:
        for p in [shipped_copy, *shipped_copy.iterdir()]:
            p.chmod(p.stat().st_mode | stat.S_IWUSR)
