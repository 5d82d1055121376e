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


def projector_problems(fig) -> list[str]:
    """What would not read from the back row: a figure wider than 10 inches, text under 12 pt (ragedu.viz)."""
    from matplotlib.text import Text

    from ragedu.viz import MIN_FONT_SIZE

    problems = [f"{fig.get_figwidth():.1f} inches wide"] if fig.get_figwidth() > 10 else []
    fig.canvas.draw()
    for text in fig.findobj(Text):
        if text.get_visible() and text.get_text().strip() and text.get_fontsize() < MIN_FONT_SIZE:
            problems.append(f"{text.get_text()[:30]!r} at {text.get_fontsize():.0f} pt")
    return problems


@pytest.fixture(autouse=True)
def views_read_from_the_back_row(request, monkeypatch):
    """Every figure a view test draws (tests/test_viz*.py) is checked by `projector_problems` before it closes."""
    if not request.module.__name__.rsplit(".", 1)[-1].startswith("test_viz"):
        yield
        return
    import matplotlib.pyplot as plt

    close = plt.close

    def checked_close(fig=None):
        for f in [fig] if fig is not None and not isinstance(fig, str) else map(plt.figure, plt.get_fignums()):
            assert not projector_problems(f), projector_problems(f)
        close(fig)
    monkeypatch.setattr(plt, "close", checked_close)
    yield
    for number in plt.get_fignums():
        assert not projector_problems(plt.figure(number)), projector_problems(plt.figure(number))
