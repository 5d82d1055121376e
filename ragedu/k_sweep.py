"""Effect of K at test time, the paper's Figure 3: exact match and recall@K against K.   (notebook 7)

Dims: B questions · K passages kept at test time · C values of K tried

The paper (Lewis et al. 2020, §4.5 "Retrieving more documents", Figure 3) retrieves K = 1…50 passages at test
time: RAG-Sequence's exact match keeps improving with more passages, RAG-Token's peaks around K = 10.
Here each question is encoded and searched once with the largest K; every smaller K reads the first K of those
passages with p(z|x) renormalised over them (`Retrieved.top`), exactly as `retrieve(questions, K)` would.
QA is decoded greedily, as the paper decodes QA (RAG-Sequence thorough).

    python -m ragedu.k_sweep --json --out data/results/k_sweep.json     # the file notebook 7 draws

The file records the SHA-256 of the model's manifest.json, so a test can say when the model changed under it.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ragedu.corpus import DATA_DIR
from ragedu.decoding import GREEDY, decode
from ragedu.evaluate import batches, exact_match, mean
from ragedu.manifest import manifest_digest
from ragedu.marginalize import VARIANTS
from ragedu.model import RagModel
from ragedu.tasks import Example, load_task

PAPER_KS = (1, 2, 3, 5, 10, 20, 30, 50)
RESULTS = DATA_DIR / "results" / "k_sweep.json"


@dataclass
class KSweep:
    """Exact match and recall@K for each K, as the paper's Figure 3 plots them."""

    ks: list[int]                        # C values of K, increasing
    exact_match: dict[str, list[float]]  # variant -> C shares of questions answered exactly
    recall: list[float]                  # C shares of questions whose gold passage is in the top K
    questions: int                       # B, the first B QA questions of the split
    split: str
    manifest_sha256: str                 # of the model's manifest.json: the model these numbers came from

    def to_json(self) -> dict:
        return asdict(self)


@torch.no_grad()
def k_sweep(model: RagModel, qa: list[Example], ks=PAPER_KS, split: str = "test", batch_size: int = 32,
            manifest_sha256: str = "", progress: bool = False) -> KSweep:
    """Greedy QA exact match of both variants and recall@K of the gold passage, for every K in `ks`."""
    ks = sorted(set(int(k) for k in ks))
    correct = {v: {k: [] for k in ks} for v in VARIANTS}
    hits = {k: [] for k in ks}
    model.eval()
    for batch in batches(qa, batch_size, "K sweep", progress):
        questions = [e.question for e in batch]
        widest = model.retriever.retrieve(questions, max(ks))          # (B, K_max): one search for every K
        for k in ks:
            retrieved = widest.top(k)                                  # (B, K), p(z|x) renormalised
            hits[k] += [e.gold_ids[0] in ids for e, ids in zip(batch, retrieved.ids)]
            for variant in VARIANTS:
                answers = decode(model, questions, variant, k, retrieved=retrieved, settings=GREEDY).answers
                correct[variant][k] += [exact_match(a, e.answer) for a, e in zip(answers, batch)]
    return KSweep(ks, {v: [mean(correct[v][k]) for k in ks] for v in VARIANTS}, [mean(hits[k]) for k in ks],
                  len(qa), split, manifest_sha256)


def load_k_sweep(path: str | Path = RESULTS) -> KSweep:
    """A sweep saved by `python -m ragedu.k_sweep --out PATH`."""
    return KSweep(**json.loads(Path(path).read_text()))


def main(argv: list[str] | None = None) -> int:
    from ragedu.pretrained import DEFAULT_MODEL_DIR, load

    parser = argparse.ArgumentParser(prog="python -m ragedu.k_sweep", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(DEFAULT_MODEL_DIR), help="a model directory (default: the shipped one)")
    parser.add_argument("--split", default="test", choices=("dev", "test"))
    parser.add_argument("--ks", default=",".join(map(str, PAPER_KS)), help="comma-separated values of K")
    parser.add_argument("--limit", type=int, default=None, help="only the first LIMIT QA questions")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--out", help="also write the JSON to this file")
    args = parser.parse_args(argv)
    ks = [int(k) for k in args.ks.split(",")]
    model = load(args.model)
    start = time.time()
    sweep = k_sweep(model, load_task("qa", args.split)[:args.limit], ks, args.split,
                    manifest_sha256=manifest_digest(args.model), progress=True)
    figures = sweep.to_json()
    text = json.dumps(figures, indent=1)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    if args.json:
        print(text)
    else:
        for i, k in enumerate(sweep.ks):
            print(f"K = {k:>2}: recall@K {sweep.recall[i]:.3f}  exact match "
                  + "  ".join(f"{v} {sweep.exact_match[v][i]:.3f}" for v in VARIANTS))
    print(f"{sweep.questions} questions in {time.time() - start:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
