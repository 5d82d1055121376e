"""Index types: what exact, graph and compressed search cost and what they miss.   (notebook 6)

For each kind of ragedu.retriever.INDEX_KINDS (flat = exact inner product, hnsw, ivfpq), at two sizes:
    corpus   the shipped model's own d(z) (2,439 × 128), queried with q(x) of the QA dev questions
    large    N synthetic clustered vectors of the same dimension (default 1,000,000 × 128), 1,000 queries
it measures build time, bytes in memory (the serialised index), queries per second (one batch of all
queries, k = 10; wall clock and CPU time, which a busy machine does not inflate) and recall@5 / @10 against exact search. Then it extrapolates the large run to the paper's
21M × 768 index, beside the paper's figures (about 100 GB flat, 36 GB compressed).

    OMP_NUM_THREADS=1 python benchmarks/index.py [--json] [--n 1000000] [--corpus-only]
"""
from __future__ import annotations

import argparse
import json
import math

import faiss
import numpy as np
import torch

from ragedu.index_costs import index_costs
from ragedu.retriever import ivfpq_settings

PAPER = {"passages": 21_000_000, "dim": 768, "gb_flat": 100, "gb_compressed": 36}


def clustered_vectors(n: int, d: int, clusters: int = 1000, spread: float = 0.5, seed: int = 0) -> np.ndarray:
    """n vectors around `clusters` random centres (real embeddings cluster by topic; Gaussian noise would not)
    -> (n, d) float32. The centres are always the same; `seed` draws the points (queries: another seed)."""
    centres = np.random.default_rng(12345).standard_normal((clusters, d), dtype=np.float32)
    rng = np.random.default_rng(seed)
    which = rng.integers(0, clusters, size=n)
    x = np.empty((n, d), dtype=np.float32)
    for start in range(0, n, 100_000):  # in slices: the noise of 1M × 128 at once is another 512 MB
        stop = min(n, start + 100_000)
        x[start:stop] = centres[which[start:stop]] + spread * rng.standard_normal((stop - start, d), dtype=np.float32)
    return x


def corpus_vectors(limit_queries: int = 600) -> tuple[np.ndarray, np.ndarray]:
    """The shipped model's d(z) (N, D) and q(x) of QA dev questions (Q, D)."""
    import ragedu
    from ragedu.tasks import load_task

    model = ragedu.load_default()
    questions = [e.question for e in load_task("qa", "dev")][:limit_queries]
    with torch.no_grad():
        q_x = model.retriever.encode_questions(questions)
    return model.retriever.d_z.numpy().astype(np.float32), q_x.numpy().astype(np.float32)


def extrapolate(row: dict, n: int = PAPER["passages"], d: int = PAPER["dim"]) -> dict:
    """The large run scaled to n vectors of size d, under stated rules (an order of magnitude, not a measurement):
    bytes     the part that grows with d (4·D per vector for flat and HNSW, m·nbits/8 code bytes for IVF-PQ,
              whose m ∝ D) is scaled by d/D, the rest per vector (graph links, ids) kept, times n/N
    build     flat ∝ N·D;  hnsw ∝ N·log N·D;  ivfpq not extrapolated (k-means training on a sample dominates
              at 1M, and it does not grow like N)
    queries/s flat ∝ 1/(N·D);  hnsw ∝ 1/(log N·D);  ivfpq ∝ 1/(√N·D) (lists scanned grow as √N)"""
    N, D, kind = row["n"], row["dim"], row["kind"]
    pq = ivfpq_settings(N, D)
    per_dim = {"flat": 4 * D, "hnsw": 4 * D, "ivfpq": pq.m * pq.nbits / 8}[kind]  # bytes per vector that scale with D
    fixed = row["bytes"] / N - per_dim
    grow = {"flat": n / N, "hnsw": n * math.log(n) / (N * math.log(N)), "ivfpq": None}[kind]
    slow = {"flat": n / N, "hnsw": math.log(n) / math.log(N), "ivfpq": (n / N) ** 0.5}[kind]
    return {"kind": kind, "n": n, "dim": d, "gb": round(n * (per_dim * d / D + fixed) / 1e9, 1),
            "build_cpu_hours": None if grow is None else round(row["build_cpu_s"] * grow * d / D / 3600, 1),
            "queries_per_cpu_s": round(row["queries_per_cpu_s"] / (slow * d / D), 2),
            "paper_gb": PAPER["gb_compressed"] if kind == "ivfpq" else PAPER["gb_flat"]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--n", type=int, default=1_000_000, help="synthetic vectors (default 1,000,000)")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--corpus-only", action="store_true", help="skip the large synthetic run")
    args = parser.parse_args(argv)

    d_z, q_x = corpus_vectors()
    result = {"threads": faiss.omp_get_max_threads(), "corpus": index_costs(d_z, q_x)}
    if not args.corpus_only:
        x = clustered_vectors(args.n, d_z.shape[1])
        queries = clustered_vectors(args.queries, d_z.shape[1], seed=1)  # same centres (seed 0), new points
        result["large"] = index_costs(x, queries)
        result["paper_scale"] = [extrapolate(row) for row in result["large"]]
    if args.json:
        print(json.dumps(result))
        return
    for size in ("corpus", "large"):
        for r in result.get(size, []):
            print(f"{size:6} {r['kind']:6} N={r['n']:>9,} build {r['build_s']:8.2f} s ({r['build_cpu_s']:8.2f} CPU s)  "
                  f"{r['bytes'] / 1e6:9.1f} MB  {r['queries_per_s']:10.1f} q/s ({r['queries_per_cpu_s']:10.1f} per CPU s)  "
                  f"recall@5 {r['recall_at_5']:.3f}  @10 {r['recall_at_10']:.3f}")
    for r in result.get("paper_scale", []):
        print(f"21M×768 {r['kind']:6} ≈ {r['gb']:6.1f} GB (paper {r['paper_gb']} GB)  build ≈ {r['build_cpu_hours']} CPU h  "
              f"≈ {r['queries_per_cpu_s']} queries per CPU s")


if __name__ == "__main__":
    main()
