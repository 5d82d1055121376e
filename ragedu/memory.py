"""Swapping the memory: the same RAG model over another corpus and its index.   (notebook 6)

Swapping the memory replaces the passages z and their index d(z), nothing else: the query encoder q(x), the
frozen document encoder BERT_d and the generator θ are the very same tensors. The new index is built at
load time with the model's own document encoder (2.4k passages encode in a few seconds), so it can never go
stale when the model is retrained, and nothing is ever written into the model's directory.
The memory's editions are ragedu.editions; what the swap does to answers, ragedu.hotswap.
"""
from __future__ import annotations

from ragedu.corpus import Corpus
from ragedu.model import RagModel
from ragedu.retriever import Retriever, build_index, encode_passages, index_kind_of


def swap_memory(model: RagModel, corpus: Corpus, index_kind: str | None = None, progress: bool = False) -> RagModel:
    """A RagModel with the same encoders and generator (the very same tensors) over another corpus.
    d(z) is computed with the model's own frozen document encoder; the index is of `index_kind`
    (default: the kind the model already uses)."""
    old = model.retriever
    kind = index_kind or index_kind_of(old.index)
    d_z = encode_passages(old.doc_encoder, old.tokenizer, corpus, progress=progress, pooling=old.pooling)  # (N, D)
    retriever = Retriever(old.query_encoder, old.doc_encoder, old.tokenizer, corpus, d_z, build_index(d_z, kind),
                          old.max_len, old.pooling, old.relevance_threshold, old.empty_passage)  # same encoders: same ∅, τ
    return RagModel(retriever, model.generator).eval()



if __name__ == "__main__":  # the command data/README.md names for the editions
    raise SystemExit("the memory's editions are rebuilt by `python -m ragedu.editions`")
