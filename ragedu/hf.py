"""The paper's released models in ragedu: `from_hf` reads a Hugging Face RAG checkpoint.   (notebook 8)

A Hugging Face RAG checkpoint (facebook/rag-token-nq, facebook/rag-sequence-nq, facebook/rag-token-base)
holds the two parametric halves of RAG and nothing of the memory:

    config.json                      model_type "rag": the question encoder's and generator's configs,
                                     title_sep " / ", doc_sep " // ", n_docs, max_combined_length
    model.safetensors                rag.question_encoder.* (DPR, BERT-base) and rag.generator.* (BART-large)
    question_encoder_tokenizer/      BERT's WordPiece vocabulary
    generator_tokenizer/             BART's byte-level BPE

The memory, passages z and their vectors d(z), comes from you: a list of `Passage` (or a corpus JSONL)
encoded here by the matching DPR context encoder (facebook/dpr-ctx_encoder-single-nq-base for the NQ
models), or a prebuilt FAISS index file with the passages it was built from. The same RAG weights serve
both variants: RAG-Sequence or RAG-Token is chosen when you score or decode, not when you load.

Safety: no remote code is ever run (trust_remote_code is never passed), and weights are read from
safetensors. A checkpoint that only has pickle weights (pytorch_model.bin) is refused unless you pass
allow_pickle=True.

What the generator reads and writes follows Hugging Face's RAG, driven by the checkpoint's config:
  - input   prefix + title + title_sep + text + doc_sep + question, "  " collapsed to " ", a title's
            surrounding double quotes dropped (RagRetriever.postprocess_docs), and the question as the
            question encoder's tokenizer reads it back (lowercased by the uncased BERT: the NQ models were
            trained on lowercase questions);
  - output  the decoder reads its start token (decoder_start_token_id, </s> for BART) and the token the
            checkpoint forces first (forced_bos_token_id, <s> for BART-large) before y_1. The forced token is
            given, never chosen or scored, as in HF's generate and its rescoring (exclude_bos_score).
Subtle difference kept on purpose: HF truncates `title / text // question` at the end, so a long passage can
cut the question; ragedu cuts the passage and keeps the question.

Devices: `from_hf(..., device="cuda")` (or `model.to("cuda")` later) puts both encoders, BART and the
document vectors on the GPU; the FAISS index stays on the CPU and only its row numbers cross over.
Saving: `save_hf(model, path)` writes a Hugging Face RAG checkpoint with the memory beside it (ragedu's own
`ragedu.pretrained.save` format holds only ragedu's small BERT/BART models, not DPR's pooler or BART's BPE).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from transformers import AutoTokenizer, DPRContextEncoder, PretrainedConfig, RagConfig, RagTokenForGeneration

from ragedu import checks
from ragedu.corpus import Corpus, Passage, load_corpus, save_corpus
from ragedu.errors import RagEduError, RagEduFileNotFound
from ragedu.generator import Generator
from ragedu.model import RagModel
from ragedu.pretrained import atomic_directory
from ragedu.retriever import Retriever, build_index, encode_passages, load_index, save_index

RAG_TYPES = ("rag",)                     # what `from_hf` loads
CONTEXT_ENCODER_TYPES = ("dpr",)         # what `context_encoder=` may be
GENERATOR_TYPES = ("bart",)              # the generators ragedu's Generator reads RAG's way
PICKLE_FILES = ("pytorch_model.bin", "pytorch_model.bin.index.json")
SAFE_FILES = ("model.safetensors", "model.safetensors.index.json")


@dataclass
class HfSettings:
    """What the RAG config says beyond the weights, for the reader to use (nothing is looked up later)."""

    name_or_path: str
    n_docs: int                 # K the checkpoint was trained / evaluated with (5 for the NQ models)
    title_sep: str              # " / "
    doc_sep: str                # " // "
    max_combined_length: int    # the generator's input budget in tokens (300)
    prefix: str                 # put before every generator input ("" for BART)
    decoder_prefix: list[int]   # read by the decoder before y_1: [start] or [start, forced BOS] (BART-large [2, 0])
    rag_config: RagConfig = field(repr=False)  # the whole config, for `save_hf`


def model_type(name_or_path: str | Path) -> str:
    """The `model_type` in a checkpoint's config.json, read as plain JSON (no model class, no code)."""
    config, _ = PretrainedConfig.get_config_dict(str(name_or_path))
    return config.get("model_type", "<none>")


def check_kind(name_or_path: str | Path, allowed: tuple[str, ...], role: str) -> None:
    found = model_type(name_or_path)
    if found in allowed:
        return
    hint = ""
    if role == "RAG checkpoint" and found in CONTEXT_ENCODER_TYPES:
        hint = "; a DPR context encoder goes in context_encoder=, beside a RAG checkpoint"
    elif role == "RAG checkpoint" and found in GENERATOR_TYPES:
        hint = "; a BART alone has no retriever: load a RAG checkpoint such as facebook/rag-token-base"
    raise RagEduError(f"{name_or_path} is a {found!r} checkpoint, not a {role} (allowed model_type: "
                      f"{allowed}){hint}")


def weights_kwargs(name_or_path: str | Path, allow_pickle: bool) -> dict:
    """`from_pretrained` arguments that read safetensors, or pickle only when the user asked for it."""
    path = Path(name_or_path)
    if path.is_dir():
        has_safe = any((path / f).exists() for f in SAFE_FILES)
        pickles = [f for f in PICKLE_FILES if (path / f).exists()]
        if not has_safe and pickles and not allow_pickle:
            raise RagEduError(f"{path} holds its weights only as pickle ({pickles}); ragedu reads safetensors. "
                              "Convert them, or pass allow_pickle=True if you trust the source")
        if not has_safe and not pickles:
            raise RagEduFileNotFound(f"{path} has a config.json but no weights ({SAFE_FILES[0]})")
    # on the hub: safetensors required unless pickle is allowed (then safetensors still preferred if present)
    return dict(use_safetensors=None if allow_pickle else True)


def _from_pretrained(cls, name_or_path, allow_pickle: bool):
    try:
        return cls.from_pretrained(str(name_or_path), **weights_kwargs(name_or_path, allow_pickle))
    except OSError as error:
        if not allow_pickle and "safetensors" in str(error):
            raise RagEduError(f"{name_or_path} has no safetensors weights; pass allow_pickle=True if you trust "
                              f"its pickle weights ({error})") from None
        raise


def decoder_prefix(rag: RagTokenForGeneration, raw_config: dict) -> list[int]:
    """What BART reads before y_1 when Hugging Face's generate runs the checkpoint: the decoder start token
    (</s> for BART), then the token forced first, if any (<s> for BART-large). Read from the checkpoint's
    generation config (generation_config.json), or, in checkpoints saved before that file existed, from
    the generator's entries in config.json (`forced_bos_token_id`, or the older
    `force_bos_token_to_be_generated`)."""
    generation, legacy = rag.generation_config, raw_config.get("generator", {})
    start = generation.decoder_start_token_id
    start = rag.generator.config.decoder_start_token_id if start is None else start
    forced = generation.forced_bos_token_id
    if forced is None:
        forced = legacy.get("forced_bos_token_id")
    if forced is None and legacy.get("force_bos_token_to_be_generated"):
        forced = legacy.get("bos_token_id", rag.generator.config.bos_token_id)
    return [start] if forced is None else [start, forced]


def read_settings(name_or_path: str | Path, rag: RagTokenForGeneration) -> HfSettings:
    raw, _ = PretrainedConfig.get_config_dict(str(name_or_path))
    config = rag.config
    prefix = config.prefix or getattr(config.generator, "prefix", None) or ""
    return HfSettings(str(name_or_path), config.n_docs, config.title_sep, config.doc_sep,
                      config.max_combined_length, prefix, decoder_prefix(rag, raw), config)


class HfGenerator(Generator):
    """BART fed as a released RAG checkpoint expects (Hugging Face's RagRetriever.postprocess_docs):
        prefix + title + title_sep + text + doc_sep + question     "  " -> " ", the title's quotes dropped
    with the question as the question encoder's tokenizer reads it back, and the checkpoint's decoder prefix."""

    def __init__(self, model, tokenizer, question_tokenizer, settings: HfSettings, max_input_len: int,
                 max_question_len: int):
        super().__init__(model, tokenizer, max_input_len=max_input_len, max_question_len=max_question_len,
                         title_sep=settings.title_sep, question_sep=settings.doc_sep[:-1])
        self.question_tokenizer = question_tokenizer
        self.prefix = settings.prefix
        self.start_id, self.decoder_prefix = settings.decoder_prefix[0], list(settings.decoder_prefix)

    def passage_text(self, title: str, text: str) -> str:
        title = title.removeprefix('"').removesuffix('"')  # DPR's Wikipedia titles come quoted
        return (self.prefix + super().passage_text(title, text)).replace("  ", " ")

    def question_as_read(self, question: str) -> str:
        """The question as HF's retriever hands it to the generator: encoded by the question tokenizer and
        decoded back ("What is the capital of Austria?" -> "what is the capital of austria?" for uncased BERT)."""
        ids = self.question_tokenizer(question.strip()).input_ids
        return self.question_tokenizer.decode(ids, skip_special_tokens=True).replace("  ", " ")

    def question_tokens(self, question: str) -> list[int]:
        return super().question_tokens(self.question_as_read(question))


def load_generator(rag: RagTokenForGeneration, name_or_path: str | Path, settings: HfSettings,
                   question_tokenizer, max_question_len: int = 64) -> Generator:
    """BART and its tokenizer, reading `title / text // question` with the checkpoint's separators."""
    found = rag.generator.config.model_type
    if found not in GENERATOR_TYPES:
        raise RagEduError(f"{name_or_path} has a {found!r} generator; ragedu reads {GENERATOR_TYPES} generators")
    if not settings.doc_sep.endswith(" "):
        raise RagEduError(f"doc_sep {settings.doc_sep!r} does not end in a space; ragedu puts ' ' + question after it")
    tokenizer = AutoTokenizer.from_pretrained(str(name_or_path), subfolder="generator_tokenizer")
    # ragedu's Generator writes <s> + tokens(title + title_sep + text + " //") + tokens(" " + question) + </s>,
    # which is what a BART tokenizer makes of `title / text // question` (test_hf checks it)
    positions = rag.generator.config.max_position_embeddings  # BART cannot read beyond its position table
    return HfGenerator(rag.generator, tokenizer, question_tokenizer, settings,
                       max_input_len=min(settings.max_combined_length, positions),
                       max_question_len=max_question_len).eval()


def as_corpus(passages: Corpus | list[Passage] | str | Path) -> Corpus:
    if isinstance(passages, Corpus):
        return passages
    if isinstance(passages, (str, Path)):
        return load_corpus(passages)
    return Corpus(list(passages))


def load_context_encoder(context_encoder: str | Path | nn.Module, question_tokenizer, allow_pickle: bool):
    """d(z)'s encoder and its tokenizer: a DPRContextEncoder given, or read from a checkpoint."""
    if isinstance(context_encoder, nn.Module):
        return context_encoder.eval(), question_tokenizer  # DPR's two encoders share BERT's vocabulary
    check_kind(context_encoder, CONTEXT_ENCODER_TYPES, "DPR context encoder")
    encoder = _from_pretrained(DPRContextEncoder, context_encoder, allow_pickle).eval()
    return encoder, AutoTokenizer.from_pretrained(str(context_encoder))


def document_vectors(corpus: Corpus, index, doc_encoder, doc_tokenizer, max_len: int, progress: bool):
    """d(z) for every passage and a FAISS index over them    -> (N, D), index"""
    if index is None:
        d_z = encode_passages(doc_encoder, doc_tokenizer, corpus, batch_size=64, max_len=max_len,
                              progress=progress, pooling="dpr")                  # (N, D)
        return d_z, build_index(d_z)
    index = load_index(index) if isinstance(index, (str, Path)) else index
    if index.ntotal != len(corpus):
        raise RagEduError(f"the index holds {index.ntotal} vectors but {len(corpus)} passages were given; "
                          "pass the passages the index was built from, in its order")
    try:
        d_z = torch.from_numpy(index.reconstruct_n(0, index.ntotal))            # (N, D)
    except RuntimeError as error:
        raise RagEduError(f"cannot read the vectors back from this index ({error}); ragedu needs an index "
                          "that stores them exactly (flat or HNSW-flat)") from None
    return d_z, index


def find_checkpoint(name_or_path: str | Path, timeout: float = 5.0) -> str | None:
    """Why `name_or_path` cannot be loaded here, or None when it can: a local folder with a config.json,
    a hub name whose config and weights are in the local Hugging Face cache, or a hub name reachable online.
    For notebooks that must skip cleanly on an offline machine; it never downloads weights."""
    path = Path(name_or_path)
    if path.is_dir():
        return None if (path / "config.json").exists() else f"{path} has no config.json"
    if path.exists() or path.is_absolute() or str(name_or_path).count("/") != 1:
        return f"{name_or_path} is neither a checkpoint folder nor a hub name like facebook/rag-token-nq"
    from huggingface_hub import HfApi, try_to_load_from_cache

    cached = [try_to_load_from_cache(str(name_or_path), f) for f in ("config.json", *SAFE_FILES, *PICKLE_FILES)]
    if isinstance(cached[0], str) and any(isinstance(c, str) for c in cached[1:]):
        return None
    try:
        HfApi().model_info(str(name_or_path), timeout=timeout)
        return None
    except Exception as error:  # offline, unknown name, gated: all mean "not here"
        return f"{name_or_path} is not in the local cache and the hub is unreachable ({type(error).__name__})"


def from_hf(name_or_path: str | Path, passages: Corpus | list[Passage] | str | Path | None = None,
            index=None, context_encoder: str | Path | nn.Module | None = None, allow_pickle: bool = False,
            query_max_len: int = 64, passage_max_len: int = 256, progress: bool = True,
            device: str | torch.device = "cpu") -> RagModel:
    """A ragedu RagModel from a Hugging Face RAG checkpoint (a local folder, or a hub name when online).

    passages         the memory: a Corpus, a list of Passage, or a corpus JSONL path
    context_encoder  a DPR context encoder (checkpoint name/path or a DPRContextEncoder) to encode them, or
    index            a FAISS index file (or faiss.Index) already built from those passages, in their order
    device           where the encoders, BART and d(z) live: "cpu", "cuda", "cuda:1"… (passages are encoded there)
    The RAG config's n_docs, separators and decoder prefix are the returned model's `hf_settings`.
    """
    checks.local_path(name_or_path, "RAG checkpoint")  # a typo of a folder never goes to the hub
    if isinstance(context_encoder, (str, Path)):
        checks.local_path(context_encoder, "context encoder")
    check_kind(name_or_path, RAG_TYPES, "RAG checkpoint")
    if passages is None:
        raise RagEduError("a RAG checkpoint holds no passages: pass passages= (a list of Passage or a corpus "
                          "JSONL) with context_encoder= to encode them, or with index= a prebuilt FAISS index")
    if (context_encoder is None) == (index is None):
        raise RagEduError("pass exactly one of context_encoder= (to encode the passages) or index= (vectors "
                          "already built from them)")
    device = torch.device(device)  # an unknown name fails here, before gigabytes are read
    rag = _from_pretrained(RagTokenForGeneration, name_or_path, allow_pickle).eval()
    settings = read_settings(name_or_path, rag)
    question_tokenizer = AutoTokenizer.from_pretrained(str(name_or_path), subfolder="question_encoder_tokenizer")
    doc_encoder, doc_tokenizer = (load_context_encoder(context_encoder, question_tokenizer, allow_pickle)
                                  if context_encoder is not None else (nn.Identity(), None))
    corpus = as_corpus(passages)
    d_z, faiss_index = document_vectors(corpus, index, doc_encoder.to(device), doc_tokenizer, passage_max_len,
                                        progress)
    retriever = Retriever(rag.question_encoder, doc_encoder, question_tokenizer, corpus, d_z, faiss_index,
                          max_len=query_max_len, pooling="dpr")
    generator = load_generator(rag, name_or_path, settings, question_tokenizer)
    return RagModel(retriever, generator, hf_settings=settings).to(device).eval()


def save_hf(model: RagModel, path: str | Path) -> Path:
    """Write a model `from_hf` loaded back as a Hugging Face RAG checkpoint with its memory beside it:

        config.json, generation_config.json, model.safetensors   RAG: question encoder + BART, as HF saves them
        question_encoder_tokenizer/, generator_tokenizer/
        corpus.jsonl, index.faiss                                 the passages and their vectors d(z)

    Read it back with `from_hf(path, passages=path / "corpus.jsonl", index=path / "index.faiss")`.
    Written into a temporary sibling folder and renamed, so a failure never leaves half a checkpoint."""
    settings = model.hf_settings
    if settings is None:
        raise RagEduError("save_hf writes models loaded by from_hf; save ragedu's own models with "
                          "ragedu.pretrained.save")
    path = Path(path)
    with atomic_directory(path) as tmp:
        rag = RagTokenForGeneration(settings.rag_config, question_encoder=model.retriever.query_encoder,
                                    generator=model.generator.model)
        rag.generation_config.decoder_start_token_id = settings.decoder_prefix[0]
        if len(settings.decoder_prefix) > 1:
            rag.generation_config.forced_bos_token_id = settings.decoder_prefix[1]
        rag.save_pretrained(tmp)  # safetensors
        model.retriever.tokenizer.save_pretrained(tmp / "question_encoder_tokenizer")
        model.generator.tokenizer.save_pretrained(tmp / "generator_tokenizer")
        save_corpus(model.retriever.corpus, tmp / "corpus.jsonl")
        save_index(model.retriever.index, tmp / "index.faiss")
    return path
