"""Checking what a user passes in, before any model runs: one sentence for each mistake.   (notebook 1)

Every check returns the value in the form the library uses (a Python int, a float, a list of str) or raises
RagEduError naming what was wrong and what is allowed. The command line runs the checks that need no model
before it loads one (a load takes seconds); the library runs them again, so notebooks get the same sentences.

    count(name, value, low, high)    K, beams, max_len, --limit: any integer type (NumPy's too), never a bool
    number(name, value)              length_penalty and other settings: a finite real number, never NaN
    question(q) / questions(qs)      a string with a letter or a digit and no control characters
    answers(ys, n)                   one answer string per question: a bare string is refused, not split
    question_lines(path)             a --file of questions: a text file in UTF-8, each bad line reported
    local_path(name)                 a checkpoint that looks like a local path must exist (never sent to the hub)
"""
from __future__ import annotations

import math
import numbers
import operator
import unicodedata
from pathlib import Path

from ragedu.errors import RagEduError, RagEduFileNotFound


def count(name: str, value, low: int = 1, high: int | None = None, what: str = "", hint: str = "") -> int:
    """A whole number low ≤ value ≤ high of any integer type (int, NumPy, a 0-d torch tensor); not a bool.
    `what` names the upper bound ("the corpus size "), `hint` follows the allowed range."""
    if high is None:
        allowed = ("a positive integer" if low == 1 else f"an integer of at least {low}") + hint
    else:
        allowed = f"an integer between {low} and {what}{high}{hint}"
    if isinstance(value, bool) or type(value).__name__ in ("bool_", "bool"):  # True is an int in Python
        raise RagEduError(f"{name} must be {allowed}, got the boolean {value!r}")
    try:
        n = operator.index(value)  # ints and NumPy ints; refuses 5.0, "5" and None
    except TypeError:
        raise RagEduError(f"{name} must be {allowed}, got {value!r} of type {type(value).__name__}") from None
    if n < low or (high is not None and n > high):
        raise RagEduError(f"{name} must be {allowed}, got {n}")
    return n


def number(name: str, value) -> float:
    """A finite real number (int, float, NumPy scalar); NaN, infinities and booleans are refused."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise RagEduError(f"{name} must be a finite real number, got {value!r} of type {type(value).__name__}")
    if not math.isfinite(value):
        raise RagEduError(f"{name} must be a finite real number, got {value!r}")
    return float(value)


def _control(text: str) -> str | None:
    """The first control character in `text`, as U+XXXX at its position, or None."""
    for i, c in enumerate(text):
        if unicodedata.category(c) == "Cc":
            return f"U+{ord(c):04X} at character {i}"
    return None


def _plain_text(value, where: str, empty: str) -> str:
    """A non-blank string without control characters; `empty` is the sentence for a blank one."""
    if not isinstance(value, str):
        raise RagEduError(f"{where} must be a string, got {value!r} of type {type(value).__name__}")
    if not value.strip():
        raise RagEduError(empty)
    control = _control(value)
    if control:
        raise RagEduError(f"{where} holds the control character {control}; write it as plain text")
    return value


def question(q, where: str = "the question") -> str:
    """A question the encoders can read: a string with at least one letter or digit, no control characters."""
    _plain_text(q, where, f"{where} is empty: {q!r}; a question needs at least one word")
    if not any(c.isalnum() for c in q):
        raise RagEduError(f"{where} has no letter or digit ({q[:40]!r}); ask in words, "
                          "e.g. 'What is the capital of Kenya?'")
    return q


def _sequence(values, what: str, example: str) -> list:
    if isinstance(values, (str, bytes)):
        raise RagEduError(f"pass a list of {what}, e.g. [{example}], not a bare string")
    try:
        return list(values)
    except TypeError:
        raise RagEduError(f"pass a list of {what}, got {values!r} of type {type(values).__name__}") from None


def questions(qs) -> list[str]:
    """A non-empty list of questions, each checked by `question`."""
    qs = _sequence(qs, "questions", "question")
    if not qs:
        raise RagEduError("no questions given: pass a non-empty list of strings")
    return [question(q, f"question {i}") for i, q in enumerate(qs)]


def answers(ys, n: int) -> list[str]:
    """One non-empty answer string per question (n of them). `score(qs, "Nairobi")` would otherwise be
    read as one answer per character."""
    ys = _sequence(ys, "answers, one per question", "answer")
    if len(ys) != n:
        raise RagEduError(f"{n} questions but {len(ys)} answers; give one answer per question")
    for i, y in enumerate(ys):
        _plain_text(y, f"answer {i}", f"answer {i} is empty; a target needs at least one token")
    return ys


def within(what: str, length: int, limit: int, hint: str) -> None:
    """Refuse `length` tokens beyond `limit`, the positions an encoder or decoder holds."""
    if length > limit:
        raise RagEduError(f"{what} is {length} tokens long; at most {limit} are allowed ({hint})")


def question_lines(path: str | Path) -> list[tuple[int, str | RagEduError]]:
    """The questions of a --file, one a line: (line number, question) for each non-blank line, or
    (line number, the RagEduError saying what is wrong with it), so a batch can report a bad line and go on."""
    path = Path(path)
    if path.is_dir():
        raise RagEduError(f"--file {path} is a directory; give a text file with one question a line")
    if not path.exists():
        raise RagEduFileNotFound(f"--file {path} does not exist; give a text file with one question a line")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[:error.start].count(b"\n") + 1
        raise RagEduError(f"{path} is not UTF-8 text (byte 0x{data[error.start]:02x} on line {line}); "
                          "save it as UTF-8, one question a line") from None
    lines = []
    for line_no, line in enumerate(text.removeprefix("\ufeff").split("\n"), 1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        try:
            lines.append((line_no, question(line.strip())))
        except RagEduError as error:
            lines.append((line_no, error))
    if not lines:
        raise RagEduError(f"{path} holds no questions; write one question a line")
    return lines


def local_path(name_or_path, what: str = "checkpoint") -> None:
    """Refuse a name that looks like a local path (absolute, ./ ../ ~, a backslash, more than one slash or a
    trailing one) but does not exist: it is a typo, and sending it to the hub only fails slowly."""
    if isinstance(name_or_path, Path):
        looks_local = True
    elif isinstance(name_or_path, str):
        s = name_or_path
        looks_local = (s.startswith(("/", ".", "~")) or "\\" in s or s.count("/") > 1 or s.endswith("/")
                       or Path(s).drive != "")
    else:
        return
    path = Path(name_or_path).expanduser()
    if looks_local and not path.exists():
        raise RagEduFileNotFound(f"{what} {name_or_path} does not exist; give an existing local folder or a hub "
                                 "name like facebook/rag-token-nq")
