"""How fast the explorer redraws, driving the widget's own callbacks as a user would (no browser, no kernel).

For each question, from the default settings (K = 5, RAG-Token heatmap, thorough, beam 4), the script sets
the controls' values one at a time, each to a value not yet seen for that question (so no cache helps it),
and times the callback: compute, HTML and the heatmap PNG.
    new_question     type a question and press Enter          (goal < 1.5 s)
    change_k         move the K slider, three times          (goal < 0.3 s)
    change_variant   RAG-Token <-> RAG-Sequence heatmap       (goal < 0.3 s)
    change_mode      thorough <-> fast                        (goal < 0.3 s)
    change_beams     the beam size slider                     (goal < 0.3 s)
The first question only warms up (model load, fonts, first figure) and is not timed. Each action is timed in
wall seconds (median, max) and in CPU seconds of this process (cpu_median, cpu_max): on a machine busy with
other work the wall time grows, while the CPU time of a one-thread run stays close to an idle machine's wall.

    python benchmarks/explorer.py            human-readable
    python benchmarks/explorer.py --json     one JSON object
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

import ragedu
from ragedu.widgets import Explorer

QUESTIONS = [
    "What is the capital of Austria?",
    "What is the currency of Japan?",
    "On which continent is Peru?",
    "Which city is the capital of Kenya?",
    "What is the currency of Norway?",
    "On which continent is Laos?",
    "What is the capital of Chile?",
]
DEFAULTS = dict(k=5, variant="token", mode="thorough", num_beams=4)
GOALS = {"new_question": 1.5, "change_k": 0.3, "change_variant": 0.3, "change_mode": 0.3, "change_beams": 0.3}


def set_value(control, value) -> tuple[float, float]:
    """Set a control as a user would; the widget's callback runs before this returns    -> (wall, cpu) seconds"""
    wall, cpu = time.perf_counter(), time.process_time()
    control.value = value
    return time.perf_counter() - wall, time.process_time() - cpu


def measure(explorer: Explorer, questions: list[str], k_max: int) -> dict[str, list[tuple[float, float]]]:
    times = {name: [] for name in GOALS}
    beam_sizes = [2, 3, 1, 5]
    for i, question in enumerate(questions):
        for name, value in DEFAULTS.items():                  # back to the defaults, untimed
            getattr(explorer, name).value = value
        times["new_question"].append(set_value(explorer.question, question))
        for k in (3, k_max, 1):
            times["change_k"].append(set_value(explorer.k, k))
        times["change_variant"].append(set_value(explorer.variant, "sequence"))
        times["change_mode"].append(set_value(explorer.mode, "fast"))
        times["change_beams"].append(set_value(explorer.num_beams, beam_sizes[i % len(beam_sizes)]))
        assert explorer.view.message is None, explorer.view.message
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2: the goal's 2 cores)")
    parser.add_argument("--k-max", type=int, default=10, help="passages retrieved once per question")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    explorer = Explorer(ragedu.load_default(), QUESTIONS[0], k_max=args.k_max, **DEFAULTS)  # warm-up
    times = measure(explorer, QUESTIONS[1:], args.k_max)
    summary = {}
    for name, t in times.items():
        wall, cpu = [w for w, _ in t], [c for _, c in t]
        summary[name] = {"median": round(statistics.median(wall), 3), "max": round(max(wall), 3),
                         "cpu_median": round(statistics.median(cpu), 3), "cpu_max": round(max(cpu), 3),
                         "n": len(t), "goal": GOALS[name], "median_meets_goal": statistics.median(wall) < GOALS[name]}
    result = {"threads": torch.get_num_threads(), "k_max": args.k_max, "questions": len(QUESTIONS) - 1,
              "seconds": summary}
    if args.json:
        print(json.dumps(result))
        return
    print(f"Explorer redraw times over {result['questions']} questions, {result['threads']} torch thread(s), "
          f"K_max {args.k_max}, beam 4 unless changed")
    for name, s in summary.items():
        print(f"  {name:<15} median {s['median']:.3f}s  max {s['max']:.3f}s  (cpu {s['cpu_median']:.3f}s / "
              f"{s['cpu_max']:.3f}s; n={s['n']}, goal < {s['goal']} s){'' if s['median_meets_goal'] else '  MISSED'}")


if __name__ == "__main__":
    main()
