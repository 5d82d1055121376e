"""TrainConfig.freeze_query_encoder, the paper's Table 6 ablation: stage 3 moves the generator only."""
import json

import torch

import ragedu
from ragedu.corpus import Corpus, load_corpus
from ragedu.frozen_query import RESULTS
from ragedu.manifest import manifest_digest
from ragedu.pretrained import DEFAULT_MODEL_DIR
from ragedu.tasks import load_task
from ragedu.train import StageConfig, TrainConfig, train


def tiny(**changes) -> TrainConfig:
    stage = lambda: StageConfig(steps=3, batch=4, lr=1e-2)  # noqa: E731
    return TrainConfig(vocab_size=600, dim=32, layers=1, heads=2, denoise=stage(), retriever=stage(), reader=stage(),
                       rag=stage(), closed_book=stage(), checkpoint_every=2, **changes)


def test_a_frozen_query_encoder_stays_the_stage_1_encoder_and_a_fine_tuned_one_moves(tmp_path, one_thread):
    keep = Corpus(load_corpus().passages[:120])
    examples = {t: [e for e in load_task(t, "train") if all(g in keep for g in e.gold_ids)][:30]
                for t in ("qa", "claims", "clues")}
    moved = {}
    for frozen in (True, False):
        out = tmp_path / f"frozen-{frozen}"
        train(out, tiny(freeze_query_encoder=frozen), corpus=keep, examples=examples, progress=False)
        model = ragedu.load(out)
        query, doc = model.retriever.query_encoder.state_dict(), model.retriever.doc_encoder.state_dict()
        moved[frozen] = [n for n in query if not torch.equal(query[n], doc[n])]
        assert json.loads((out / "train_config.json").read_text())["freeze_query_encoder"] is frozen
    assert moved[True] == [] and moved[False]



def test_the_saved_comparison_belongs_to_the_shipped_model():
    figures = json.loads(RESULTS.read_text())
    assert figures["fine_tuned"]["manifest_sha256"] == manifest_digest(DEFAULT_MODEL_DIR), (
        "data/results/frozen_query.json was measured on another model; rerun "
        "`python -m ragedu.frozen_query --out data/results/frozen_query.json`")
    assert figures["frozen"]["manifest_sha256"] != figures["fine_tuned"]["manifest_sha256"]
    for name in ("fine_tuned", "frozen"):
        for part in ("task_file", "held_out"):
            f = figures[name][part]
            assert set(f["qa_exact_match"]) == {"sequence", "token"} and f["questions"] > 0
            assert f["claim_accuracy"]["sequence"] == f["claim_accuracy"]["token"]   # one-token labels
