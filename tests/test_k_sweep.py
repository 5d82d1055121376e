"""ragedu.k_sweep: the paper's Figure 3 on our model, and the saved sweep notebook 7 draws."""
import json

import pytest
import torch

from ragedu.corpus import DATA_DIR
from ragedu.decoding import GREEDY, decode
from ragedu.evaluate import exact_match
from ragedu.k_sweep import RESULTS, k_sweep, load_k_sweep
from ragedu.manifest import manifest_digest
from ragedu.pretrained import DEFAULT_MODEL_DIR
from ragedu.tasks import Example


def toy_questions(n=6):
    return [Example(f"qa-toy-{i}", "qa", "city_country", f"Which country is Town {i} in?", f"Land {i % 7}",
                    f"L{i % 7}", (f"town-{i}",), {}) for i in range(n)]


def test_each_k_reads_the_first_k_of_one_search_and_recall_grows_with_k(toy_rag, one_thread):
    qa = toy_questions()
    sweep = k_sweep(toy_rag, qa, ks=[5, 1, 3], batch_size=4)
    assert sweep.ks == [1, 3, 5] and sweep.questions == len(qa)
    assert sweep.recall == sorted(sweep.recall)                      # the top-K are nested: recall never falls
    with torch.no_grad():                                             # K = 3 from a search of its own
        for variant in ("sequence", "token"):
            answers = decode(toy_rag, [e.question for e in qa], variant, 3, settings=GREEDY).answers
            mine = sum(exact_match(a, e.answer) for a, e in zip(answers, qa)) / len(qa)
            assert sweep.exact_match[variant][1] == pytest.approx(mine, abs=1e-4)
        hits = [e.gold_ids[0] in ids for e, ids in zip(qa, toy_rag.retriever.retrieve([e.question for e in qa], 3).ids)]
    assert sweep.recall[1] == pytest.approx(sum(hits) / len(qa), abs=1e-4)


def test_the_saved_sweep_belongs_to_the_shipped_model():
    sweep = load_k_sweep(RESULTS)
    assert sweep.manifest_sha256 == manifest_digest(DEFAULT_MODEL_DIR), (
        "data/results/k_sweep.json was computed on another model; rerun "
        "`python -m ragedu.k_sweep --limit 64 --json --out data/results/k_sweep.json`")
    assert sweep.ks == sorted(sweep.ks) and sweep.recall == sorted(sweep.recall)
    assert all(len(v) == len(sweep.ks) for v in sweep.exact_match.values())
    assert RESULTS.parent == DATA_DIR / "results" and json.loads(RESULTS.read_text())["split"] == "test"
