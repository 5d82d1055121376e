"""Saving and loading a RAG model directory; the shipped default model.   (every notebook)

A model directory holds plain files, weights in safetensors (no pickle):

    config.json                  sizes of the encoders and the generator, the fingerprints of the corpus and
                                 of the document encoder the index was built with, the index kind
    tokenizer.json               the generator's cased vocabulary
    retriever_tokenizer.json     the encoders' uncased vocabulary (absent: the encoders read tokenizer.json too)
    query_encoder.safetensors    q(x), fine-tuned by RAG
    doc_encoder.safetensors      d(z), frozen after the retriever's pre-training
    generator.safetensors        BART
    closed_book.safetensors      the same BART trained without retrieval (the paper's BART row), optional
    corpus.jsonl, index.faiss    the non-parametric memory: passages and their vectors d(z) (flat, hnsw or ivfpq)
    train_log.jsonl              loss per step, for the training notebook
"""
from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ragedu.corpus import DATA_DIR, Corpus, load_corpus, save_corpus
from ragedu.generator import Generator, GeneratorConfig, new_bart
from ragedu.model import RagModel
from ragedu.retriever import (EncoderConfig, Retriever, encode_passages, index_kind_of, index_vectors, load_index,
                              new_encoder, save_index)
from ragedu.tokenizer import load_tokenizer, save_tokenizer

DEFAULT_MODEL_DIR = DATA_DIR / "model"
FORMAT = "ragedu-model/1"
REQUIRED_FILES = ("config.json", "tokenizer.json", "query_encoder.safetensors", "doc_encoder.safetensors",
                  "generator.safetensors", "corpus.jsonl", "index.faiss")


def corpus_fingerprint(corpus: Corpus) -> str:
    """A hash of every passage, so an index is never paired with another corpus."""
    h = hashlib.sha256()
    for p in corpus:
        h.update(json.dumps([p.id, p.title, p.text], ensure_ascii=False).encode())
    return h.hexdigest()[:16]


def weights_fingerprint(module: nn.Module) -> str:
    """A hash of a module's tensors (names, shapes and bytes): which document encoder built an index."""
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().cpu().contiguous().float().numpy().tobytes())
    return h.hexdigest()[:16]


SPOT_CHECK = 8  # passages re-encoded at load time to check that the index holds this document encoder's d(z)


def check_index_matches(index, d_z_index: torch.Tensor | None, d_z_encoded: torch.Tensor, path: Path) -> None:
    """Refuse an index whose first vectors are not what the document encoder makes of the first passages.
    Flat and HNSW keep the vectors exactly (up to float error); IVF-PQ keeps a lossy code of each one."""
    n = d_z_encoded.shape[0]
    if d_z_index is None:  # IVF-PQ: decode the codes
        import faiss
        faiss.extract_index_ivf(index).make_direct_map()
        d_z_index, tolerance = torch.from_numpy(index.reconstruct_n(0, n)), 0.5
    else:
        d_z_index, tolerance = d_z_index[:n], 1e-3
    error = ((d_z_index - d_z_encoded).norm(dim=-1) / d_z_encoded.norm(dim=-1).clamp_min(1e-12)).max().item()
    if error > tolerance:
        raise ValueError(f"{path} was not built by this model's document encoder: its first {n} vectors differ "
                         f"from d(z) by {error:.0%} (allowed {tolerance:.1%}); rebuild the index with the "
                         "model's doc_encoder (ragedu.memory.swap_memory)")


TIED = ("lm_head.weight", "embed_tokens.weight")  # BART's copies of its shared embedding matrix


def untied_tensors(module: nn.Module) -> dict[str, torch.Tensor]:
    """A module's tensors for safetensors, which refuses shared storage: BART's tied copies are left out
    (they come back from `model.shared.weight` through `tie_weights` on loading)."""
    return {name: t.detach().contiguous().clone() for name, t in module.state_dict().items()
            if not name.endswith(TIED)}


def _load_weights(module: nn.Module, path: Path) -> None:
    """Read safetensors weights into `module`, refusing missing, extra or mis-shaped tensors."""
    weights = load_file(str(path))
    expected = module.state_dict()
    tied = {n for n in expected if n.endswith(TIED)} - weights.keys()
    missing = expected.keys() - weights.keys() - tied
    extra = weights.keys() - expected.keys()
    wrong = [f"{n}: file {tuple(weights[n].shape)} vs model {tuple(expected[n].shape)}"
             for n in expected.keys() & weights.keys() if weights[n].shape != expected[n].shape]
    if missing or extra or wrong:
        problems = ([f"missing {sorted(missing)[:3]}"] if missing else []) + \
                   ([f"unexpected {sorted(extra)[:3]}"] if extra else []) + wrong[:3]
        raise ValueError(f"{path.name} does not fit the model in config.json: " + "; ".join(problems))
    module.load_state_dict(weights, strict=False)
    if tied:  # shared embeddings are stored once by safetensors
        module.tie_weights()


@contextmanager
def atomic_directory(path: Path):
    """Yield a temporary sibling of `path` to write into; on success it replaces `path` (the old directory is
    removed only once the new one is complete), on any failure it is deleted and `path` is left as it was."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            path.rename(old)
            tmp.rename(path)
            shutil.rmtree(old)
        else:
            tmp.rename(path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def save(model: RagModel, path: str | Path, encoder: EncoderConfig, generator: GeneratorConfig,
         closed_book: Generator | None = None, extra_files: dict[str, Path] | None = None) -> Path:
    """Write a model directory atomically: into a temporary sibling, then renamed over `path`.
    The retriever's relevance threshold τ (ragedu.relevance), if calibrated, goes into config.json."""
    if model.retriever.pooling != "mean":  # DPR encoders and BART's own BPE do not fit this format
        raise ValueError("this model was loaded by ragedu.from_hf (DPR encoders, BART-large); ragedu's model "
                         "directory holds only ragedu's own small models. Save it with ragedu.hf.save_hf(model, "
                         "path), a Hugging Face RAG checkpoint with corpus.jsonl and index.faiss beside it")
    path = Path(path)
    with atomic_directory(path) as tmp:
        corpus = model.retriever.corpus
        config = {
            "format": FORMAT, "encoder": asdict(encoder), "generator": asdict(generator),
            "max_input_len": model.generator.max_input_len, "max_question_len": model.generator.max_question_len,
            "query_max_len": model.retriever.max_len, "passages": len(corpus),
            "corpus_fingerprint": corpus_fingerprint(corpus), "closed_book": closed_book is not None,
            "index_kind": index_kind_of(model.retriever.index),
            "doc_encoder_fingerprint": weights_fingerprint(model.retriever.doc_encoder),
            "relevance_threshold": model.retriever.relevance_threshold,
        }
        (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        save_tokenizer(model.generator.tokenizer, tmp / "tokenizer.json")
        if model.retriever.tokenizer is not model.generator.tokenizer:
            save_tokenizer(model.retriever.tokenizer, tmp / "retriever_tokenizer.json")
        save_file(untied_tensors(model.retriever.query_encoder), str(tmp / "query_encoder.safetensors"))
        save_file(untied_tensors(model.retriever.doc_encoder), str(tmp / "doc_encoder.safetensors"))
        save_file(untied_tensors(model.generator.model), str(tmp / "generator.safetensors"))
        if closed_book is not None:
            save_file(untied_tensors(closed_book.model), str(tmp / "closed_book.safetensors"))
        save_corpus(corpus, tmp / "corpus.jsonl")
        save_index(model.retriever.index, tmp / "index.faiss")
        for name, source in (extra_files or {}).items():
            shutil.copy(source, tmp / name)
    return path


def _read_config(path: Path) -> dict:
    if not path.is_dir():
        raise FileNotFoundError(f"model directory {path} does not exist; train one with `ragedu train`")
    missing = [f for f in REQUIRED_FILES if not (path / f).exists()]
    if missing:
        raise FileNotFoundError(f"model directory {path} lacks {missing}; it is incomplete or not a ragedu model")
    config = json.loads((path / "config.json").read_text())
    if config.get("format") != FORMAT:
        raise ValueError(f"{path / 'config.json'} has format {config.get('format')!r}; expected {FORMAT!r}")
    return config


def load(path: str | Path = DEFAULT_MODEL_DIR, progress: bool = False, memory: str | None = None) -> RagModel:
    """Read a model directory written by `save` (or `ragedu train`), ready for eval.
    memory: None for the model's own memory, or an edition of ragedu.memory.EDITIONS ("2000", "today"):
    the passages and their index are swapped, the encoders and the generator are the same weights.
    Nothing is written: the edition's index is built in memory with the model's document encoder."""
    if memory is not None:
        from ragedu.memory import check_edition, load_edition, swap_memory

        corpus = load_edition(check_edition(memory))
        model = load(path, progress)
        if corpus_fingerprint(corpus) == corpus_fingerprint(model.retriever.corpus):
            return model  # the model's own memory is this edition: keep its index
        return swap_memory(model, corpus, progress=progress)
    path = Path(path)
    config = _read_config(path)
    encoder, generator = EncoderConfig(**config["encoder"]), GeneratorConfig(**config["generator"])
    tokenizer = load_tokenizer(path / "tokenizer.json")
    retriever_tokenizer = (load_tokenizer(path / "retriever_tokenizer.json")
                           if (path / "retriever_tokenizer.json").exists() else tokenizer)
    for name, tok, size, what in (("tokenizer.json", tokenizer, generator.vocab_size, "generator"),
                                  ("retriever_tokenizer.json", retriever_tokenizer, encoder.vocab_size, "encoder")):
        if len(tok) != size:
            raise ValueError(f"{name} has {len(tok)} tokens but config.json says the {what} has {size}")
    corpus = load_corpus(path / "corpus.jsonl")
    if corpus_fingerprint(corpus) != config["corpus_fingerprint"]:
        raise ValueError(f"{path / 'corpus.jsonl'} is not the corpus this model's index was built from "
                         "(fingerprints differ)")
    query_encoder, doc_encoder = new_encoder(encoder), new_encoder(encoder)
    _load_weights(query_encoder, path / "query_encoder.safetensors")
    _load_weights(doc_encoder, path / "doc_encoder.safetensors")
    expected = config.get("doc_encoder_fingerprint")  # absent from directories saved before it was recorded
    if expected is not None and weights_fingerprint(doc_encoder) != expected:
        raise ValueError(f"{path / 'doc_encoder.safetensors'} is not the document encoder the index was built "
                         "with (fingerprints differ); the model directory mixes files of two models")
    index = load_index(path / "index.faiss")
    if index.ntotal != len(corpus) or index.d != encoder.dim:
        raise ValueError(f"index.faiss holds {index.ntotal} vectors of size {index.d}; the model needs "
                         f"{len(corpus)} of size {encoder.dim}")
    if config.get("index_kind", index_kind_of(index)) != index_kind_of(index):
        raise ValueError(f"index.faiss is a {index_kind_of(index)} index but config.json says {config['index_kind']}")
    d_z = index_vectors(index)  # (N, D): flat and HNSW keep the exact vectors
    spot = Corpus(list(corpus)[:SPOT_CHECK])
    check_index_matches(index, d_z, encode_passages(doc_encoder, retriever_tokenizer, spot, progress=False),
                        path / "index.faiss")
    if d_z is None:  # IVF-PQ keeps only codes: p(z|x) needs the exact d(z), so encode the corpus again
        d_z = encode_passages(doc_encoder, retriever_tokenizer, corpus, progress=progress)
    retriever = Retriever(query_encoder, doc_encoder, retriever_tokenizer, corpus, d_z, index,
                          config["query_max_len"], relevance_threshold=config.get("relevance_threshold"))
    return RagModel(retriever, _generator(path / "generator.safetensors", generator, tokenizer, config)).eval()


def _generator(weights: Path, config: GeneratorConfig, tokenizer, model_config: dict) -> Generator:
    bart = new_bart(config, tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id)
    _load_weights(bart, weights)
    return Generator(bart, tokenizer, model_config["max_input_len"], model_config["max_question_len"]).eval()


def load_closed_book(path: str | Path = DEFAULT_MODEL_DIR) -> Generator:
    """The baseline generator trained without retrieval, from the same model directory."""
    path = Path(path)
    config = _read_config(path)
    if not (path / "closed_book.safetensors").exists():
        raise FileNotFoundError(f"model directory {path} has no closed-book baseline (closed_book.safetensors)")
    return _generator(path / "closed_book.safetensors", GeneratorConfig(**config["generator"]),
                      load_tokenizer(path / "tokenizer.json"), config)


def load_default(memory: str | None = None) -> RagModel:
    """The small trained model shipped in data/model (built by `ragedu train`);
    memory="2000" swaps in the 2000 edition of its passages and index (see ragedu.memory)."""
    return load(DEFAULT_MODEL_DIR, memory=memory)
