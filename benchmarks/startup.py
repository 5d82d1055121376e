"""How long a student waits: loading the default model and answering, cold and warm.

    python benchmarks/startup.py [--json] [--cold-runs N]

Cold: a fresh Python process imports ragedu, loads data/model and answers one question with both variants
(what `ragedu ask` does), N times; the median is reported, with the fastest run and each phase.
Warm: the next questions in the same process, each answered with both variants.
CPU seconds (user + system) are printed beside wall seconds: on a shared machine the wall time grows with
the other processes' load, the CPU time much less. The load average before and after says how shared it was.
The import phase is what torch and transformers cost; `python -X importtime -c "import ragedu"` breaks it down.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

COLD = """
import json, resource, time
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
t0 = time.perf_counter()
import ragedu
from ragedu.cli import answer
t_import, c_import = time.perf_counter(), cpu()
model = ragedu.load_default()
t1, c1 = time.perf_counter(), cpu()
answer(model, "What is the capital of Kenya?", ("sequence", "token"), 5, 1, "thorough")
t2, c2 = time.perf_counter(), cpu()
print(json.dumps({"import": t_import - t0, "load": t1 - t0, "total": t2 - t0,
                  "import_cpu": c_import, "load_cpu": c1, "total_cpu": c2}))
"""


def cold_run() -> dict:
    out = subprocess.run([sys.executable, "-c", COLD], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--cold-runs", type=int, default=3, help="fresh processes to time (median reported)")
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    runs = [cold_run() for _ in range(args.cold_runs)]
    cold = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
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
        "cold_first_answer_seconds_fastest": round(min(r["total"] for r in runs), 3),
        "cold_import_seconds": round(cold["import"], 3),
        "cold_import_cpu_seconds": round(cold["import_cpu"], 3),
        "cold_first_answer_cpu_seconds": round(cold["total_cpu"], 3),
        "cold_runs": len(runs),
        "warm_answer_seconds_median": round(sorted(times)[len(times) // 2], 4),
        "warm_answer_seconds_max": round(max(times), 4),
        "warm_questions": len(times),
        "load_average_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }
    print(json.dumps(figures) if args.json else "\n".join(f"{k:32s} {v}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
