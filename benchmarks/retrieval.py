"""Retrieval speed on the shipped corpus: encoding, indexing, and FAISS flat search against torch matmul + topk.

    python benchmarks/retrieval.py [--json] [--k 5] [--repeats 20]

Both searches run in this one process over the same vectors and queries; the ratio is FAISS / torch in queries/s.
"""
import argparse
import json
import time

import numpy as np
import torch

import ragedu
from ragedu.retriever import build_index, encode_passages
from ragedu.tasks import load_task


def best_of(fn, repeats: int) -> float:
    """The fastest of `repeats` timings, in seconds (the least disturbed by other work on the machine)."""
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()

    model = ragedu.load_default()
    retriever = model.retriever
    corpus = retriever.corpus
    questions = [e.question for e in load_task("qa", "test")]

    t = time.perf_counter()
    d_z = encode_passages(retriever.doc_encoder, retriever.tokenizer, corpus, progress=False)  # (N, D)
    encode_seconds = time.perf_counter() - t
    build_seconds = best_of(lambda: build_index(d_z), args.repeats)
    index = build_index(d_z)

    with torch.no_grad():
        q_x = torch.cat([retriever.encode_questions(questions[i:i + 256]) for i in range(0, len(questions), 256)])
    q_np = np.ascontiguousarray(q_x.numpy())
    faiss_seconds = best_of(lambda: index.search(q_np, args.k), args.repeats)
    torch_seconds = best_of(lambda: torch.topk(q_x @ d_z.T, args.k, dim=-1), args.repeats)
    same = (index.search(q_np, args.k)[1] == torch.topk(q_x @ d_z.T, args.k, dim=-1).indices.numpy()).mean()

    figures = {
        "corpus_passages": len(corpus),
        "embedding_dim": d_z.shape[1],
        "encode_passages_per_s": round(len(corpus) / encode_seconds, 1),
        "index_build_seconds": round(build_seconds, 6),
        "queries": len(questions),
        "k": args.k,
        "faiss_flat_queries_per_s": round(len(questions) / faiss_seconds, 1),
        "torch_matmul_topk_queries_per_s": round(len(questions) / torch_seconds, 1),
        "faiss_over_torch_speed_ratio": round(torch_seconds / faiss_seconds, 3),
        "same_top_k_share": round(float(same), 4),
    }
    if args.json:
        print(json.dumps(figures))
    else:
        for name, value in figures.items():
            print(f"{name:34s} {value}")


if __name__ == "__main__":
    main()
