"""Exercises a student solves: `check("3.1", answer, ...)` in a cell; solutions on request.   (notebooks 1–7, 9)

In a notebook:

    from ragedu.exercises import check
    answer = ...                       # the stub: replace it with your answer
    check("3.1", answer, log_p_z=log_p_z, log_p_yi=log_p_yi)

prints one sentence (right and why it matters, or what is wrong and a hint) and returns a Verdict, truthy when
right. An untouched stub (`...` or None) never raises: it says the exercise is not answered yet, so the
notebooks run top to bottom as shipped.

    python -m ragedu.exercises --list            every exercise: id, kind, what it asks
    python -m ragedu.exercises --solution 3.1    a solution's source (or show_solution("3.1") in a cell)
    python -m ragedu.exercises --json            each exercise checked on its own example inputs:
                                                 [{"id", "notebook", "kind", "solution_passes", "wrong_answer_fails"}]
"""
from __future__ import annotations

import argparse
import inspect
import json
import sys
from typing import Any

from ragedu.errors import RagEduError
from ragedu.exercise_kit import KINDS, Exercise, Verdict, Verdicts, call_with, is_stub
from ragedu.exercises_decoding import EXERCISES as DECODING
from ragedu.exercises_results import EXERCISES as RESULTS
from ragedu.exercises_scoring import EXERCISES as SCORING

EXERCISES: dict[str, Exercise] = {e.id: e for e in sorted(SCORING + DECODING + RESULTS,
                                                           key=lambda e: tuple(map(int, e.id.split("."))))}
assert len(EXERCISES) == len(SCORING + DECODING + RESULTS), "two exercises share an id"
assert all(e.kind in KINDS for e in EXERCISES.values())


def exercise(id: str) -> Exercise:
    if id not in EXERCISES:
        raise RagEduError(f"no exercise {id!r}; the exercises are {', '.join(EXERCISES)}")
    return EXERCISES[id]


def inputs(ex: Exercise) -> list[inspect.Parameter]:
    """The notebook inputs a checker takes: its parameters after (verdicts, answer)."""
    return list(inspect.signature(ex.checker).parameters.values())[2:]


def verdict(id: str, answer: Any, **given) -> Verdict:
    """The checker's verdict on `answer`, printed by nobody (check prints it)."""
    ex = exercise(id)
    names = [p.name for p in inputs(ex)]
    unknown = sorted(set(given) - set(names))
    missing = [p.name for p in inputs(ex) if p.default is p.empty and p.name not in given]
    if unknown or (missing and (given or not is_stub(answer))):  # the notebook's mistake, not the student's
        raise RagEduError(f"check({id!r}, answer, ...) takes the notebook's {', '.join(names) or 'nothing'} as "
                          f"keywords; " + (f"{', '.join(missing)} missing" if missing else f"not {', '.join(unknown)}"))
    if is_stub(answer):
        return Verdict(id, "unanswered", f"replace the `...` with your answer ({ex.summary}), then run the cell "
                       f"again; stuck? `python -m ragedu.exercises --solution {id}`", ex.hint)
    try:
        return ex.checker(Verdicts(ex), answer, **given)
    except Exception as error:  # a student's answer of an unexpected type: say so, don't crash the notebook
        return Verdicts(ex).wrong(f"the checker could not read your answer ({type(error).__name__}: {error})")


def check(id: str, answer: Any, **given) -> Verdict:
    """Check a student's answer to exercise `id` against the notebook's inputs `given`; print and return the verdict."""
    result = verdict(id, answer, **given)
    print(result)
    return result


def solution_source(id: str) -> str:
    """The source of exercise `id`'s solution in ragedu.solutions."""
    return inspect.getsource(exercise(id).solution)


def show_solution(id: str) -> None:
    print(solution_source(id))


def self_check(ex: Exercise) -> dict:
    """Run an exercise's checker on its solution and its typical wrong answers, on its example inputs."""
    example = ex.example()
    given = {p.name: example[p.name] for p in inputs(ex) if p.name in example}   # what a notebook would pass
    solution_passes = bool(verdict(ex.id, call_with(ex.solution, example), **given))
    wrongs = [verdict(ex.id, call_with(w, example), **given) for w in ex.wrong]
    return {"id": ex.id, "notebook": ex.notebook, "kind": ex.kind, "solution_passes": solution_passes,
            "wrong_answer_fails": bool(wrongs) and not any(wrongs)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ragedu.exercises", description="The course's exercises.")
    parser.add_argument("--json", action="store_true", help="check every checker on its solution and wrong answers")
    parser.add_argument("--solution", metavar="ID", help="print the solution of exercise ID, e.g. 3.1")
    parser.add_argument("--list", action="store_true", help="list the exercises")
    args = parser.parse_args(argv)
    try:
        if args.solution:
            print(solution_source(args.solution))
        elif args.json:
            import torch

            torch.set_grad_enabled(False)
            print(json.dumps([self_check(e) for e in EXERCISES.values()], indent=1))
        else:
            for e in EXERCISES.values():
                print(f"{e.id:>4}  {e.kind:8} {e.summary}")
    except RagEduError as error:
        print(f"ragedu.exercises: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
