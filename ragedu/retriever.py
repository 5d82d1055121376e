"""The retriever p_η(z|x): a DPR-style bi-encoder over a FAISS maximum-inner-product index.   (notebook 1)

Dims: B questions · K retrieved passages · N corpus passages · D embedding

    d(z) = BERT_d(z)          document encoder, run once over the corpus; frozen; vectors kept in the index
    q(x) = BERT_q(x)          query encoder; the only retriever weights RAG fine-tunes (η)
    p_η(z|x) ∝ exp(d(z)ᵀq(x))  over the top-K passages that FAISS finds by maximum inner product search

Subtle: the softmax runs over the top-K only, so p(z|x) is renormalised within them. On our small corpus
`full_log_p_z` computes the exact posterior over every passage, so a notebook can show what top-K drops.
Gradient reaches the query encoder only through the scores d(z)ᵀq(x), recomputed in torch from the
stored vectors: FAISS itself only chooses which K passages to score.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import faiss
import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm
from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

from ragedu import checks
from ragedu.corpus import Corpus, passage_text
from ragedu.errors import RagEduError
from ragedu.relevance import EmptyPassage, MemorySignal, margin, memory_signals

INDEX_KINDS = ("flat", "hnsw", "ivfpq")  # exact MIPS; a navigable graph (the paper's); inverted lists + product quantisation
HNSW_M = 32                # graph neighbours per vector (FAISS's default for IndexHNSWFlat)
HNSW_EF_CONSTRUCTION = 40  # candidates kept while inserting (FAISS's default)
HNSW_EF_SEARCH = 64        # candidates kept while searching: recall against speed (FAISS's default is 16)


@dataclass
class EncoderConfig:
    """A small BERT for either encoder; both start from one shared encoder (see `new_encoder`)."""

    vocab_size: int
    dim: int = 128
    layers: int = 2
    heads: int = 4
    max_len: int = 128


def new_encoder(config: EncoderConfig, seed: int = 0) -> BertModel:
    """A randomly initialised BERT whose [CLS] (here <s>) vector is the embedding."""
    torch.manual_seed(seed)
    bert = BertConfig(
        vocab_size=config.vocab_size, hidden_size=config.dim, num_hidden_layers=config.layers,
        num_attention_heads=config.heads, intermediate_size=4 * config.dim,
        max_position_embeddings=config.max_len, pad_token_id=0,
    )
    return BertModel(bert, add_pooling_layer=False)


POOLINGS = ("mean", "dpr")  # ragedu's own encoders / Hugging Face DPR encoders


def embed(encoder: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
          pooling: str = "mean") -> torch.Tensor:
    """One vector per text    (B, L) -> (B, D)

    "mean": the mean of the last hidden states over the real tokens (ragedu's encoders).
    "dpr":  the encoder's `pooler_output`, DPR's [CLS] vector (projected if the DPR config has a projection),
            for Hugging Face DPRQuestionEncoder / DPRContextEncoder.
    DPR takes the [CLS] vector; on our corpus a small encoder trained that way sat at chance for
    its first 150 steps, while the mean learned from the first step (measured in the training notes).
    """
    if pooling not in POOLINGS:
        raise ValueError(f"unknown pooling {pooling!r}; choose one of {POOLINGS}")
    device = next(encoder.parameters()).device  # tokenizers return CPU tensors; the encoder may be on a GPU
    input_ids, attention_mask = input_ids.to(device), attention_mask.to(device)
    out = encoder(input_ids=input_ids, attention_mask=attention_mask)
    if pooling == "dpr":
        return out.pooler_output                                                         # (B, D)
    h = out.last_hidden_state                                                            # (B, L, D)
    mask = attention_mask[..., None].to(h.dtype)                                         # (B, L, 1)
    return (h * mask).sum(1) / mask.sum(1)


def embedding_dim(encoder: nn.Module) -> int:
    """D, the size of the vectors `embed` returns: a DPR projection if there is one, else the hidden size."""
    return getattr(encoder.config, "projection_dim", 0) or encoder.config.hidden_size


def check_questions(questions: list[str]) -> list[str]:
    """A non-empty list of questions with words in them (ragedu.checks.questions)."""
    return checks.questions(questions)


def check_positions(encoder: nn.Module, max_len: int, what: str) -> None:
    """Refuse to read `max_len` tokens with an encoder whose position embeddings hold fewer."""
    positions = getattr(encoder.config, "max_position_embeddings", None)
    if positions is not None and max_len > positions:
        raise RagEduError(f"{what} are cut at {max_len} tokens but the encoder holds {positions} positions; "
                          f"choose a length of at most {positions}")


@torch.no_grad()
def encode_passages(encoder: nn.Module, tokenizer: PreTrainedTokenizerFast, corpus: Corpus,
                    batch_size: int = 256, max_len: int = 128, progress: bool = True,
                    pooling: str = "mean") -> torch.Tensor:
    """d(z) for every passage, in corpus order    -> (N, D)
    With pooling="dpr" the passage is read as DPR was trained to read it: the pair
    `[CLS] title [SEP] text [SEP]`, token types all 0, and the [CLS] vector as d(z)."""
    check_positions(encoder, max_len, "passages")
    was_training = encoder.training
    encoder.eval()
    passages = list(corpus)
    vectors = []
    for start in tqdm(range(0, len(passages), batch_size), desc="encoding passages", disable=not progress):
        chunk = passages[start:start + batch_size]
        if pooling == "dpr":
            batch = tokenizer([p.title for p in chunk], [p.text for p in chunk], padding=True,
                              truncation="only_second", max_length=max_len, return_tensors="pt")
        else:
            batch = tokenizer([passage_text(p.title, p.text) for p in chunk], padding=True, truncation=True,
                              max_length=max_len, return_tensors="pt")
        vectors.append(embed(encoder, batch.input_ids, batch.attention_mask, pooling))
    encoder.train(was_training)
    return torch.cat(vectors).float()


@dataclass(frozen=True)
class IvfPqSettings:
    """The sizes of an IVF-PQ index for N vectors of size D, chosen from N (see `ivfpq_settings`)."""

    nlist: int   # inverted lists: k-means cells, each vector stored in the list of its nearest centroid
    m: int       # sub-vectors per vector; each is stored as one code of `nbits` bits
    nbits: int   # bits per code: 2^nbits centroids per sub-quantizer
    nprobe: int  # lists searched per query
    train: int   # vectors the two k-means (cells and codebooks) are trained on: a seeded sample


def ivfpq_settings(N: int, D: int) -> IvfPqSettings:
    """Defaults that work from a toy corpus up to millions of vectors.
    nlist ≈ √N cells, at most N/39: k-means wants ~39 training points per centroid (FAISS's rule of thumb
                 is 4√N…16√N cells at scale; √N keeps a small corpus's lists full);
    m = D/4      4 dimensions per one-byte code: 32 bytes for a 128-d vector instead of 512 (16× smaller);
                 D/8 (16 bytes) halved recall@10 on our corpus (0.55 against 0.75, benchmarks/index.py);
    nbits = 8    256 centroids per sub-quantizer, fewer only below 256 vectors; FAISS asks for 39 × 256 training
                 points and warns below, but on our 2,439 passages 8 bits still beat 5 (recall@10 0.55 vs 0.40);
    nprobe       16 lists per query (all of them when there are fewer), nlist/16 at scale."""
    nlist = max(1, min(round(N ** 0.5), N // 39))
    nbits = max(1, min(8, int(np.log2(N))))
    m = max(d for d in range(1, max(1, D // 4) + 1) if D % d == 0)
    nprobe = min(nlist, max(16, nlist // 16))
    train = min(N, 40 * max(nlist, 2 ** nbits))  # ~40 points per centroid: more only slows k-means down
    return IvfPqSettings(nlist, m, nbits, nprobe, train)


def build_index(d_z: torch.Tensor, kind: str = "flat") -> faiss.Index:
    """A FAISS inner-product index over the document vectors    (N, D)
    flat   exact search: every query scores all N vectors
    hnsw   a hierarchical navigable small-world graph over the exact vectors: approximate, fast, more memory
    ivfpq  inverted lists of product-quantised codes: approximate, compressed (the paper's 36 GB index)"""
    if kind not in INDEX_KINDS:
        raise ValueError(f"unknown index kind {kind!r}; choose one of {INDEX_KINDS}")
    x = np.ascontiguousarray(d_z.detach().cpu().numpy(), dtype=np.float32)  # (N, D)
    N, D = x.shape
    if kind == "flat":
        index = faiss.IndexFlatIP(D)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(D, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = HNSW_EF_SEARCH
    else:
        s = ivfpq_settings(N, D)
        quantizer = faiss.IndexFlatIP(D)
        index = faiss.IndexIVFPQ(quantizer, D, s.nlist, s.m, s.nbits, faiss.METRIC_INNER_PRODUCT)
        index.own_fields = True
        quantizer.this.disown()  # the index owns its quantizer now (kept alive after this function returns)
        sample = np.random.default_rng(0).choice(N, size=s.train, replace=False) if s.train < N else np.arange(N)
        index.cp.min_points_per_centroid = 1  # a toy corpus: no warning, we chose the sizes above
        index.pq.cp.min_points_per_centroid = 1
        index.train(x[np.sort(sample)])
        index.nprobe = s.nprobe
    index.add(x)
    return index


def index_kind_of(index: faiss.Index) -> str:
    """'flat', 'hnsw' or 'ivfpq' for an index `build_index` made (or `load_index` read)."""
    for kind, cls in (("flat", faiss.IndexFlat), ("hnsw", faiss.IndexHNSW), ("ivfpq", faiss.IndexIVFPQ)):
        if isinstance(index, cls):
            return kind
    raise ValueError(f"a {type(index).__name__} is none of the index kinds {INDEX_KINDS}")


def save_index(index: faiss.Index, path: str | Path) -> None:
    faiss.write_index(index, str(path))


def load_index(path: str | Path) -> faiss.Index:
    """Read an index file, refusing one that is truncated, corrupt or not ranking by inner product."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"index file {path} does not exist")
    if path.stat().st_size == 0:
        raise ValueError(f"index file {path} is empty (truncated or corrupt)")
    try:
        index = faiss.read_index(str(path))
    except (RuntimeError, MemoryError, OverflowError) as error:
        raise ValueError(f"index file {path} is truncated or corrupt: {str(error).splitlines()[0]}") from None
    if index.metric_type != faiss.METRIC_INNER_PRODUCT:
        raise ValueError(f"index file {path} ranks by distance (metric {index.metric_type}), "
                         "not by inner product d(z)ᵀq(x); rebuild it with build_index")
    return index


def index_vectors(index: faiss.Index) -> torch.Tensor | None:
    """The exact vectors d(z) a flat or HNSW index keeps    -> (N, D); None for IVF-PQ, which keeps only codes."""
    if index_kind_of(index) == "ivfpq":
        return None
    return torch.from_numpy(index.reconstruct_n(0, index.ntotal))


def top_k_posterior(scores: torch.Tensor) -> torch.Tensor:
    """p(z|x) renormalised over the K passages retrieved, the paper's truncation of the sum over the corpus
        log p_K(z|x) = d(z)ᵀq(x) - log Σ_{z' in top K} exp d(z')ᵀq(x)        (B, K) -> (B, K)
    The same of the top K of log p(z|x) over the whole corpus: a softmax does not see a shift of its inputs."""
    return scores.log_softmax(dim=-1)


@dataclass
class Retrieved:
    """The top-K passages for each question, with what a plot or the generator needs."""

    questions: list[str]     # B
    ids: list[list[str]]     # B × K passage ids
    titles: list[list[str]]  # B × K
    texts: list[list[str]]   # B × K
    rows: torch.Tensor       # (B, K) rows in the corpus / index
    d_z: torch.Tensor        # (B, K, D) document vectors d(z)
    scores: torch.Tensor     # (B, K) d(z)ᵀq(x)
    log_p_z: torch.Tensor    # (B, K) log p(z|x), renormalised over the top-K
    margin: torch.Tensor | None = None  # (B,) s(x) of ragedu.relevance: the best score above the empty passage's
    threshold: float | None = None  # τ of ragedu.relevance, calibrated on dev questions; None if not calibrated

    @property
    def k(self) -> int:
        return self.rows.shape[1]

    def top(self, k: int) -> Retrieved:
        """The first K of these passages, with p(z|x) renormalised over them (`top_k_posterior`)
        (B, K_max) -> (B, K): the same as `retriever.retrieve(questions, K)`, without encoding the questions again."""
        return self.between(0, checks.count("K", k, 1, self.k, hint=", the passages retrieved per question"))

    def between(self, start: int, stop: int) -> Retrieved:
        """Passages start … stop−1 of these, p(z|x) renormalised over them    (B, K) -> (B, stop − start)
        (the explorer searches the passages a larger K adds, and only those: RAG-Sequence's beams are per passage)"""
        stop = checks.count("stop", stop, 1, self.k, hint=", the passages retrieved per question")
        start = checks.count("start", start, 0, stop - 1, hint=", a passage before stop")
        scores = self.scores[:, start:stop]                                    # (B, K') d(z)ᵀq(x)
        return replace(self, ids=[r[start:stop] for r in self.ids], titles=[r[start:stop] for r in self.titles],
                       texts=[r[start:stop] for r in self.texts], rows=self.rows[:, start:stop],
                       d_z=self.d_z[:, start:stop], scores=scores, log_p_z=top_k_posterior(scores))

    @property
    def memory_signals(self) -> list[MemorySignal] | None:
        """Per question: do the raw scores d(z)ᵀq(x) say the memory holds nothing on it? (ragedu.relevance)"""
        return memory_signals(self.margin, self.threshold)


class Retriever(nn.Module):
    """Query encoder (trainable), document encoder (frozen), the corpus and its index."""

    def __init__(self, query_encoder: nn.Module, doc_encoder: nn.Module, tokenizer: PreTrainedTokenizerFast,
                 corpus: Corpus, d_z: torch.Tensor, index: faiss.Index, max_len: int = 64,
                 pooling: str = "mean", relevance_threshold: float | None = None,
                 empty_passage: EmptyPassage | None = None):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {pooling!r}; choose one of {POOLINGS}")
        N, D = d_z.shape
        if N != len(corpus) or index.ntotal != len(corpus):
            raise ValueError(f"corpus has {len(corpus)} passages but the vectors have {N} rows "
                             f"and the index {index.ntotal}; rebuild the index for this corpus")
        check_positions(query_encoder, max_len, "questions")
        q_dim = embedding_dim(query_encoder)
        if index.d != D or q_dim != D:
            raise ValueError(f"embedding sizes disagree: query encoder {q_dim}, document vectors {D}, "
                             f"index {index.d}; the index must be built by a document encoder of the "
                             "query encoder's size")
        self.query_encoder = query_encoder
        self.doc_encoder = doc_encoder.requires_grad_(False)  # frozen: the index was built with it
        self.tokenizer = tokenizer
        self.corpus = corpus
        self.register_buffer("d_z", d_z.float(), persistent=False)  # (N, D), the vectors in the index
        self.index = index
        self.max_len = max_len
        self.pooling = pooling  # how q(x) is read off the query encoder: "mean", or "dpr" ([CLS] pooler)
        self.relevance_threshold = relevance_threshold  # τ of ragedu.relevance, or None
        self.empty_passage = None if empty_passage is None else empty_passage.requires_grad_(False)
        # ∅ of ragedu.relevance, trained with the document encoder and frozen with it; None: no memory signal

    @classmethod
    def build(cls, query_encoder: nn.Module, doc_encoder: nn.Module, tokenizer: PreTrainedTokenizerFast,
              corpus: Corpus, index_kind: str = "flat", progress: bool = True, pooling: str = "mean",
              empty_passage: EmptyPassage | None = None) -> "Retriever":
        """Encode the corpus with the document encoder and index it once."""
        d_z = encode_passages(doc_encoder, tokenizer, corpus, progress=progress, pooling=pooling)
        return cls(query_encoder, doc_encoder, tokenizer, corpus, d_z, build_index(d_z, index_kind),
                   pooling=pooling, empty_passage=empty_passage)

    def encode_questions(self, questions: list[str]) -> torch.Tensor:
        """q(x)    -> (B, D), with gradient to the query encoder"""
        questions = check_questions(questions)
        batch = self.tokenizer(questions, padding=True, truncation=True, max_length=self.max_len,
                               return_tensors="pt")
        return embed(self.query_encoder, batch.input_ids, batch.attention_mask, self.pooling)

    def retrieve(self, questions: list[str], k: int) -> Retrieved:
        """The top-K passages by d(z)ᵀq(x) and log p(z|x) renormalised over them."""
        N = len(self.corpus)
        k = checks.count("K", k, 1, N, what="the corpus size ")
        q_x = self.encode_questions(questions)                                # (B, D)
        _, found = self.index.search(np.ascontiguousarray(q_x.detach().float().cpu().numpy()), k)  # FAISS: CPU
        if (found < 0).any():  # FAISS pads with -1 when it finds fewer than K
            raise RuntimeError(f"the index returned fewer than K={k} passages; use a larger index or smaller K")
        rows = torch.from_numpy(found).long().to(self.d_z.device)              # (B, K)
        d_z = self.d_z[rows]                                                   # (B, K, D)
        scores = torch.einsum("bkd,bd->bk", d_z, q_x)                         # (B, K) d(z)ᵀq(x)
        passages = [[self.corpus[r] for r in row] for row in rows.tolist()]
        return Retrieved(
            questions=list(questions),
            ids=[[p.id for p in ps] for ps in passages],
            titles=[[p.title for p in ps] for ps in passages],
            texts=[[p.text for p in ps] for ps in passages],
            rows=rows, d_z=d_z, scores=scores, log_p_z=top_k_posterior(scores),
            margin=None if self.empty_passage is None else
            margin(scores.detach().max(-1).values, self.empty_passage(q_x.detach()).detach()),
            threshold=self.relevance_threshold,
        )

    def full_log_p_z(self, questions: list[str]) -> torch.Tensor:
        """The exact posterior over the whole corpus, log softmax_N(d(z)ᵀq(x))    -> (B, N)"""
        q_x = self.encode_questions(questions)  # (B, D)
        return (q_x @ self.d_z.T).log_softmax(dim=-1)
