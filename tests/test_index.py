"""Index kinds (flat, HNSW, IVF-PQ): building, saving and loading with a model, and refusing bad index files."""
import json

import faiss
import numpy as np
import pytest
import torch

import ragedu
from ragedu.generator import GeneratorConfig
from ragedu.manifest import write_manifest
from ragedu.memory import swap_memory
from ragedu.pretrained import save
from ragedu.retriever import (INDEX_KINDS, build_index, index_kind_of, ivfpq_settings, load_index, new_encoder,
                              save_index)


def clustered(n, d, seed=0):
    """n vectors around 20 fixed centres; `seed` draws the points (queries come from the same centres)."""
    centres = np.random.default_rng(0).standard_normal((20, d)).astype(np.float32)
    rng = np.random.default_rng(seed + 1)
    return torch.from_numpy(centres[rng.integers(0, 20, n)] + rng.standard_normal((n, d)).astype(np.float32))


def recall_at(index, x, queries, k):
    exact = (queries @ x.T).topk(k, dim=-1).indices.numpy()              # (Q, k) brute force
    _, found = index.search(queries.numpy(), k)
    return np.mean([len(set(f) & set(e)) / k for f, e in zip(found, exact)])


@pytest.mark.parametrize("kind", INDEX_KINDS)
def test_each_kind_saves_loads_and_finds_the_exact_neighbours(kind, tmp_path):
    x, queries = clustered(2000, 32), clustered(50, 32, seed=1)
    index = build_index(x, kind)
    save_index(index, tmp_path / "index.faiss")
    loaded = load_index(tmp_path / "index.faiss")
    assert index_kind_of(loaded) == kind and loaded.ntotal == 2000 and loaded.d == 32
    floor = {"flat": 1.0, "hnsw": 0.95, "ivfpq": 0.5}[kind]   # IVF-PQ trades recall for 16× less memory
    assert recall_at(loaded, x, queries, 10) >= floor
    if kind == "flat":
        assert recall_at(loaded, x, queries, 10) == 1.0


def test_ivfpq_settings_respect_what_k_means_needs():
    for N in (60, 2439, 100_000, 1_000_000):
        s = ivfpq_settings(N, 128)
        assert s.nlist == 1 or s.train >= 39 * s.nlist      # ~39 training points per cell
        assert 128 % s.m == 0 and 1 <= s.nprobe <= s.nlist and s.train <= N
    assert ivfpq_settings(2439, 128).nlist == 49 and ivfpq_settings(1_000_000, 128).nlist == 1000


def test_the_compressed_index_is_smaller():
    x = clustered(3000, 64)
    size = {k: faiss.serialize_index(build_index(x, k)).size for k in INDEX_KINDS}
    assert size["ivfpq"] < size["flat"] / 4 < size["hnsw"] / 4


def test_an_unknown_kind_is_refused():
    with pytest.raises(ValueError, match=r"unknown index kind 'lsh'; choose one of \('flat', 'hnsw', 'ivfpq'\)"):
        build_index(torch.zeros(5, 4), "lsh")


@pytest.fixture()
def small(toy_tokenizer):
    return dict(vocab_size=len(toy_tokenizer), dim=32, layers=1, heads=2)


@pytest.mark.parametrize("kind", ["hnsw", "ivfpq"])
def test_a_model_directory_keeps_its_index_kind(toy_rag, toy_corpus, small, kind, tmp_path):
    model = swap_memory(toy_rag, toy_corpus, index_kind=kind)
    path = save(model, tmp_path / "model", ragedu.retriever.EncoderConfig(**small), GeneratorConfig(**small))
    assert json.loads((path / "config.json").read_text())["index_kind"] == kind
    loaded = ragedu.load(path)
    assert index_kind_of(loaded.retriever.index) == kind
    torch.testing.assert_close(loaded.retriever.d_z, toy_rag.retriever.d_z)  # exact d(z), even from PQ codes
    with torch.no_grad():
        a = toy_rag.retriever.full_log_p_z(["Which country is Town 3 in?"])
        b = loaded.retriever.full_log_p_z(["Which country is Town 3 in?"])
    torch.testing.assert_close(a, b)


@pytest.fixture()
def saved(toy_rag, small, tmp_path):
    return save(toy_rag, tmp_path / "model", ragedu.retriever.EncoderConfig(**small), GeneratorConfig(**small))


@pytest.mark.parametrize("keep", [0, 0.05, 0.5, 0.99])
def test_a_truncated_index_file_is_an_error_not_a_crash(saved, keep):
    data = (saved / "index.faiss").read_bytes()
    (saved / "index.faiss").write_bytes(data[:int(len(data) * keep)])
    write_manifest(saved)  # forged, so the check behind the manifest is reached
    with pytest.raises(ValueError, match="index.faiss is (empty|truncated or corrupt)"):
        ragedu.load(saved)


def test_a_corrupt_index_file_is_an_error(saved):
    data = (saved / "index.faiss").read_bytes()
    (saved / "index.faiss").write_bytes(data[:4] + b"\xff" * (len(data) - 4))
    write_manifest(saved)  # forged, so the check behind the manifest is reached
    with pytest.raises(ValueError, match="truncated or corrupt"):
        ragedu.load(saved)


def test_an_index_built_by_another_encoder_is_refused(toy_rag, toy_corpus, small, saved):
    from ragedu.retriever import EncoderConfig, encode_passages

    other = new_encoder(EncoderConfig(**small), seed=7)        # same size, other weights
    d_z = encode_passages(other, toy_rag.retriever.tokenizer, toy_corpus, progress=False)
    save_index(build_index(d_z, "flat"), saved / "index.faiss")
    write_manifest(saved)  # forged, so the check behind the manifest is reached
    with pytest.raises(ValueError, match=r"does not hold this model's d\(z\) of its passages"):
        ragedu.load(saved)


def test_an_index_of_another_dimension_is_refused(saved):
    save_index(build_index(torch.randn(60, 16), "flat"), saved / "index.faiss")
    write_manifest(saved)  # forged, so the check behind the manifest is reached
    with pytest.raises(ValueError, match="holds 60 vectors of size 16; the model needs 60 of size 32"):
        ragedu.load(saved)


def test_a_document_encoder_swapped_under_the_index_is_refused(saved, small):
    from safetensors.torch import save_file

    from ragedu.pretrained import untied_tensors
    from ragedu.retriever import EncoderConfig

    save_file(untied_tensors(new_encoder(EncoderConfig(**small), seed=3)), str(saved / "doc_encoder.safetensors"))
    write_manifest(saved)  # forged, so the check behind the manifest is reached
    with pytest.raises(ValueError, match="not the document encoder the index was built with"):
        ragedu.load(saved)


def test_a_distance_index_is_refused(saved):
    index = faiss.IndexFlatL2(32)
    index.add(np.zeros((60, 32), dtype=np.float32))
    save_index(index, saved / "index.faiss")
    write_manifest(saved)
    with pytest.raises(ValueError, match="not by inner product"):
        ragedu.load(saved)
