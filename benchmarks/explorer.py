"""How fast the explorer redraws, driving the widget's own callbacks as a user would (no browser, no kernel).

For each question, from the default settings (K = 5, RAG-Token's answer explained, thorough, beam 4), the
script sets the controls' values one at a time, each to a value not yet seen for that question (so no cache
helps it), and times the callback: compute, HTML, the posterior figure and the matrix PNGs.
    new_question     type a question and press Enter            (goal: median ≤ 1.5 s, max ≤ 3 s)
    change_k         move the K slider, three times, and once more after the beam size changed at K = 5 (then
                     K = K_max outgrows the new beam size's search: the costliest K change)
                                                                (goal: median ≤ 0.3 s, max ≤ 0.6 s)
    change_variant   whose answer the posteriors explain        (same)
    change_mode      RAG-Sequence thorough <-> fast             (same)
    change_beams     the beam size slider, at the default K = 5 (same)
    try_this         pick each "try this" input (a new question and settings: the new-question goal)
It runs twice, each time with a fresh explorer (nothing cached) warmed up on a first question that is not
timed: "idle" as the machine is, and "busy" with a busy-loop process of its own holding one core, the goal's
condition (a laptop with another program running). `seconds` holds the busy run, `seconds_idle` the other.
Each action is timed in wall seconds (median, max) and in CPU seconds of this process (cpu_median, cpu_max);
the load average before each run says how busy the machine already was.

    python benchmarks/explorer.py                human-readable
    python benchmarks/explorer.py --json         one JSON object
    python benchmarks/explorer.py --threads 2    torch threads inside the explorer (default 1, its choice)
    python benchmarks/explorer.py --breakdown    what the costliest K change pays, part by part (idle, 3 rounds)
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import ragedu
from ragedu.explorer import torch_threads
from ragedu.try_this import load_try_this
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
GOALS = {"new_question": (1.5, 3.0), "change_k": (0.3, 0.6), "change_variant": (0.3, 0.6),
         "change_mode": (0.3, 0.6), "change_beams": (0.3, 0.6), "try_this": (1.5, 3.0)}   # (median, max) seconds


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
        explorer.k.value = DEFAULTS["k"]                      # back to the default K (cached, untimed)
        times["change_variant"].append(set_value(explorer.variant, "sequence"))
        times["change_mode"].append(set_value(explorer.mode, "fast"))
        times["change_beams"].append(set_value(explorer.num_beams, beam_sizes[i % len(beam_sizes)]))
        times["change_k"].append(set_value(explorer.k, k_max))   # K outgrows the new beam size's search
        assert explorer.view.message is None, explorer.view.message
    for i in range(len(explorer.entries)):
        times["try_this"].append(set_value(explorer.try_this, i))
    return times


def run(model, threads: int, k_max: int) -> dict:
    """One fresh explorer, warmed up on the first question, timed on the others    -> action -> figures"""
    load = os.getloadavg()[0]
    explorer = Explorer(model, QUESTIONS[0], k_max=k_max, threads=threads, **DEFAULTS)  # warm-up, untimed
    times = measure(explorer, QUESTIONS[1:], k_max)
    summary = {}
    for name, t in times.items():
        wall, cpu = [w for w, _ in t], [c for _, c in t]
        median_goal, max_goal = GOALS[name]
        summary[name] = {"median": round(statistics.median(wall), 3), "max": round(max(wall), 3),
                         "cpu_median": round(statistics.median(cpu), 3), "cpu_max": round(max(cpu), 3),
                         "n": len(t), "goal_median": median_goal, "goal_max": max_goal,
                         "meets_goal": statistics.median(wall) <= median_goal and max(wall) <= max_goal}
    return {"load_average_before": round(load, 2), "seconds": summary}


BREAKDOWN = dict(question=QUESTIONS[4], num_beams=5, rounds=3)   # the costliest K change: beam 5, then K_max


def breakdown(model, threads: int, k_max: int, question: str, num_beams: int, rounds: int) -> dict[str, float]:
    """The parts of the costliest K change (K = 5 -> K_max right after a beam change), each the median over
    `rounds` fresh explorer states, timed through ExplorerState's own steps in the order the callback runs them."""
    from ragedu.explorer import ExplorerState
    from ragedu.viz_explorer import figure2_html, matrix_html
    from ragedu.widgets import MATRIX_ROWS

    parts: dict[str, list[float]] = {"grow RAG-Sequence's matrix to K_max": []}   # its parts print under it

    def timed(name, step):
        start = time.perf_counter()
        result = step()
        parts.setdefault(name, []).append(time.perf_counter() - start)
        return result

    import ragedu.explorer as explorer

    def inside(name, label):
        """Time each call of explorer.<name> while the grow runs, as its own line under `label`."""
        function = getattr(explorer, name)

        def timed_call(*args, **kwargs):
            return timed(label, lambda: function(*args, **kwargs))
        return function, timed_call

    searched, rescored = inside("search_each_passage", "  of which the five beam searches"), \
        inside("rescore", "  of which the rescoring pass")
    for _ in range(rounds):
        state = ExplorerState(model, k_max=k_max, threads=threads)
        state.view(question, 5, "sequence", "fast", DEFAULTS["num_beams"])   # the question's first search
        state.view(question, 5, "sequence", "fast", num_beams)               # the beam change: K = 5 searched
        with torch_threads(threads):
            explorer.search_each_passage, explorer.rescore = searched[1], rescored[1]
            try:
                timed("grow RAG-Sequence's matrix to K_max", lambda: state.sequence_trace(question, num_beams, k_max))
            finally:
                explorer.search_each_passage, explorer.rescore = searched[0], rescored[0]
            timed("RAG-Token beam search at K_max", lambda: state.token_answer(question, k_max, num_beams))
        view = timed("both posteriors and the view", lambda: state.view(question, k_max, "sequence", "fast",
                                                                          num_beams))
        timed("Figure 2 and the matrix as HTML", lambda: (
            figure2_html(view.p_z, view.posteriors, view.tokens, view.titles, view.texts, view.variant),
            matrix_html(view.matrix, view.titles, view.matrix.best_of_both(MATRIX_ROWS))))
    return {name: round(statistics.median(t), 3) for name, t in parts.items()}


def busy_loop() -> subprocess.Popen:
    """Another program holding one core, as on a laptop doing something else."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--threads", type=int, default=1, help="torch threads while the explorer computes")
    parser.add_argument("--k-max", type=int, default=10, help="passages retrieved once per question")
    parser.add_argument("--breakdown", action="store_true", help="only the parts of the costliest K change")
    args = parser.parse_args()
    model = ragedu.load_default()
    if args.breakdown:
        parts = breakdown(model, args.threads, args.k_max, **BREAKDOWN)
        if args.json:
            print(json.dumps({**BREAKDOWN, "k_max": args.k_max, "seconds": parts}))
        else:
            print(f"The costliest K change, 5 -> {args.k_max} right after the beam size became "
                  f"{BREAKDOWN['num_beams']}, on {BREAKDOWN['question']!r} ({args.threads} torch thread(s), "
                  f"median of {BREAKDOWN['rounds']} fresh explorers):")
            for name, seconds in parts.items():
                print(f"  {name:<40} {seconds:.3f}s")
        return
    idle = run(model, args.threads, args.k_max)
    other = busy_loop()
    try:
        time.sleep(1)                                       # let it take its core
        busy = run(model, args.threads, args.k_max)
    finally:
        other.kill()
        other.wait()
    result = {"threads": args.threads, "k_max": args.k_max, "questions": len(QUESTIONS) - 1,
              "try_this": len(load_try_this()), "cpu_count": os.cpu_count(),
              "load_average_before": {"idle": idle["load_average_before"], "busy": busy["load_average_before"]},
              "seconds": busy["seconds"], "seconds_idle": idle["seconds"]}
    if args.json:
        print(json.dumps(result))
        return
    print(f"Explorer redraw times over {result['questions']} questions and {result['try_this']} 'try this' inputs, "
          f"{args.threads} torch thread(s), K_max {args.k_max}, beam 4 unless changed, {os.cpu_count()} cores")
    for label, part in (("idle", idle), ("busy (a busy loop holds one core)", busy)):
        print(f" {label}, load average {part['load_average_before']} before:")
        for name, s in part["seconds"].items():
            print(f"  {name:<15} median {s['median']:.3f}s  max {s['max']:.3f}s  (cpu {s['cpu_median']:.3f}s / "
                  f"{s['cpu_max']:.3f}s; n={s['n']}, goal ≤ {s['goal_median']} / {s['goal_max']} s)"
                  f"{'' if s['meets_goal'] else '  MISSED'}")


if __name__ == "__main__":
    main()
