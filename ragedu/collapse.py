"""Retrieval collapse: RAG fine-tuning from a bad retriever start, and the two monitors that show it.   (notebook 5)

Dims: B questions · K retrieved passages · N passages of the corpus

Stage 3 trains q(x) only through p(z|x) (ragedu.gradients): the passages it can push up are the K it retrieved.
Started from a query encoder that retrieves nothing useful (here: a fresh random one, no stage 1), the K passages
say nothing about the answer, p(z|x,y) ≈ p(z|x), and the generator learns to answer without reading. Whatever
passages a random encoder prefers for every question stay preferred: retrieval collapses onto a few passages,
the failure Hugging Face's users report when they fine-tune RAG without DPR's start. Two monitors show it:

    entropy   H(p(z|x)) = −Σ_z p(z|x) log p(z|x) over the top K, in nats (log K: no preference; 0: one passage)
    counts    how often each passage of the corpus is in the top K of a set of questions: a healthy retriever
              spreads them over many passages (each question its own), a collapsed one piles them onto a few

`short_rag_run` is stage 3's own loss (`ragedu.stages.rag_loss`, the one `ragedu train` minimises) for a few
steps, measuring both monitors as it goes.
"""
from __future__ import annotations

import copy
import random
from dataclasses import dataclass

import torch

from ragedu.model import RagModel
from ragedu.retriever import Retriever
from ragedu.stages import rag_loss
from ragedu.train_config import TrainConfig


def retrieval_entropy(log_p_z: torch.Tensor) -> torch.Tensor:
    """H(p(z|x)) = −Σ_z p(z|x) log p(z|x), in nats    (B, K) -> (B,)    (0 · log 0 = 0)"""
    p_z = log_p_z.exp()
    return -torch.where(p_z > 0, p_z * log_p_z, torch.zeros_like(p_z)).sum(-1)


def retrieval_counts(rows: torch.Tensor, n: int) -> torch.Tensor:
    """How many questions retrieve each of the corpus's passages in their top K    (B, K) rows -> (N,)"""
    return torch.bincount(rows.reshape(-1), minlength=n)


@dataclass
class Monitor:
    """What a retriever does on a fixed set of questions."""

    entropy: float           # mean over the questions of H(p(z|x)) over the top K, nats
    distinct: int            # passages that are in some question's top K
    top_share: float         # share of all B·K retrieved slots taken by the 10 most retrieved passages
    counts: torch.Tensor     # (N,) retrieval_counts


@torch.no_grad()
def monitor(retriever: Retriever, questions: list[str], k: int) -> Monitor:
    retrieved = retriever.retrieve(questions, k)
    counts = retrieval_counts(retrieved.rows, len(retriever.corpus))                 # (N,)
    return Monitor(float(retrieval_entropy(retrieved.log_p_z).mean()), int((counts > 0).sum()),
                   float(counts.topk(10).values.sum() / counts.sum()), counts)


@dataclass
class CollapseRun:
    """A short stage-3 run: the monitors every few steps, and the loss at every step."""

    steps: list[int]         # the steps the monitors were taken at, 0 = before training
    monitors: list[Monitor]  # one per entry of steps
    losses: list[float]      # −log p(y|x) at each step


def short_rag_run(model: RagModel, examples: dict, questions: list[str], steps: int, every: int,
                  cfg: TrainConfig | None = None, batch: int = 8, lr: float = 1e-3) -> CollapseRun:
    """Stage 3 (q(x) and the generator on −log p(y|x), z latent) for `steps` steps on a copy of `model`.

    The batches are drawn as `ragedu train` draws them (seeded by step); lr is higher than the recipe's 1e-4 so
    that a few steps show where training goes. `questions` are the monitors' fixed questions (e.g. dev QA).
    """
    cfg = cfg or TrainConfig()
    model = copy.deepcopy(model)
    params = [p for m in (model.retriever.query_encoder, model.generator.model) for p in m.parameters()
              if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr)
    loss_fn = rag_loss(model, examples, cfg)
    run = CollapseRun([0], [monitor(model.retriever, questions, cfg.k)], [])
    for step in range(steps):
        model.retriever.query_encoder.train()
        model.generator.model.train()
        rng = random.Random(f"{cfg.seed}-collapse-{step}")
        torch.manual_seed(rng.randrange(2**31))
        with torch.enable_grad():
            loss = loss_fn(rng, batch)
            optimizer.zero_grad()
            loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        run.losses.append(loss.item())
        if (step + 1) % every == 0 or step + 1 == steps:
            model.eval()
            run.steps.append(step + 1)
            run.monitors.append(monitor(model.retriever, questions, cfg.k))
    return run
