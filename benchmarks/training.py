"""Wall time of the full training recipe on this machine, per stage and in total.

    python benchmarks/training.py [--json] [--out DIR]

Trains from scratch into a temporary directory (or --out) with the default TrainConfig and prints seconds per
stage; the goal is the whole recipe in under 15 minutes on 2 cores.
"""
import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "ACTIVE")  # as `ragedu train` runs (see ragedu/cli.py)
import torch  # noqa: E402

from ragedu.train import TrainConfig, train  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--out", help="keep the trained model here (default: a temporary directory)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out) if args.out else Path(tmp) / "model"
        t = time.perf_counter()
        seconds = train(out, TrainConfig(), progress=not args.json)
        wall = time.perf_counter() - t
    figures = {"threads": torch.get_num_threads(), "seconds_per_stage": {s: round(v, 1) for s, v in seconds.items()},
               "wall_seconds": round(wall, 1), "under_15_minutes": wall < 15 * 60}
    print(json.dumps(figures) if args.json else json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
