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
    manifest.json                a SHA-256 digest of every other file (ragedu.manifest), checked before reading

`ragedu manifest DIR` checks a directory saved without a manifest (every passage
re-encoded and compared with its row of the index) and writes one.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from ragedu.corpus import DATA_DIR, Corpus, load_corpus, save_corpus
from ragedu.editions import check_edition, load_edition
from ragedu.errors import RagEduError, RagEduFileNotFound
from ragedu.generator import Generator, GeneratorConfig, new_bart
from ragedu.manifest import verify, write_manifest
from ragedu.memory import swap_memory
from ragedu.relevance import EmptyPassage
from ragedu.model import RagModel
from ragedu.retriever import (EncoderConfig, Retriever, encode_passages, index_kind_of, index_vectors, load_index,
                              new_encoder, save_index)
from ragedu.tokenizer import load_tokenizer, save_tokenizer

DEFAULT_MODEL_DIR = DATA_DIR / "model"
FORMAT = "ragedu-model/1"
REQUIRED_FILES = ("config.json", "tokenizer.json", "query_encoder.safetensors", "doc_encoder.safetensors",
                  "generator.safetensors", "corpus.jsonl", "index.faiss")
OPTIONAL_FILES = ("closed_book.safetensors", "retriever_tokenizer.json", "empty_passage.safetensors")


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


def spot_rows(N: int, n: int = SPOT_CHECK) -> list[int]:
    """n rows spread over the whole index, first and last included: a damaged manifest-less index or an
    edition's index is sampled everywhere, not only in its first rows."""
    return sorted({round(i * (N - 1) / max(n - 1, 1)) for i in range(n)})


def check_index_matches(index, rows: list[int], d_z_encoded: torch.Tensor, path: Path | str) -> None:
    """Refuse an index whose rows `rows` are not what the document encoder makes of those passages
    (d_z_encoded, (len(rows), D)). Flat and HNSW keep the vectors exactly (up to float error); IVF-PQ keeps a
    lossy code of each one."""
    import faiss
    if index_kind_of(index) == "ivfpq":  # decode the codes
        faiss.extract_index_ivf(index).make_direct_map()
        tolerance = 0.5
    else:
        tolerance = 1e-3
    d_z_index = torch.from_numpy(np.stack([index.reconstruct(r) for r in rows]))
    error = (d_z_index - d_z_encoded).norm(dim=-1) / d_z_encoded.norm(dim=-1).clamp_min(1e-12)   # (rows,)
    if error.max().item() > tolerance:
        row = rows[int(error.argmax())]
        raise RagEduError(f"{path} does not hold this model's d(z) of its passages: row {row} differs by "
                          f"{error.max().item():.0%} (allowed {tolerance:.1%}), so the index was built from "
                          "another corpus, another order or another document encoder; rebuild it with "
                          "ragedu.memory.swap_memory, or re-copy the model directory")


def check_retriever_index(retriever, path: Path | str, rows: list[int] | None = None) -> None:
    """Tie a retriever's index to its passages: every row of the index must be the retriever's d(z) (all
    rows, cheap), and the passages of `rows` (default: a spread sample; every row for `ragedu manifest`)
    re-encoded by its document encoder must be those vectors."""
    d_z_index = index_vectors(retriever.index)  # (N, D); None for IVF-PQ, whose codes the sample checks
    if d_z_index is not None:
        error = (d_z_index - retriever.d_z.cpu()).norm(dim=-1) / retriever.d_z.cpu().norm(dim=-1).clamp_min(1e-12)
        if error.max().item() > 1e-3:
            raise RagEduError(f"{path} does not hold this model's d(z) of its passages: row "
                              f"{int(error.argmax())} differs from the vectors p(z|x) is computed from; rebuild "
                              "it with ragedu.memory.swap_memory")
    rows = spot_rows(len(retriever.corpus)) if rows is None else rows
    sample = Corpus([retriever.corpus[r] for r in rows])
    d_z = encode_passages(retriever.doc_encoder, retriever.tokenizer, sample, progress=len(rows) > 256,
                          pooling=retriever.pooling)
    check_index_matches(retriever.index, rows, d_z, path)


TIED = ("lm_head.weight", "embed_tokens.weight")  # BART's copies of its shared embedding matrix


def untied_tensors(module: nn.Module) -> dict[str, torch.Tensor]:
    """A module's tensors for safetensors, which refuses shared storage: BART's tied copies are left out
    (they come back from `model.shared.weight` through `tie_weights` on loading)."""
    return {name: t.detach().contiguous().clone() for name, t in module.state_dict().items()
            if not name.endswith(TIED)}


def _load_weights(module: nn.Module, path: Path) -> None:
    """Read safetensors weights into `module`, refusing missing, extra or mis-shaped tensors."""
    try:
        weights = load_file(str(path))
    except (SafetensorError, OSError) as error:
        raise RagEduError(f"{path} is not a readable safetensors file ({str(error).splitlines()[0]}); re-copy "
                          "the model directory, or retrain it with `ragedu train`") from None
    expected = module.state_dict()
    tied = {n for n in expected if n.endswith(TIED)} - weights.keys()
    missing = expected.keys() - weights.keys() - tied
    extra = weights.keys() - expected.keys()
    wrong = [f"{n}: file {tuple(weights[n].shape)} vs model {tuple(expected[n].shape)}"
             for n in expected.keys() & weights.keys() if weights[n].shape != expected[n].shape]
    if missing or extra or wrong:
        problems = ([f"missing {sorted(missing)[:3]}"] if missing else []) + \
                   ([f"unexpected {sorted(extra)[:3]}"] if extra else []) + wrong[:3]
        raise RagEduError(f"{path.name} does not fit the model in config.json: " + "; ".join(problems))
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
    """Write a model directory atomically: into a temporary sibling, then renamed over `path`. The memory
    signal's τ (ragedu.relevance), if calibrated, goes into config.json and its ∅ into empty_passage.safetensors."""
    if model.retriever.pooling != "mean":  # DPR encoders and BART's own BPE do not fit this format
        raise RagEduError("this model was loaded by ragedu.from_hf (DPR encoders, BART-large); ragedu's model "
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
        if model.retriever.empty_passage is not None:  # ∅ of the memory signal (ragedu.relevance)
            save_file(untied_tensors(model.retriever.empty_passage), str(tmp / "empty_passage.safetensors"))
        save_file(untied_tensors(model.generator.model), str(tmp / "generator.safetensors"))
        if closed_book is not None:
            save_file(untied_tensors(closed_book.model), str(tmp / "closed_book.safetensors"))
        save_corpus(corpus, tmp / "corpus.jsonl")
        save_index(model.retriever.index, tmp / "index.faiss")
        for name, source in (extra_files or {}).items():
            shutil.copy(source, tmp / name)
        write_manifest(tmp)  # last: it describes the complete directory
    return path


CONFIG_KEYS = {"encoder": dict, "generator": dict, "max_input_len": int, "max_question_len": int,
               "query_max_len": int, "corpus_fingerprint": str}


def _read_config(path: Path, verified: bool = True) -> dict:
    """config.json of a model directory, after its manifest has verified every file (unless verified=False:
    only --write-manifest reads an unverified directory, and then checks its whole index)."""
    if not path.is_dir():
        raise RagEduFileNotFound(f"model directory {path} does not exist; train one with `ragedu train`")
    missing = [f for f in REQUIRED_FILES if not (path / f).exists()]
    if missing:
        raise RagEduFileNotFound(f"model directory {path} lacks {missing}; it is incomplete or not a ragedu model")
    if verified:
        verify(path, REQUIRED_FILES + OPTIONAL_FILES)
    where = path / "config.json"
    try:
        config = json.loads(where.read_text(encoding="utf-8"))
    except (ValueError, OSError) as error:
        raise RagEduError(f"{where} is not valid JSON ({error}); re-copy the model directory") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        found = config.get("format") if isinstance(config, dict) else type(config).__name__
        raise RagEduError(f"{where} has format {found!r}; expected {FORMAT!r}")
    wrong = [k for k, kind in CONFIG_KEYS.items() if not isinstance(config.get(k), kind)]
    for part, cls in (("encoder", EncoderConfig), ("generator", GeneratorConfig)):
        if part not in wrong:
            try:
                cls(**config[part])
            except TypeError:
                wrong.append(part)
    if wrong:
        raise RagEduError(f"{where} lacks or mistypes {wrong}; re-copy the model directory, or retrain it")
    return config


def _reading(path: Path, read):
    """read(path), with any failure to parse the file turned into one sentence naming it."""
    try:
        return read(path)
    except RagEduError:
        raise
    except Exception as error:  # tokenizers and json raise their own types; the file is at fault either way
        why = (str(error).splitlines() or [""])[0][:200]
        raise RagEduError(f"{path} cannot be read ({type(error).__name__}: {why}); re-copy the model directory, "
                          "or retrain it with `ragedu train`") from None


def load(path: str | Path = DEFAULT_MODEL_DIR, progress: bool = False, memory: str | None = None) -> RagModel:
    """Read a model directory written by `save` (or `ragedu train`), ready for eval.
    memory: None for the model's own memory, or an edition of ragedu.editions.EDITIONS ("2000", "today"):
    the passages and their index are swapped, the encoders and the generator are the same weights.
    Nothing is written: the edition's index is built in memory with the model's document encoder."""
    if memory is not None:
        corpus = load_edition(check_edition(memory))
        model = load(path, progress)
        if corpus_fingerprint(corpus) == corpus_fingerprint(model.retriever.corpus):
            return model  # the model's own memory is this edition: keep its index
        swapped = swap_memory(model, corpus, progress=progress)
        check_retriever_index(swapped.retriever, f"the index of edition {memory}")  # against its own corpus
        return swapped
    return _load(Path(path), progress, verified=True)


def _load(path: Path, progress: bool, verified: bool) -> RagModel:
    config = _read_config(path, verified)
    encoder, generator = EncoderConfig(**config["encoder"]), GeneratorConfig(**config["generator"])
    tokenizer = _reading(path / "tokenizer.json", load_tokenizer)
    uncased = (path / "retriever_tokenizer.json").exists()  # older directories: the encoders read tokenizer.json
    retriever_tokenizer = _reading(path / "retriever_tokenizer.json", load_tokenizer) if uncased else tokenizer
    for name, tok, size, what in (("tokenizer.json", tokenizer, generator.vocab_size, "generator"),
                                  ("retriever_tokenizer.json" if uncased else "tokenizer.json", retriever_tokenizer,
                                   encoder.vocab_size, "encoder")):
        if len(tok) != size:
            raise RagEduError(f"{name} has {len(tok)} tokens but config.json says the {what} has {size}")
    corpus = _reading(path / "corpus.jsonl", load_corpus)
    if corpus_fingerprint(corpus) != config["corpus_fingerprint"]:
        raise RagEduError(f"{path / 'corpus.jsonl'} is not the corpus this model's index was built from "
                          "(fingerprints differ)")
    query_encoder, doc_encoder = new_encoder(encoder), new_encoder(encoder)
    _load_weights(query_encoder, path / "query_encoder.safetensors")
    _load_weights(doc_encoder, path / "doc_encoder.safetensors")
    expected = config.get("doc_encoder_fingerprint")  # absent from directories saved before it was recorded
    if expected is not None and weights_fingerprint(doc_encoder) != expected:
        raise RagEduError(f"{path / 'doc_encoder.safetensors'} is not the document encoder the index was built "
                          "with (fingerprints differ); the model directory mixes files of two models")
    index = _reading(path / "index.faiss", load_index)
    if index.ntotal != len(corpus) or index.d != encoder.dim:
        raise RagEduError(f"index.faiss holds {index.ntotal} vectors of size {index.d}; the model needs "
                          f"{len(corpus)} of size {encoder.dim}")
    if config.get("index_kind", index_kind_of(index)) != index_kind_of(index):
        raise RagEduError(f"index.faiss is a {index_kind_of(index)} index but config.json says {config['index_kind']}")
    d_z = index_vectors(index)  # (N, D): flat and HNSW keep the exact vectors
    rows = spot_rows(len(corpus))
    check_index_matches(index, rows, encode_passages(doc_encoder, retriever_tokenizer, Corpus([corpus[r] for r in rows]),
                                                     progress=False), path / "index.faiss")
    if d_z is None:  # IVF-PQ keeps only codes: p(z|x) needs the exact d(z), so encode the corpus again
        d_z = encode_passages(doc_encoder, retriever_tokenizer, corpus, progress=progress)
    retriever = Retriever(query_encoder, doc_encoder, retriever_tokenizer, corpus, d_z, index,
                          config["query_max_len"], relevance_threshold=config.get("relevance_threshold"),
                          empty_passage=_empty_passage(path / "empty_passage.safetensors", encoder.dim))
    return RagModel(retriever, _generator(path / "generator.safetensors", generator, tokenizer, config)).eval()


def _empty_passage(weights: Path, dim: int) -> EmptyPassage | None:
    empty = EmptyPassage(dim) if weights.exists() else None  # older directories have none
    if empty is not None:
        _load_weights(empty, weights)
    return empty


def _generator(weights: Path, config: GeneratorConfig, tokenizer, model_config: dict) -> Generator:
    bart = new_bart(config, tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id)
    _load_weights(bart, weights)
    return Generator(bart, tokenizer, model_config["max_input_len"], model_config["max_question_len"]).eval()


def load_closed_book(path: str | Path = DEFAULT_MODEL_DIR) -> Generator:
    """The baseline generator trained without retrieval, from the same model directory."""
    path = Path(path)
    config = _read_config(path)
    if not (path / "closed_book.safetensors").exists():
        raise RagEduFileNotFound(f"model directory {path} has no closed-book baseline (closed_book.safetensors)")
    return _generator(path / "closed_book.safetensors", GeneratorConfig(**config["generator"]),
                      load_tokenizer(path / "tokenizer.json"), config)


def load_default(memory: str | None = None) -> RagModel:
    """The small trained model shipped in data/model (built by `ragedu train`);
    memory="2000" swaps in the 2000 edition of its passages and index (see ragedu.editions)."""
    return load(DEFAULT_MODEL_DIR, memory=memory)


def write_checked_manifest(path: str | Path) -> Path:
    """Bless a model directory that has no manifest: load it unverified, re-encode every passage and compare
    it with its row of the index (the whole index, not a sample), then write manifest.json."""
    path = Path(path)
    model = _load(path, progress=True, verified=False)
    check_retriever_index(model.retriever, path / "index.faiss", rows=list(range(len(model.retriever.corpus))))
    return write_manifest(path)

