"""The `ragedu` command: ask the model, train it, evaluate it.

    ragedu ask "What is the capital of Kenya?" [--variant token|sequence] [-k K] [--memory EDITION] [--json] [--file F]
    ragedu train [--out DIR]
    ragedu eval [--json] [--split test]
    ragedu eval hot-swap [--json]       the paper's index hot-swap table for our memory editions (notebook 6)
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from ragedu.marginalize import VARIANTS


def _model(path: str | None, memory: str | None = None):
    from ragedu.pretrained import DEFAULT_MODEL_DIR, load
    return load(Path(path) if path else DEFAULT_MODEL_DIR, memory=memory)


def answer(model, question: str, variants: tuple[str, ...], k: int, num_beams: int, mode: str) -> dict:
    """Everything `ragedu ask` prints for one question, as plain data."""
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


def cmd_ask(args) -> int:
    if args.file:
        questions = [line.strip() for line in Path(args.file).read_text().splitlines() if line.strip()]
        if not questions:
            raise ValueError(f"{args.file} holds no questions; write one question a line")
    elif args.question:
        questions = [" ".join(args.question)]
    else:
        raise ValueError("give a question, e.g. ragedu ask \"What is the capital of Kenya?\", or --file F")
    model = _model(args.model, args.memory)
    variants = VARIANTS if args.variant is None else (args.variant,)
    for question in questions:
        result = answer(model, question, variants, args.k, args.beams, args.mode)
        if args.json or args.file:
            print(json.dumps(result, ensure_ascii=False), flush=True)
        else:
            print_answer(result)
    return 0


def cmd_train(args) -> int:
    from ragedu.pretrained import DEFAULT_MODEL_DIR
    from ragedu.train import TrainConfig, train

    out = Path(args.out) if args.out else DEFAULT_MODEL_DIR
    cfg = TrainConfig.from_dict(json.loads(Path(args.config).read_text())) if args.config else TrainConfig()
    t = time.time()
    seconds = train(out, cfg, work_dir=args.work_dir)
    print(json.dumps({"model_dir": str(out), "seconds": {s: round(v, 1) for s, v in seconds.items()},
                      "wall_seconds": round(time.time() - t, 1)}))
    return 0


def cmd_eval(args) -> int:
    from ragedu.evaluate import evaluate
    from ragedu.pretrained import DEFAULT_MODEL_DIR, load_closed_book

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
    from ragedu.memory import hot_swap

    result = hot_swap(_model(args.model), k=args.k, variant=args.variant, unchanged_limit=args.limit,
                      progress=not args.json)
    print(json.dumps(result.to_json(), indent=None if args.json else 2))
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

    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"ragedu {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
