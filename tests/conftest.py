"""Shared toy fixtures: a synthetic corpus of 60 passages and a tiny untrained RAG over it (seconds to build)."""
import pytest
import torch

from ragedu.corpus import Corpus, Passage
from ragedu.generator import GeneratorConfig
from ragedu.model import new_rag_model
from ragedu.retriever import EncoderConfig
from ragedu.tokenizer import train_tokenizer


@pytest.fixture(scope="session")
def toy_corpus():
    return Corpus([
        Passage(f"town-{i}", f"Town {i}", f"Town {i} is a city in Land {i % 7}. It has a population of {1000 + 37 * i:,}.")
        for i in range(60)
    ])


@pytest.fixture(scope="session")
def toy_tokenizer(toy_corpus):
    texts = [p.title + " / " + p.text for p in toy_corpus] + ["Which country is it in? What is the population?"] + ["supports refutes"] * 20
    return train_tokenizer(texts, vocab_size=400)


@pytest.fixture(scope="session")
def toy_rag(toy_corpus, toy_tokenizer):
    small = dict(vocab_size=len(toy_tokenizer), dim=32, layers=1, heads=2)
    model = new_rag_model(toy_corpus, toy_tokenizer, EncoderConfig(**small), GeneratorConfig(**small), progress=False)
    return model.eval()  # no dropout: the tests compare numbers


@pytest.fixture(scope="session")
def toy_model_dir(toy_rag, toy_tokenizer, tmp_path_factory):
    """The toy RAG saved as a model directory, for the command line and loading tests."""
    from ragedu.pretrained import save

    small = dict(vocab_size=len(toy_tokenizer), dim=32, layers=1, heads=2)
    return save(toy_rag, tmp_path_factory.mktemp("toy") / "model", EncoderConfig(**small), GeneratorConfig(**small))


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models gain nothing from threads, and on a busy CPU extra threads spin: 3 s become a minute."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
