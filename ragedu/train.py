"""Training RAG on a laptop CPU, stage by stage, as the paper's pieces were trained.   (notebook 5)

    stage 0  denoise      BART's own pre-training at small scale: rebuild corpus passages from copies with
                          masked spans (with ragedu's copy head, ragedu.copying, it learns to point at the input)
    stage 1  retriever    DPR's recipe: one shared bi-encoder on (question, gold passage) pairs with in-batch
                          negatives; then the document encoder is frozen and the index built once
    stage 2  reader       warm-up: (question + gold passage -> answer), so the generator learns to read; three
                          quarters of the examples are counterfactual (the passage's facts, in passage and
                          answer, replaced by invented values), so that reading, not remembering, is what lowers
                          the loss; claims are read in pairs (supports / refutes on the same passage)
    stage 3  rag          RAG fine-tuning: minimise −log p(y|x) with K retrieved passages and z latent;
                          only the query encoder and the generator move
    baseline closed_book  the stage-0 generator trained on (question -> answer) with no retrieval

In every stage most questions and claims are asked in a phrasing drawn from ragedu.phrasings' training families
and typed in a random casing ("Name the capital of Peru.", "kenya's capital?", "capital of peru"), so the model
learns the task, not our three templates. Held-out families (dev, test) are never drawn here.

Every batch is drawn from a generator seeded by (seed, stage, step), so a run resumed from a checkpoint
continues exactly where it stopped.

Here: the loop every stage shares and the run of all stages. The settings are ragedu.train_config, each stage's
loss ragedu.stages, what a batch reads ragedu.augment, the work directory ragedu.checkpoint.
"""
from __future__ import annotations

import copy
import json
import random
import shutil
import time
from dataclasses import asdict
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ragedu.checkpoint import Checkpointer
from ragedu.corpus import Corpus, load_corpus, passage_text
from ragedu.generator import Generator, new_bart
from ragedu.model import RagModel
from ragedu.pretrained import save
from ragedu.relevance import EmptyPassage
from ragedu.retriever import Retriever, new_encoder
from ragedu.stages import (calibrate_relevance, closed_book_loss, denoise_loss, rag_loss, reader_loss, retriever_loss,
                           training_examples)
from ragedu.tokenizer import load_tokenizer, save_tokenizer, train_tokenizer
from ragedu.train_config import STAGES, StageConfig, TrainConfig

__all__ = ["STAGES", "StageConfig", "TrainConfig", "run_stage", "train"]


def trainable(module: torch.nn.Module) -> list[torch.nn.Parameter]:
    return [p for p in module.parameters() if p.requires_grad]


def learning_rate_scale(step: int, steps: int, warmup: float = 0.05) -> float:
    """Linear warm-up over the first 5% of steps, then constant.

    No decay: every stage here stops while its loss is still falling, and there a decay only slows it
    (measured: 700 denoising steps ended at loss 1.77 with a linear decay to 10%, 1.15 at a constant rate).
    """
    return min(1.0, (step + 1) / max(1, int(warmup * steps)))


def run_stage(name: str, stage: StageConfig, modules: dict, params: list, loss_fn, ckpt: Checkpointer,
              cfg: TrainConfig, progress: bool = True) -> float:
    """The training loop every stage shares: AdamW, seeded batches, checkpoints, a loss log, tqdm."""
    if ckpt.done(name):
        ckpt.restore(name, modules, done=True)
        return 0.0
    optimizer = torch.optim.AdamW(params, lr=stage.lr)
    start = ckpt.restore(name, modules, optimizer)
    ckpt.trim_log(name, start)
    for m in modules.values():
        m.train()
    t0 = time.time()
    bar = tqdm(range(start, stage.steps), desc=f"stage {name}", disable=not progress, initial=start,
               total=stage.steps)
    for step in bar:
        rng = random.Random(f"{cfg.seed}-{name}-{step}")
        torch.manual_seed(rng.randrange(2**31))  # dropout, reproducible after a resume
        for group in optimizer.param_groups:
            group["lr"] = stage.lr * learning_rate_scale(step, stage.steps)
        loss = loss_fn(rng, stage.batch)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        ckpt.log(name, step + 1, loss.item())
        bar.set_postfix(loss=f"{loss.item():.3f}")
        if (step + 1) % cfg.checkpoint_every == 0 and step + 1 < stage.steps:
            ckpt.save(name, modules, step + 1, optimizer)
    for m in modules.values():
        m.eval()
    ckpt.save(name, modules, stage.steps, done=True)
    return time.time() - t0


def trained_tokenizer(path: Path, texts: list[str], vocab_size: int, lowercase: bool):
    """The tokenizer saved at `path`, or a new one trained on `texts` and saved there."""
    if path.exists():
        return load_tokenizer(path)
    tokenizer = train_tokenizer(texts, vocab_size, lowercase=lowercase)
    save_tokenizer(tokenizer, path)
    return tokenizer


def train(out_dir: str | Path, cfg: TrainConfig | None = None, work_dir: str | Path | None = None,
          corpus: Corpus | None = None, examples: dict | None = None, progress: bool = True) -> dict:
    """Run the whole recipe and write a model directory at `out_dir` (atomically). Returns seconds per stage.

    Checkpoints go to `work_dir` (default: `<out_dir>.work`); running again with the same work directory
    resumes where the last run stopped. The work directory is removed after a successful run.
    """
    cfg = cfg or TrainConfig()
    out_dir = Path(out_dir)
    ckpt = Checkpointer(Path(work_dir) if work_dir else out_dir.with_name(out_dir.name + ".work"))
    corpus = corpus or load_corpus()
    examples = examples or training_examples()
    seconds: dict[str, float] = {}

    texts = [passage_text(p.title, p.text) for p in corpus] + [s for t in examples.values() for e in t for s in (e.question, e.answer)]
    # kept with the checkpoints: a resumed run reads the same ones. The generator's is cased, the retriever's not.
    tokenizer = trained_tokenizer(ckpt.dir / "tokenizer.json", texts, cfg.vocab_size, lowercase=False)
    retriever_tokenizer = trained_tokenizer(ckpt.dir / "retriever_tokenizer.json", texts, cfg.vocab_size,
                                            lowercase=True)
    cfg.vocab_size = len(tokenizer)  # the trainer may stop short of the asked size on a small corpus
    if len(retriever_tokenizer) != cfg.vocab_size:
        raise ValueError(f"the uncased vocabulary has {len(retriever_tokenizer)} tokens, the cased one "
                         f"{cfg.vocab_size}; ask for a vocab_size both reach")
    (ckpt.dir / "train_config.json").write_text(json.dumps(asdict(cfg), indent=2))
    bart = new_bart(cfg.generator_config(), tokenizer.pad_token_id, tokenizer.bos_token_id,
                    tokenizer.eos_token_id, seed=cfg.seed)
    generator = Generator(bart, tokenizer)

    seconds["denoise"] = run_stage("denoise", cfg.denoise, {"generator": bart}, list(bart.parameters()),
                                   denoise_loss(generator, corpus, cfg), ckpt, cfg, progress)
    pretrained_bart = copy.deepcopy(bart)  # the starting point of the closed-book baseline too

    shared = new_encoder(cfg.encoder_config(), seed=cfg.seed)
    # Word embeddings stay at their random start: a name seen only at test time then has an embedding of the
    # same kind as the names seen in training, and the encoder learns to match names, not to memorise them
    # (measured: recall@5 on unseen entities 0.43 with trained word embeddings, 0.67 frozen, same steps).
    shared.embeddings.word_embeddings.requires_grad_(False)
    empty = EmptyPassage(cfg.dim) if cfg.empty_passage else None
    seconds["retriever"] = run_stage("retriever", cfg.retriever, {"encoder": shared, **({"empty": empty} if empty else {})},
                                     trainable(shared) + (trainable(empty) if empty else []),
                                     retriever_loss(shared, retriever_tokenizer, corpus, examples,
                                                    rephrase_share=cfg.rephrase, filler_share=cfg.filler,
                                                    null_questions=cfg.null_questions,
                                                    offtopic_questions=cfg.offtopic_questions, empty=empty),
                                     ckpt, cfg, progress)
    retriever = Retriever.build(copy.deepcopy(shared), copy.deepcopy(shared), retriever_tokenizer, corpus,
                                progress=progress, empty_passage=empty)

    seconds["reader"] = run_stage("reader", cfg.reader, {"generator": bart}, list(bart.parameters()),
                                  reader_loss(generator, corpus, examples, cfg), ckpt, cfg, progress)

    model = RagModel(retriever, generator)
    moving = {"query_encoder": retriever.query_encoder, "generator": bart}
    if cfg.freeze_query_encoder:   # the paper's Table 6 ablation: q(x) stays the stage-1 encoder, in eval mode
        retriever.query_encoder.requires_grad_(False)
        del moving["query_encoder"]
    seconds["rag"] = run_stage("rag", cfg.rag, moving, [p for m in moving.values() for p in trainable(m)],
                               rag_loss(model, examples, cfg), ckpt, cfg, progress)

    if retriever.empty_passage is not None:
        retriever.relevance_threshold = calibrate_relevance(retriever, cfg.relevance_quantile)
    closed_book = Generator(pretrained_bart, tokenizer)
    seconds["closed_book"] = run_stage("closed_book", cfg.closed_book, {"generator": pretrained_bart},
                                       list(pretrained_bart.parameters()),
                                       closed_book_loss(closed_book, examples, cfg), ckpt, cfg, progress)

    save(model.eval(), out_dir, cfg.encoder_config(), cfg.generator_config(), closed_book.eval(),
         extra_files={"train_log.jsonl": ckpt.log_path, "train_config.json": ckpt.dir / "train_config.json"})
    shutil.rmtree(ckpt.dir)
    seconds["total"] = sum(seconds.values())
    return seconds

