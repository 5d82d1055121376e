"""How long a student waits: loading the default model and answering, cold and warm.

    python benchmarks/startup.py [--json]

Cold: a fresh Python process imports ragedu, loads data/model and answers one question with both variants
(what `ragedu ask` does). Warm: the next questions in the same process, each answered with both variants.
"""
import argparse
import json
import subprocess
import sys
import time

COLD = """
import time, json
t0 = time.perf_counter()
import ragedu
from ragedu.cli import answer
model = ragedu.load_default()
t1 = time.perf_counter()
answer(model, "What is the capital of Kenya?", ("sequence", "token"), 5, 1, "thorough")
t2 = time.perf_counter()
print(json.dumps({"load": t1 - t0, "total": t2 - t0}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    cold = json.loads(subprocess.run([sys.executable, "-c", COLD], capture_output=True, text=True,
                                     check=True).stdout.strip().splitlines()[-1])
    import ragedu
    from ragedu.cli import answer
    from ragedu.tasks import load_task

    model = ragedu.load_default()
    questions = [e.question for e in load_task("qa", "test")[:20]]
    answer(model, questions[0], ("sequence", "token"), 5, 1, "thorough")  # first call warms up
    times = []
    for q in questions[1:]:
        t = time.perf_counter()
        answer(model, q, ("sequence", "token"), 5, 1, "thorough")
        times.append(time.perf_counter() - t)
    figures = {
        "cold_import_and_load_seconds": round(cold["load"], 3),
        "cold_first_answer_seconds": round(cold["total"], 3),
        "warm_answer_seconds_median": round(sorted(times)[len(times) // 2], 4),
        "warm_answer_seconds_max": round(max(times), 4),
        "warm_questions": len(times),
    }
    print(json.dumps(figures) if args.json else "\n".join(f"{k:32s} {v}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
