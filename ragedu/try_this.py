""""Try this" inputs for the explorer: questions where one control visibly changes what is drawn, each found by
a computed criterion.   (notebook 9)

Three kinds, each checked on what the explorer shows (ragedu.explorer.ExplorerState), at the entry's settings:
    mixes   RAG-Token's answer at (K, beams) leans on two passages: argmax_z p(z|x,y_i,y<i) differs between its
            tokens, on passages of two different titles (</s> left out)
    modes   RAG-Sequence's thorough and fast decoding choose different answers at (K, beams)
    k       RAG-Sequence's (thorough) answer at K = k differs from its answer at K = k_to
The search reads our dev and test inputs (clue inputs for `mixes`, QA questions for the others), first in one
batched `decode` per slice of inputs, and keeps the first input each kind's criterion accepts on ExplorerState
(for `modes` and `k`, the first where one of the two answers is the task file's and the other is not):

    python -m ragedu.try_this --out data/try_this.json       (a few minutes on 2 cores)

The widget offers what that file holds; tests/test_try_this.py rechecks every entry on the shipped model.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ragedu.decoding import decode, text_of
from ragedu.explorer import ExplorerState, rag_sequence_at_k
from ragedu.model import RagModel
from ragedu.corpus import DATA_DIR
from ragedu.tasks import load_task

TRY_THIS_FILE = DATA_DIR / "try_this.json"
COMMAND = "python -m ragedu.try_this --out data/try_this.json"
KINDS = ("mixes", "modes", "k")
SETTINGS = dict(k=5, num_beams=4)   # the explorer's defaults: what a student sees first


@dataclass(frozen=True)
class TryThis:
    """One input for the explorer and the settings at which it shows its kind's effect."""

    kind: str          # one of KINDS
    question: str
    k: int
    num_beams: int
    mode: str          # RAG-Sequence decoding to start in
    variant: str       # whose answer the posteriors explain
    k_to: int = 0      # kind "k": the K to move to

    def sentence(self) -> str:
        """What to look at, in one sentence."""
        if self.kind == "mixes":
            return ("RAG-Token's answer mixes two passages: in the left panel of the posterior figure the framed, "
                    "darkest cell of each token's column jumps between two passages; on the right RAG-Sequence's "
                    "accumulated posterior settles on one.")
        if self.kind == "modes":
            return ("Switch RAG-Sequence decoding between thorough and fast: its answer changes. In the matrix, the "
                    "hatched cells are the p_θ(y|x,z) fast decoding assumes to be 0 instead of computing them.")
        return (f"Move K from {self.k} to {self.k_to}: the answer changes, because p(z|x) is renormalised over "
                "more passages and the new ones speak too.")

    def label(self) -> str:
        return {"mixes": "RAG-Token mixes passages", "modes": "thorough ≠ fast",
                "k": f"K = {self.k} → {self.k_to} changes the answer"}[self.kind] + f": {self.question}"


def leaning_titles(state: ExplorerState, entry: TryThis) -> list[str]:
    """The title of the passage each token of RAG-Token's answer leans on most (</s> left out)."""
    view = state.view(entry.question, entry.k, "token", entry.mode, entry.num_beams)
    posterior = view.posteriors["token"]                                     # (K, T)
    T = len(view.tokens) - (view.tokens[-1:] == ["</s>"])
    return [view.titles[z] for z in posterior[:, :T].argmax(axis=0).tolist()]


def problem(state: ExplorerState, entry: TryThis) -> str | None:
    """Why the entry does not show its kind's effect on this model, or None when it does."""
    q, k, beams = entry.question, entry.k, entry.num_beams
    if entry.kind == "mixes":
        titles = leaning_titles(state, entry)
        return None if len(set(titles)) >= 2 else f"RAG-Token's answer leans on one passage only ({titles[:1]})"
    if entry.kind == "modes":
        thorough, fast = (state.sequence_answer(q, k, mode, beams)[0] for mode in ("thorough", "fast"))
        return None if thorough != fast else "thorough and fast decoding choose the same answer"
    before, after = (state.sequence_answer(q, kk, "thorough", beams)[0] for kk in (k, entry.k_to))
    return None if before != after else f"the answer is the same at K = {k} and K = {entry.k_to}"


def load_try_this(path: str | Path = TRY_THIS_FILE) -> list[TryThis]:
    """The stored entries, or none if the file is missing (the explorer then offers none)."""
    path = Path(path)
    if not path.exists():
        return []
    return [TryThis(**row) for row in json.loads(path.read_text(encoding="utf-8"))["entries"]]


# ---- the search ----

def _mixing_candidates(model: RagModel, inputs: list[str], batch: int) -> list[str]:
    """Inputs whose RAG-Token answer leans on two titles in a batched decode, most evenly mixed first."""
    scored = []
    for s in range(0, len(inputs), batch):
        chunk = inputs[s:s + batch]
        d = decode(model, chunk, "token", SETTINGS["k"], num_beams=SETTINGS["num_beams"], trace=True)
        for b, trace in enumerate(d.trace):
            leans = trace.log_p_z_given_yi[0][:, :-1].argmax(dim=0).tolist()  # (T − 1,) passage rows
            titles = [d.retrieved.titles[b][z] for z in leans]
            counts = sorted((titles.count(t) for t in set(titles)), reverse=True)
            if len(counts) >= 2:
                scored.append((-counts[1], s + b, chunk[b]))                  # tokens on the second title
    return [q for _, _, q in sorted(scored)]


def _sequence_candidates(model: RagModel, examples: list, batch: int, k_max: int):
    """Examples in file order, each with RAG-Sequence's answers (text) at every K ≤ k_max in both modes."""
    for s in range(0, len(examples), batch):
        chunk = examples[s:s + batch]
        d = decode(model, [e.question for e in chunk], "sequence", k_max, num_beams=SETTINGS["num_beams"], trace=True)
        for b, trace in enumerate(d.trace):
            answers = {(k, mode): text_of(model.generator, rag_sequence_at_k(trace, d.retrieved.top(k).log_p_z[b],
                                                                              mode)[0])
                       for k in range(1, k_max + 1) for mode in ("thorough", "fast")}
            yield chunk[b], answers


def search(model: RagModel, splits=("dev", "test"), batch: int = 16, k_max: int = 10,
           log=print) -> list[TryThis]:
    """The first input of our dev/test files that meets each kind's criterion on ExplorerState."""
    state = ExplorerState(model, k_max=k_max)
    k, beams = SETTINGS["k"], SETTINGS["num_beams"]
    found: dict[str, TryThis] = {}
    clues = [e.question for split in splits for e in load_task("clues", split)]
    for question in _mixing_candidates(model, clues, batch):
        entry = TryThis("mixes", question, k, beams, "thorough", "token")
        if problem(state, entry) is None:
            found["mixes"] = entry
            break
    examples = [e for split in splits for e in load_task("qa", split)]
    for example, answers in _sequence_candidates(model, examples, batch, k_max):
        # a story worth telling: one of the two answers is the right one (the task file's), the other is not
        question = example.question
        before = {kind: answers[key] for kind, key in (("modes", (k, "fast")), ("k", (1, "thorough")))}
        candidates = []
        if "modes" not in found and answers[(k, "thorough")] != before["modes"] \
                and example.answer in (answers[(k, "thorough")], before["modes"]):
            candidates.append(TryThis("modes", question, k, beams, "thorough", "sequence"))
        if "k" not in found and answers[(k, "thorough")] != before["k"] \
                and example.answer in (answers[(k, "thorough")], before["k"]):
            candidates.append(TryThis("k", question, 1, beams, "thorough", "sequence", k_to=k))
        for entry in candidates:   # confirmed on what the explorer computes, one question at a time
            if problem(state, entry) is None:
                found[entry.kind] = entry
        if len(found) == len(KINDS):
            break
    for kind in KINDS:
        log(f"{kind}: {found[kind].question!r}" if kind in found else f"{kind}: none found")
    return [found[kind] for kind in KINDS if kind in found]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Find the explorer's 'try this' inputs.")
    parser.add_argument("--out", type=Path, default=TRY_THIS_FILE, help=f"where to write (default {TRY_THIS_FILE})")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    from ragedu.pretrained import load_default

    with torch.no_grad():
        entries = search(load_default())
    args.out.write_text(json.dumps({"made_by": COMMAND, "entries": [asdict(e) for e in entries]}, indent=1,
                                   ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {len(entries)} entries to {args.out}")


if __name__ == "__main__":
    main()
