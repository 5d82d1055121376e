"""Where RAG-Sequence's thorough and fast decoding pick different answers, searched over a task's inputs.   (notebook 4)

Dims: B questions · K retrieved passages · N beams · H hypotheses of one question

Both rankings rank the same hypothesis set Y (the union of the K passages' beams):
    thorough   p(y|x) = Σ_z p(z|x) p_θ(y|x,z)                     every p_θ(y|x,z) computed
    fast       p(y|x) ≈ Σ_{z: y ∈ beam(z)} p(z|x) p_θ(y|x,z)      p_θ(y|x,z) := 0 where z's beam missed y
A fast-mode trace holds both (ragedu.traces.RagSequenceTrace), so one decode per question tells whether they agree.

A search over every held-out input takes minutes, so notebook 4 draws a case from `FOUND`, a short list this
module's command found on the shipped model, and tests/test_disagreement.py rechecks that each still disagrees:

    python -m ragedu.disagreement                   # test split of qa, clues, claims; K 5, 10; beams 2, 3, 4
    python -m ragedu.disagreement --tasks clues --k 10 --beams 4 --json
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass

from ragedu.decoding import decode
from ragedu.model import RagModel
from ragedu.errors import RagEduError
from ragedu.tasks import SPLITS, TASKS, load_task

# How long an answer may grow, per task: QA answers and claim labels are a few tokens (notebook 4 decodes them with
# max_len = 16); a clue is a sentence ("This city of 493,731 people is the capital of …"), as the course's BEAM.
MAX_LEN = {"qa": 16, "clues": 32, "claims": 16}


@dataclass(frozen=True)
class Disagreement:
    """One input on which the two rankings of RAG-Sequence's Y choose different answers, and the settings."""

    task: str          # "qa", "clues" or "claims"
    split: str         # "test", …
    question: str      # the input x
    k: int             # K passages
    num_beams: int     # N beams per passage
    max_len: int       # the longest answer in tokens, </s> included
    fast: str          # fast decoding's answer
    thorough: str      # thorough decoding's answer

    @property
    def settings(self) -> dict:
        """The keywords `decode` takes for this case."""
        return {"k": self.k, "num_beams": self.num_beams, "max_len": self.max_len}


def answers_of_both(model: RagModel, questions: list[str], k: int, num_beams: int, max_len: int,
                    batch_size: int = 16) -> list[tuple[str, str]]:
    """(fast answer, thorough answer) for each question, from one fast-mode decode with its trace
    (the trace rescores every (y, z) cell, so it carries thorough's ranking too)."""
    pairs = []
    for start in range(0, len(questions), batch_size):
        decoded = decode(model, questions[start:start + batch_size], "sequence", k=k, mode="fast",
                         num_beams=num_beams, max_len=max_len, trace=True)
        pairs += [(t.texts[t.rank_fast[0]], t.texts[t.rank_thorough[0]]) for t in decoded.trace]
    return pairs


def find_disagreements(model: RagModel, task: str, split: str, k: int, num_beams: int, max_len: int,
                       limit: int | None = None) -> tuple[list[Disagreement], int]:
    """The inputs of `task`'s `split` (the first `limit`) where fast and thorough answer differently, and how
    many inputs were searched."""
    questions = [e.question for e in load_task(task, split)][:limit]
    found = [Disagreement(task, split, q, k, num_beams, max_len, fast, thorough)
             for q, (fast, thorough) in zip(questions, answers_of_both(model, questions, k, num_beams, max_len))
             if fast != thorough]
    return found, len(questions)


def still_disagrees(model: RagModel, case: Disagreement) -> tuple[str, str]:
    """(fast, thorough) answers of a listed case on `model`, decoded again with the case's settings."""
    return answers_of_both(model, [case.question], **case.settings)[0]


# Found by `python -m ragedu.disagreement` on the shipped model (data/model); tests/test_disagreement.py rechecks
# every entry. After retraining, rerun the command and replace this list with what it prints.
FOUND: tuple[Disagreement, ...] = (
    Disagreement("qa", "test", "Sao Tome and Principe is part of which continent?", k=10, num_beams=2, max_len=16,
                 fast="Oceania", thorough="Africa"),
    Disagreement("qa", "test", "How many people live in Aleppo?", k=5, num_beams=4, max_len=16,
                 fast="2,098,210", thorough="dollar"),
    Disagreement("qa", "test", "In which country is the city of Türkmenbaşy?", k=5, num_beams=3, max_len=16,
                 fast="91,745", thorough="supports"),
    Disagreement("claims", "test", "Marigot is the capital of Guernsey.", k=5, num_beams=4, max_len=16,
                 fast="Saint Peter Port", thorough="refutes"),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ragedu.disagreement", description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS))
    parser.add_argument("--split", choices=SPLITS, default="test")
    parser.add_argument("--k", nargs="+", type=int, default=[5, 10])
    parser.add_argument("--beams", nargs="+", type=int, default=[2, 3, 4])
    parser.add_argument("--max-len", type=int, default=None, help="default: per task, " + str(MAX_LEN))
    parser.add_argument("--limit", type=int, default=None, help="search only the first N inputs of each task")
    parser.add_argument("--json", action="store_true", help="one JSON object: counts per setting and the cases")
    args = parser.parse_args(argv)
    try:
        return _search(args)
    except RagEduError as error:                  # a bad K, beam count or max_len: one sentence, exit 2
        print(f"python -m ragedu.disagreement: {error}", file=sys.stderr)
        return 2


def _search(args) -> int:

    import torch

    from ragedu.pretrained import load_default

    torch.set_grad_enabled(False)
    model = load_default()
    counts, cases = [], []
    for task in args.tasks:
        max_len = args.max_len or MAX_LEN[task]
        for k in args.k:
            for num_beams in args.beams:
                found, searched = find_disagreements(model, task, args.split, k, num_beams, max_len, args.limit)
                counts.append({"task": task, "split": args.split, "k": k, "num_beams": num_beams,
                               "max_len": max_len, "searched": searched, "disagree": len(found)})
                cases += found
                if not args.json:
                    print(f"{task:6} {args.split} K={k:<3} beams={num_beams}  max_len={max_len}:  "
                          f"{len(found)} of {searched} inputs disagree", flush=True)
                    for case in found:
                        print(f"    {case!r}", flush=True)
    if args.json:
        json.dump({"counts": counts, "cases": [asdict(c) for c in cases]}, sys.stdout, indent=1)
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
