"""What every exercise is made of: a verdict, the exercise, the diagnoses checkers share.   (notebooks 1–7, 9)

An exercise cell in a notebook holds a stub for the student (`answer = ...`) and one line,
`check("3.1", answer, log_p_z=log_p_z, log_p_yi=log_p_yi)`. The checker receives the answer and the notebook's
own tensors, computes what the answer should be from those tensors (never a number written down beforehand, so
it stays right when the shipped model is retrained), and returns a Verdict: one sentence saying the answer is
right and why it matters, or what is wrong with it (its shape, a missing prior, a sum where a logsumexp belongs,
a log where a probability was asked, not normalised, the wrong choice), and a hint.

Each Exercise also carries what `python -m ragedu.exercises --json` needs to test it without a notebook: a
builder of example inputs (toy tensors, or the shipped model), its solution (ragedu.solutions) and the typical
wrong answers students give, each of which the checker must refuse.
"""
from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

KINDS = ("compute", "predict", "derive")   # derive / predict: reason on paper first, then check


@dataclass
class Verdict:
    """What a checker says about one answer; truthy when the answer is right."""

    exercise: str
    status: str                # "right" | "wrong" | "unanswered"
    message: str               # one sentence
    hint: str = ""

    def __bool__(self) -> bool:
        return self.status == "right"

    def _ipython_display_(self) -> None:
        """Nothing: check() has printed the sentence already; a cell ending in check(...) shows it once."""

    def __str__(self) -> str:
        mark = {"right": "✓ right", "wrong": "✗ not yet", "unanswered": "… not answered yet"}[self.status]
        text = f"Exercise {self.exercise}, {mark}: {self.message}"
        return text + (f"\n  Hint: {self.hint}" if self.hint and self.status != "right" else "")


@dataclass(frozen=True)
class Exercise:
    """One exercise: its checker, and what the command line needs to test the checker on its own."""

    id: str                                  # "N.M": notebook N, exercise M
    kind: str                                # one of KINDS
    summary: str                             # one line: what the student does
    checker: Callable[..., Verdict]          # (verdict factory, answer, **given) -> Verdict
    example: Callable[[], dict]              # -> the notebook's inputs, built deterministically
    solution: Callable[..., Any]             # (**given) -> a right answer; its source is what a teacher reveals
    wrong: tuple[Callable[..., Any], ...]    # (**given) -> typical wrong answers, each to be refused
    hint: str                                # printed on an untouched stub and after a wrong answer
    given: tuple[str, ...] = field(default=())  # the keyword arguments the notebook passes to check()

    @property
    def notebook(self) -> int:
        return int(self.id.split(".")[0])


def exercise(id, kind, summary, checker, example, solution, wrong, hint, given=()) -> Exercise:
    """An Exercise from the lists the checker modules write: `wrong` and `given` as any sequence."""
    return Exercise(id, kind, summary, checker, example, solution, tuple(wrong), hint, tuple(given))


def call_with(function: Callable, given: dict) -> Any:
    """Call `function` with the entries of `given` it names (solutions take only what they use)."""
    parameters = inspect.signature(function).parameters
    if any(p.kind == p.VAR_KEYWORD for p in parameters.values()):
        return function(**given)
    return function(**{name: given[name] for name in parameters if name in given})


def is_stub(answer: Any) -> bool:
    """An untouched stub: `...` or None."""
    return answer is None or answer is Ellipsis


@functools.lru_cache(maxsize=1)
def shipped_model():
    """The shipped model, loaded once for every model exercise of a --json run."""
    from ragedu.pretrained import load_default

    return load_default().eval()


# ---- diagnoses shared by the checkers ----

class Verdicts:
    """Builds the verdicts of one exercise (its id and hint filled in)."""

    def __init__(self, exercise: Exercise):
        self.exercise = exercise

    def right(self, message: str) -> Verdict:
        return Verdict(self.exercise.id, "right", message)

    def wrong(self, message: str, hint: str | None = None) -> Verdict:
        return Verdict(self.exercise.id, "wrong", message, self.exercise.hint if hint is None else hint)


def as_tensor(answer: Any) -> torch.Tensor | None:
    """The answer as a float tensor, or None when it is not numbers."""
    try:
        return torch.as_tensor(answer, dtype=torch.float64).detach()
    except (TypeError, ValueError, RuntimeError):
        return None


def close(a: torch.Tensor, b: torch.Tensor, rtol: float = 1e-4, atol: float = 1e-4) -> bool:
    return a.shape == b.shape and bool(torch.allclose(a, b.to(a.dtype), rtol=rtol, atol=atol, equal_nan=True))


def compare_tensor(v: Verdicts, answer: Any, expected: torch.Tensor, right: str, known: dict[str, torch.Tensor],
                   what: str, probability: bool | None = None, normalised_dim: int | None = None,
                   atol: float = 1e-4) -> Verdict:
    """Right when `answer` equals `expected` (shape and values); else the first diagnosis that fits:
    a shape, one of the `known` wrong values (sentence -> the value that mistake gives), log vs probability
    (`probability`: True when a probability is asked, False when a log), not normalised along `normalised_dim`."""
    expected = expected.detach().to(torch.float64)
    given = as_tensor(answer)
    if given is None:
        return v.wrong(f"{what} should be numbers (a tensor of shape {tuple(expected.shape)}), "
                       f"got a {type(answer).__name__}")
    if given.numel() == expected.numel() and given.shape != expected.shape:
        if close(given.reshape(expected.shape), expected, atol=atol):
            return v.wrong(f"the values are right but {what} has shape {tuple(given.shape)}; the notebook's "
                           f"convention is {tuple(expected.shape)}", "reshape, or keep the batch axis B")
    if given.shape != expected.shape:
        return v.wrong(f"{what} should have shape {tuple(expected.shape)}, got {tuple(given.shape)}")
    if close(given, expected, atol=atol):
        return v.right(right)
    for sentence, value in known.items():
        if close(given, value.detach().to(torch.float64), atol=atol):
            return v.wrong(sentence)
    if probability is True and close(given.exp(), expected, atol=atol):
        return v.wrong(f"{what} looks like a log-probability; a probability was asked for", "take .exp()")
    if probability is False and (given > 0).all() and close(given.log(), expected, atol=atol):
        return v.wrong(f"{what} looks like a probability; a log-probability was asked for", "take .log()")
    if normalised_dim is not None and (given > 0).all():
        if close(given / given.sum(normalised_dim, keepdim=True), expected, atol=atol):
            return v.wrong(f"{what} points the right way but is not normalised: it does not sum to 1",
                           "divide by the sum over the passages")
    worst = (given - expected).abs().max().item()
    return v.wrong(f"{what}: not what the inputs give (largest difference {worst:.3g})")


def compare_number(v: Verdicts, answer: Any, expected: float, right: str, known: dict[str, float], what: str,
                   rtol: float = 1e-4, atol: float = 1e-6) -> Verdict:
    """compare_tensor for one number."""
    given = as_tensor(answer)
    if given is None or given.numel() != 1:
        return v.wrong(f"{what} should be one number, got {type(answer).__name__}"
                       + ("" if given is None else f" of shape {tuple(given.shape)}"))
    value = given.item()
    if abs(value - expected) <= atol + rtol * abs(expected):
        return v.right(right)
    for sentence, wrong in known.items():
        if abs(value - wrong) <= atol + rtol * abs(wrong):
            return v.wrong(sentence)
    return v.wrong(f"{what} should be {expected:.6g} with these inputs, got {value:.6g}")


def compare_choice(v: Verdicts, answer: Any, options: dict[str, str], right: str, why: str,
                   because: dict[str, str]) -> Verdict:
    """A multiple-choice answer: a letter of `options` (any case). Right or wrong, the verdict explains `why`;
    a wrong letter also gets its own `because` sentence (what that choice misses)."""
    letter = str(answer).strip().lower().strip("()")
    if letter not in options:
        return v.wrong(f"answer with one of the letters {', '.join(options)}, got {answer!r}", "")
    if letter == right:
        return v.right(f"({right}) {options[right]}. {why}")
    return v.wrong(f"not ({letter}): {because.get(letter, options[letter] + ' does not hold')}. "
                   f"The answer is ({right}): {why}")
