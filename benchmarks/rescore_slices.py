"""How the size of thorough decoding's rescoring slices moves its time (`decoding.RESCORE_TOKENS`).

RAG-Sequence thorough decoding of 4 questions at K = 30, beam 4, on the shipped model (about 13,000
(hypothesis, passage) pairs rescored), for each number of decoder tokens per torch thread in a slice and each
thread count; rounds interleave the sizes so that a busy moment of the machine falls on all of them.

    python benchmarks/rescore_slices.py                  human-readable
    python benchmarks/rescore_slices.py --json           one JSON object: threads -> tokens -> seconds
    python benchmarks/rescore_slices.py --tokens 256 512 1024 --threads 1 2 --rounds 2
    python benchmarks/rescore_slices.py --tokens 512 --threads 2 --rounds 1 --questions 1 -k 200   one ask's cost
"""
from __future__ import annotations

import argparse
import json
import time
import warnings

import torch

import ragedu
import ragedu.decoding as decoding
from ragedu.errors import CostWarning

QUESTIONS = ["What is the currency of Norway?", "On which continent is Peru?", "What is the capital of Chile?",
             "Who wrote Hamlet?"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--tokens", type=int, nargs="+", default=[256, 512, 1024, 2048],
                        help="decoder tokens per torch thread in a slice")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("-k", type=int, default=30)
    parser.add_argument("--questions", type=int, default=len(QUESTIONS), choices=range(1, len(QUESTIONS) + 1),
                        help="decode the first this many questions")
    args = parser.parse_args()
    questions = QUESTIONS[:args.questions]
    model = ragedu.load_default().eval()
    retrieved = model.retriever.retrieve(questions, args.k)
    default, seconds = decoding.RESCORE_TOKENS, {}
    warnings.simplefilter("ignore", CostWarning)      # it says K = 30 rescores thousands of pairs: we know
    try:
        for threads in args.threads:
            torch.set_num_threads(threads)
            for _ in range(args.rounds):
                for tokens in args.tokens:
                    decoding.RESCORE_TOKENS = tokens
                    start = time.perf_counter()
                    decoding.decode(model, questions, "sequence", args.k, num_beams=4, retrieved=retrieved)
                    seconds.setdefault(threads, {}).setdefault(tokens, []).append(time.perf_counter() - start)
    finally:
        decoding.RESCORE_TOKENS = default
    best = {t: {n: round(min(s), 2) for n, s in by_tokens.items()} for t, by_tokens in seconds.items()}
    if args.json:
        print(json.dumps({"k": args.k, "questions": len(questions), "default_tokens": default,
                          "best_seconds": best}))
        return
    print(f"RAG-Sequence thorough decoding, {len(questions)} questions, K = {args.k}, beam 4; best of "
          f"{args.rounds} rounds (the library's default: {default} tokens per thread)")
    for threads, by_tokens in best.items():
        print(f"  {threads} thread(s): " + ", ".join(f"{n} tokens {s:.2f} s" for n, s in by_tokens.items()))


if __name__ == "__main__":
    main()
