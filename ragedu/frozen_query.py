"""Frozen versus fine-tuned query encoder on the end task, the paper's Table 6 analogue, measured on our model.   (notebook 5)

The paper's ablation (Lewis et al. 2020, Table 6, "Learned retrieval"): RAG with its query encoder q(x) frozen at
DPR's weights beside RAG with q(x) fine-tuned; learned retrieval improved the results on the tasks it reports.
Ours: the same recipe twice, once as shipped and once with `TrainConfig(freeze_query_encoder=True)`, which trains
only the generator in stage 3 (stages 0-2 are the same, the recipe being deterministic). Both are evaluated on the
test split with K = 5 and greedy QA, as `ragedu eval` does:

    python -m ragedu.frozen_query --out data/results/frozen_query.json      # trains the frozen variant, then compares

Training goes to --model-dir (default /tmp/ragedu-frozen-q) through a resumable work directory (--work-dir):
a run stopped half-way continues where it stopped. With --model-dir an existing model directory, it only evaluates.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from ragedu.corpus import DATA_DIR
from ragedu.evaluate import claim_figures, qa_figures
from ragedu.manifest import manifest_digest
from ragedu.model import RagModel
from ragedu.phrasings import held_out_examples
from ragedu.tasks import load_task

RESULTS = DATA_DIR / "results" / "frozen_query.json"


def end_task(model: RagModel, split: str = "test", k: int = 5, limit: int | None = None, batch_size: int = 64) -> dict:
    """recall@5, greedy QA exact match per variant and claim accuracy, on the task files' and held-out phrasings."""
    figures = {}
    for name, qa, claims in (("task_file", load_task("qa", split)[:limit], load_task("claims", split)[:limit]),
                             ("held_out", held_out_examples("qa", split)[:limit],
                              held_out_examples("claims", split)[:limit])):
        ours = qa_figures(model, None, qa, k, batch_size, progress=False)
        figures[name] = {"retrieval_recall_at_5": ours["recall_at_5"], "qa_exact_match": ours["exact_match"],
                         "claim_accuracy": claim_figures(model, claims, k, batch_size, progress=False),
                         "questions": len(qa), "claims": len(claims)}
    return figures


def main(argv: list[str] | None = None) -> int:
    from ragedu.pretrained import DEFAULT_MODEL_DIR, load
    from ragedu.train import TrainConfig, train

    parser = argparse.ArgumentParser(prog="python -m ragedu.frozen_query", description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", default="/tmp/ragedu-frozen-q",
                        help="the frozen-q(x) model (trained if absent)")
    parser.add_argument("--work-dir", help="its checkpoints (default: MODEL_DIR.work); run again to resume")
    parser.add_argument("--shipped", default=str(DEFAULT_MODEL_DIR), help="the fine-tuned model to compare with")
    parser.add_argument("--split", default="test", choices=("dev", "test"))
    parser.add_argument("--limit", type=int, default=None, help="only the first LIMIT examples of each set")
    parser.add_argument("--out", help="write the JSON to this file too")
    args = parser.parse_args(argv)
    frozen_dir = Path(args.model_dir)
    if not (frozen_dir / "manifest.json").exists():
        t = time.time()
        train(frozen_dir, TrainConfig(freeze_query_encoder=True), work_dir=args.work_dir)
        print(f"trained the frozen-q(x) variant in {time.time() - t:.0f} s", file=sys.stderr)
    figures = {"split": args.split, "k": 5}
    for name, path in (("fine_tuned", args.shipped), ("frozen", frozen_dir)):
        figures[name] = {"manifest_sha256": manifest_digest(path), **end_task(load(path), args.split, limit=args.limit)}
    text = json.dumps(figures, indent=1)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
