"""Model directories: a save/load round trip, and clear errors for missing or mismatched files."""
import json

import pytest
import torch

import ragedu
from ragedu.generator import GeneratorConfig
from ragedu.manifest import write_manifest
from ragedu.pretrained import save
from ragedu.retriever import EncoderConfig


@pytest.fixture()
def saved(toy_rag, toy_tokenizer, tmp_path):
    small = dict(vocab_size=len(toy_tokenizer), dim=32, layers=1, heads=2)
    return save(toy_rag, tmp_path / "model", EncoderConfig(**small), GeneratorConfig(**small))


def test_round_trip_gives_the_same_numbers(toy_rag, saved):
    loaded = ragedu.load(saved)
    with torch.no_grad():
        a = toy_rag.score(["Which country is Town 3 in?"], ["Land 3"], k=4)
        b = loaded.score(["Which country is Town 3 in?"], ["Land 3"], k=4)
    assert a.retrieved.ids == b.retrieved.ids
    torch.testing.assert_close(a.log_p_yi, b.log_p_yi)
    torch.testing.assert_close(a.log_p_z, b.log_p_z)


def test_missing_files_are_named(saved):
    (saved / "generator.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match=r"lacks \['generator.safetensors'\]"):
        ragedu.load(saved)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ragedu.load(saved.parent / "nowhere")


def test_weights_of_the_wrong_shape_are_refused(saved):
    config = json.loads((saved / "config.json").read_text())
    config["generator"]["dim"] = 48
    (saved / "config.json").write_text(json.dumps(config))
    write_manifest(saved)  # as if saved so: the checks behind the manifest still hold
    with pytest.raises(ValueError, match="generator.safetensors does not fit the model in config.json"):
        ragedu.load(saved)


def test_a_vocabulary_of_another_size_is_refused(saved):
    config = json.loads((saved / "config.json").read_text())
    config["encoder"]["vocab_size"] += 1
    (saved / "config.json").write_text(json.dumps(config))
    write_manifest(saved)
    with pytest.raises(ValueError, match="tokenizer.json has .* tokens but config.json says the encoder"):
        ragedu.load(saved)


def test_an_index_of_another_corpus_is_refused(saved, tmp_path):
    lines = (saved / "corpus.jsonl").read_text().splitlines()
    (saved / "corpus.jsonl").write_text("\n".join(lines[:-1]) + "\n")
    write_manifest(saved)
    with pytest.raises(ValueError, match="not the corpus this model's index was built from"):
        ragedu.load(saved)


def test_saving_over_a_model_replaces_it_whole(toy_rag, toy_tokenizer, saved):
    small = dict(vocab_size=len(toy_tokenizer), dim=32, layers=1, heads=2)
    (saved / "stray.txt").write_text("from before")
    save(toy_rag, saved, EncoderConfig(**small), GeneratorConfig(**small))
    assert not (saved / "stray.txt").exists() and (saved / "config.json").exists()
    assert not any(p.name.startswith(".model") for p in saved.parent.iterdir())
