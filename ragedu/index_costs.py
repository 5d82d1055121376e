"""What each index kind costs and what it misses: build time, bytes, queries per second, recall of exact search.   (notebook 6)

For each kind of ragedu.retriever.INDEX_KINDS (flat = exact inner product, hnsw, ivfpq) over the same vectors:
build time (wall clock and CPU time, which a busy machine does not inflate), bytes in memory (the serialised
index), queries per second (one batch of all queries, k = 10) and recall@5 / @10 against exact search.
benchmarks/index.py runs it at our corpus's size and at a million vectors, and extrapolates to the paper's index.
"""
from __future__ import annotations

import time

import faiss
import numpy as np
import torch

from ragedu.retriever import INDEX_KINDS, build_index


def recall(found: np.ndarray, exact: np.ndarray, k: int) -> float:
    """Share of the exact top-k that the index also returns in its top-k    (Q, ≥k), (Q, ≥k)"""
    hits = [len(set(f[:k]) & set(e[:k])) for f, e in zip(found, exact)]
    return round(sum(hits) / (k * len(found)), 4)


def measure(kind: str, x: np.ndarray, queries: np.ndarray, exact: np.ndarray | None) -> dict:
    """Build one index over x (N, D), search it with queries (Q, D); exact = flat's top-10 ids (Q, 10)."""
    wall, cpu = time.perf_counter(), time.process_time()
    index = build_index(torch.from_numpy(x), kind)
    build_s, build_cpu_s = time.perf_counter() - wall, time.process_time() - cpu
    wall, cpu = time.perf_counter(), time.process_time()
    _, found = index.search(queries, 10)                                    # (Q, 10)
    search_s, search_cpu_s = time.perf_counter() - wall, time.process_time() - cpu
    exact = found if exact is None else exact
    # CPU seconds as well as wall seconds: on a shared machine the wall clock also counts other people's work
    return {"kind": kind, "n": len(x), "dim": x.shape[1], "build_s": round(build_s, 3),
            "build_cpu_s": round(build_cpu_s, 3), "bytes": int(faiss.serialize_index(index).size),
            "queries_per_s": round(len(queries) / search_s, 1),
            "queries_per_cpu_s": round(len(queries) / max(search_cpu_s, 1e-9), 1),
            "recall_at_5": recall(found, exact, 5), "recall_at_10": recall(found, exact, 10), "_ids": found}



def index_costs(x: np.ndarray, queries: np.ndarray) -> list[dict]:
    """Every index kind over the same vectors (N, D), searched with queries (Q, D); flat first, as the exact
    reference    -> one dict per kind: kind, n, dim, build_s, build_cpu_s, bytes, queries_per_s,
    queries_per_cpu_s, recall_at_5, recall_at_10"""
    rows, exact = [], None
    for kind in INDEX_KINDS:
        row = measure(kind, x, queries, exact)
        exact = row.pop("_ids") if kind == "flat" else exact
        row.pop("_ids", None)
        rows.append(row)
    return rows
