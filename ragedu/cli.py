"""The `ragedu` command: ask the model, train it, evaluate it.   (the README; every notebook shows its library calls)

    ragedu ask "What is the capital of Kenya?" [--variant token|sequence] [-k K] [--memory EDITION] [--json] [--file F]
    ragedu train [--out DIR]
    ragedu eval [--json] [--split test]
    ragedu eval hot-swap [--json]       the paper's index hot-swap table for our memory editions (notebook 6)
    ragedu manifest DIR                 check a model directory saved without a manifest, then write one
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import ragedu
from ragedu import checks
from ragedu.errors import CostWarning, RagEduError
from ragedu.variants import VARIANTS


def _model(path: str | None, memory: str | None = None):
    from ragedu.pretrained import DEFAULT_MODEL_DIR, load
    return load(Path(path) if path else DEFAULT_MODEL_DIR, memory=memory)


def answer(model, question: str, variants: tuple[str, ...], k: int, num_beams: int, mode: str) -> dict:
    """Everything `ragedu ask` prints for one question, as plain data."""
    import torch

    from ragedu.decoding import decode

    with torch.no_grad():
        retrieved = model.retriever.retrieve([question], k)
        result = {
            "question": question, "k": k,
            "passages": [{"id": i, "title": t, "text": x, "p_z": round(float(p), 4)} for i, t, x, p in
                         zip(retrieved.ids[0], retrieved.titles[0], retrieved.texts[0], retrieved.log_p_z[0].exp())],
            "answers": {},
        }
        signals = retrieved.memory_signals  # None for a model without a calibrated threshold
        result["memory_signal"] = signals[0].to_json() if signals else None
        for variant in variants:
            with warnings.catch_warnings():  # cmd_ask stated the rescoring cost once, before the model loaded
                warnings.simplefilter("ignore", CostWarning)
                decoded = decode(model, [question], variant, k, mode=mode, num_beams=num_beams, retrieved=retrieved)
            result["answers"][variant] = {"answer": decoded.answers[0],
                                          "log_p_y": round(decoded.log_p_y[0][0], 4) if decoded.log_p_y[0] else None}
    return result


def print_answer(result: dict) -> None:
    print(f"Q: {result['question']}")
    for variant, a in result["answers"].items():
        print(f"  RAG-{variant.capitalize():9s} {a['answer']!r}   log p(y|x) = {a['log_p_y']}")
    signal = result.get("memory_signal")
    if signal and signal["speaks"]:
        print(f"  note: {signal['sentence']}")
    print(f"  top-{result['k']} passages, p(z|x):")
    for p in result["passages"]:
        print(f"    {p['p_z']:.3f}  {p['title']}: {p['text']}")


def ask_lines(args) -> list[tuple[int | None, str | RagEduError]]:
    """What `ragedu ask` will answer, checked before the model loads: (line number or None, question or the
    error of a bad --file line). Raises RagEduError for a mistake that stops the whole command."""
    checks.count("-k", args.k, 1)
    checks.count("--beams", args.beams, 1, hint=" (1 is greedy decoding)")
    if args.memory is not None:
        from ragedu.editions import check_edition
        check_edition(args.memory)
    if args.file:
        if args.question:
            raise RagEduError("give a question or --file F, not both")
        return checks.question_lines(args.file)
    if args.question:
        return [(None, checks.question(" ".join(args.question)))]
    raise RagEduError("give a question, e.g. ragedu ask \"What is the capital of Kenya?\", or --file F")


def cmd_ask(args) -> int:
    lines = ask_lines(args)
    if "sequence" in (args.variant or "sequence") and args.mode == "thorough":
        from ragedu.decoding import warn_rescoring_cost
        warn_rescoring_cost(1, args.k, args.beams)  # once, before the model loads
    model = _model(args.model, args.memory)
    variants = VARIANTS if args.variant is None else (args.variant,)
    failed = 0
    for line_no, question in lines:
        try:
            if isinstance(question, RagEduError):
                raise question
            result = answer(model, question, variants, args.k, args.beams, args.mode)
        except RagEduError as error:
            if line_no is None:
                raise
            failed += 1  # with --file: name the line, answer the others, exit non-zero at the end
            print(f"ragedu ask: error: {args.file}:{line_no}: {error}", file=sys.stderr, flush=True)
            continue
        if args.json or args.file:
            print(json.dumps(result, ensure_ascii=False), flush=True)
        else:
            print_answer(result)
    if failed:
        print(f"ragedu ask: error: {failed} of {len(lines)} questions in {args.file} were not answered (above)",
              file=sys.stderr)
        return 2
    return 0


def cmd_train(args) -> int:
    from ragedu.pretrained import DEFAULT_MODEL_DIR
    from ragedu.train import TrainConfig, train

    out = Path(args.out) if args.out else DEFAULT_MODEL_DIR
    cfg = TrainConfig.from_dict(read_json(args.config, "--config")) if args.config else TrainConfig()
    t = time.time()
    seconds = train(out, cfg, work_dir=args.work_dir)
    print(json.dumps({"model_dir": str(out), "seconds": {s: round(v, 1) for s, v in seconds.items()},
                      "wall_seconds": round(time.time() - t, 1)}))
    return 0


def read_json(path: str, what: str) -> dict:
    """A JSON object from a file the user named, or one sentence saying what is wrong with it."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise RagEduError(f"{what} {path} is not a readable JSON file ({type(error).__name__}: {error})") from None
    if not isinstance(data, dict):
        raise RagEduError(f"{what} {path} holds a JSON {type(data).__name__}; write an object of TrainConfig fields")
    return data


def cmd_eval(args) -> int:
    from ragedu.evaluate import evaluate
    from ragedu.pretrained import DEFAULT_MODEL_DIR, load_closed_book

    checks.count("-k", args.k, 1)
    if args.limit is not None:
        checks.count("--limit", args.limit, 1, hint=" (examples of each task)")
    path = Path(args.model) if args.model else DEFAULT_MODEL_DIR
    model = _model(args.model)
    try:
        closed_book = load_closed_book(path)
    except FileNotFoundError:
        closed_book = None
    figures = evaluate(model, closed_book, split=args.split, k=args.k, progress=not args.json, limit=args.limit)
    print(json.dumps(figures, indent=None if args.json else 2))
    return 0


def cmd_hot_swap(args) -> int:
    from ragedu.hotswap import hot_swap

    checks.count("-k", args.k, 1)
    checks.count("--limit", args.limit, 1, hint=" (unchanged test questions)")
    result = hot_swap(_model(args.model), k=args.k, variant=args.variant, unchanged_limit=args.limit,
                      progress=not args.json)
    print(json.dumps(result.to_json(), indent=None if args.json else 2))
    return 0


def cmd_manifest(args) -> int:
    from ragedu.pretrained import write_checked_manifest

    print(f"wrote {write_checked_manifest(args.dir)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ragedu", description="Retrieval-Augmented Generation, small and readable")
    sub = parser.add_subparsers(dest="command", required=True)

    ask = sub.add_parser("ask", help="answer a question with both RAG models and show the passages")
    ask.add_argument("question", nargs="*")
    ask.add_argument("--variant", choices=VARIANTS, help="only this model (default: both)")
    ask.add_argument("-k", type=int, default=5, help="passages to retrieve (default 5)")
    ask.add_argument("--beams", type=int, default=1, help="beam size (default 1: greedy, as the paper's QA)")
    ask.add_argument("--mode", choices=("thorough", "fast"), default="thorough", help="RAG-Sequence decoding")
    ask.add_argument("--json", action="store_true", help="one JSON object per question")
    ask.add_argument("--file", help="answer every line of this file; prints one JSON object per line")
    ask.add_argument("--model", help="a model directory (default: the shipped model)")
    ask.add_argument("--memory", help="swap in this edition of the memory: 2000 or today (default: the model's own)")
    ask.set_defaults(run=cmd_ask)

    tr = sub.add_parser("train", help="train the whole recipe and write a model directory")
    tr.add_argument("--out", help="model directory to write (default: data/model)")
    tr.add_argument("--work-dir", help="checkpoints; run again with the same one to resume")
    tr.add_argument("--config", help="a JSON file of TrainConfig fields")
    tr.set_defaults(run=cmd_train)

    ev = sub.add_parser("eval", help="evaluate on the test split: retrieval, QA, claims, clues")
    ev.add_argument("--json", action="store_true")
    ev.add_argument("--split", default="test", choices=("train", "dev", "test"))
    ev.add_argument("-k", type=int, default=5)
    ev.add_argument("--limit", type=int, help="only the first N examples of each task")
    ev.add_argument("--model", help="a model directory (default: the shipped model)")
    ev.set_defaults(run=cmd_eval)
    ev_sub = ev.add_subparsers(dest="eval_what")  # optional: plain `ragedu eval` is the test-split evaluation
    hs = ev_sub.add_parser("hot-swap", help="accuracy on changed facts for each (index edition, answer edition)")
    hs.add_argument("--json", action="store_true")
    hs.add_argument("-k", type=int, default=5)
    hs.add_argument("--variant", choices=VARIANTS, default="token", help="the decoder (default token, greedy)")
    hs.add_argument("--limit", type=int, default=200, help="unchanged test questions asked (default 200)")
    hs.add_argument("--model", help="a model directory (default: the shipped model)")
    hs.set_defaults(run=cmd_hot_swap)

    mf = sub.add_parser("manifest", help="check every file and the whole index of a model directory that has no "
                                         "manifest.json (an older or hand-made one), then write it")
    mf.add_argument("dir", help="the model directory")
    mf.set_defaults(run=cmd_manifest)

    args = parser.parse_args(argv)
    if args.command == "train" and not ragedu.WAIT_POLICY_SET_BY_USER:
        # Training's ops come back to back for minutes: waking sleeping threads costs more than spinning
        # (benchmarks/omp_policy.py: 5.8 denoising steps/s active, 4.7 passive, on 2 cores). Set before any
        # module of this command imports torch; a process that imported it already keeps its policy.
        os.environ["OMP_WAIT_POLICY"] = "ACTIVE"
    try:
        return args.run(args)
    except RagEduError as error:  # a user's mistake: one sentence, exit 2; anything else is a bug: a traceback
        print(f"ragedu {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
