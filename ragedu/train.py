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
"""
from __future__ import annotations

import copy
import dataclasses
import json
import random
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from ragedu.corpus import Corpus, load_corpus
from ragedu.generator import Generator, GeneratorConfig, new_bart
from ragedu.geonames import CONTINENTS, the
from ragedu.marginalize import rag_log_likelihood
from ragedu.model import RagModel
from ragedu.offtopic import offtopic_question
from ragedu.phrasings import (TRAIN_FAMILIES, Phrasing, claim_value, classic_phrasing, held_out_examples,
                              random_style, style, training_phrasing)
from ragedu.relevance import EmptyPassage, calibrate, empty_passage_loss
from ragedu.pretrained import save, untied_tensors
from ragedu.retriever import EncoderConfig, Retriever, embed, new_encoder, passage_text
from ragedu.tasks import Example, load_task, mention_pattern
from ragedu.tokenizer import MASK, load_tokenizer, save_tokenizer, train_tokenizer

STAGES = ("denoise", "retriever", "reader", "rag", "closed_book")


@dataclass
class StageConfig:
    steps: int
    batch: int
    lr: float


@dataclass
class TrainConfig:
    """The whole recipe; the defaults make the shipped model (about 15 minutes on 2 cores, see the README).

    Measured on this corpus, with plain BART: after 700 denoising steps the generator memorised training answers
    (RAG got unseen capitals right 0.00 on dev; even given the gold passage it named training countries'
    capitals); after 2,000 steps it copied. Trained on real facts only, the reader then memorises again: dev exact
    match with the gold passage fell from 0.69 after 600 steps to 0.58 after 1,500. Counterfactual examples
    (the reader's and RAG's examples read a passage whose facts are replaced by invented values) take that
    shortcut away; inventing all of the passage's facts takes away the next one, 'copy the one strange name'.
    Still, plain BART reached 0.78 QA exact match on test and claims stayed at chance (0.50).
    Two additions to the generator (not in the paper, whose BART-large brings both skills from pre-training) made
    the difference, each measured on dev and test (the README lists the runs): a copy head (ragedu.copying)
    took QA to 0.88-0.90 on test and let stage 0 and the reader stop at 1,000 steps; an exact-match feature
    (ragedu.matching) took claims from 0.50 to 0.95.
    """

    seed: int = 0
    vocab_size: int = 4000
    dim: int = 128
    layers: int = 2
    heads: int = 4
    k: int = 5                       # passages per question in RAG fine-tuning, as in the paper
    variant: str = "both"            # "sequence", "token", or "both": the mean of the two losses
    mask_ratio: float = 0.3          # share of passage tokens hidden in stage 0
    task_weights: dict = field(default_factory=lambda: {"qa": 0.6, "claims": 0.25, "clues": 0.15})
    denoise: StageConfig = field(default_factory=lambda: StageConfig(1000, 32, 5e-4))
    retriever: StageConfig = field(default_factory=lambda: StageConfig(800, 64, 2e-3))
    reader: StageConfig = field(default_factory=lambda: StageConfig(1000, 32, 3e-4))
    rag: StageConfig = field(default_factory=lambda: StageConfig(300, 16, 1e-4))
    closed_book: StageConfig = field(default_factory=lambda: StageConfig(400, 32, 3e-4))
    counterfactual: float = 0.75     # share of reader and RAG examples whose facts are replaced by invented ones
    rephrase: float = 0.7            # share of questions and claims asked in a training family's phrasing, typed in
                                     # a random casing (ragedu.phrasings); the rest as the task file has them
    filler: float = 0.3              # share of those phrasings padded with everyday words (phrasings.FILLER_WORDS)
    null_questions: int = 8          # questions about invented places per retriever batch, taught to pick no passage
    offtopic_questions: int = 8      # made-up questions about other things per retriever batch (ragedu.offtopic)
    empty_passage: bool = True       # the retriever learns an empty passage ∅ for them (ragedu.relevance)
    claim_pairs: bool = True         # the reader reads each training claim twice: stating the passage's value, and not
    copy_head: bool = True           # the generator may copy input tokens (ragedu.copying); False: plain BART
    match_feature: bool = True       # input tokens flagged when they occur on the other side (ragedu.matching)
    relevance_quantile: float = 0.02  # τ of ragedu.relevance: this share of dev questions falls below it
    checkpoint_every: int = 200

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        d = dict(d)
        for stage in STAGES:
            if stage in d:
                d[stage] = StageConfig(**d[stage])
        return cls(**d)

    def encoder_config(self) -> EncoderConfig:
        return EncoderConfig(self.vocab_size, self.dim, self.layers, self.heads)

    def generator_config(self) -> GeneratorConfig:
        return GeneratorConfig(self.vocab_size, self.dim, self.layers, self.heads, copy_head=self.copy_head,
                               match_feature=self.match_feature)


# ---------------------------------------------------------------------------------------------- data

def training_examples(data_dir=None) -> dict[str, list[Example]]:
    kwargs = {} if data_dir is None else {"data_dir": data_dir}
    return {task: load_task(task, "train", **kwargs) for task in ("qa", "claims", "clues")}


def by_relation(examples: dict[str, list[Example]]) -> dict[str, dict[str, list[Example]]]:
    """task -> relation -> examples, grouped once so that sampling a batch does not regroup them."""
    grouped: dict[str, dict[str, list[Example]]] = {}
    for task, rows in examples.items():
        for e in rows:
            grouped.setdefault(task, {}).setdefault(e.relation, []).append(e)
    return grouped


def sample_examples(grouped: dict[str, dict[str, list[Example]]], weights: dict, n: int,
                    rng: random.Random) -> list[Example]:
    """n examples: a task by its weight, then (for QA) a relation uniformly, then an example."""
    tasks = [t for t in weights if grouped.get(t)]
    picked = []
    for task in rng.choices(tasks, [weights[t] for t in tasks], k=n):
        relation = rng.choice(sorted(grouped[task]))
        picked.append(rng.choice(grouped[task][relation]))
    return picked


def rephrase(example: Example, share: float, rng: random.Random, filler_share: float = 0.0
             ) -> tuple[Example, Phrasing | None]:
    """With probability `share`, the example asked in a training family's phrasing and casing; else as it is.
    The returned example's question is written unstyled (cased as its template), so that counterfactual swaps
    still find the names in it; `Phrasing.restyled` types it afterwards.    -> (example, phrasing)"""
    if example.task not in TRAIN_FAMILIES or rng.random() >= share:
        return example, None
    p = training_phrasing(example, rng, filler_share)
    return dataclasses.replace(example, question=p.text(stated_of(example), styled=False)), p


def stated_of(example: Example) -> str | None:
    """The value a claim states (`phrasings.claim_value`); None for a question or a clue."""
    return claim_value(example) if example.task == "claims" else None


def restyle(phrasing: Phrasing | None, text: str) -> str:
    return text if phrasing is None else phrasing.restyled(text)


def fitted(generator: Generator, question: str) -> str:
    """The question, lowercased and then shortened from the front if it is too many tokens for the generator.
    Training only (a user's long question is refused): an invented three-word name in capitals with filler
    before it ('WE THE KISSIDOUGBO-DIOULASSO …') can pass the limit, as an all-caps word costs a token a letter."""
    if len(generator.tokenizer(" " + question, add_special_tokens=False).input_ids) <= generator.max_question_len:
        return question
    words = question.lower().split()
    while len(words) > 1 and len(generator.tokenizer(" " + " ".join(words),
                                                     add_special_tokens=False).input_ids) > generator.max_question_len:
        words = words[1:]
    return " ".join(words)


# ---------------------------------------------------------------------------------------------- counterfactuals

SUBSTITUTABLE = ("capital", "currency", "city_country", "city_by_population", "city_population")


def training_names(examples: dict[str, list[Example]]) -> list[str]:
    """The place names training questions answer with: the stuff invented names are spliced from."""
    return sorted({e.answer for e in examples.get("qa", []) if e.relation in ("capital", "city_country",
                                                                             "city_by_population")})


def invented_name(names: list[str], rng: random.Random) -> str:
    """A made-up place name spliced from two real ones ('Nairobi' + 'Kampala' -> 'Naipala')."""
    a, b = rng.choice(names), rng.choice(names)
    spliced = a[: rng.randint(2, max(2, len(a) - 1))] + b[rng.randint(1, max(1, len(b) - 2)):].lower()
    return " ".join(word[:1].upper() + word[1:] for word in spliced.split())


def invented_value(relation: str, value: str, names: list[str], rng: random.Random) -> str:
    """A value of the same kind as `value` but not it: an invented name (sometimes a real one, misplaced), or an
    invented number as long."""
    if relation == "city_population":
        digits = sum(ch.isdigit() for ch in value)
        return f"{rng.randrange(10 ** (digits - 1), 10 ** digits):,}"
    if rng.random() < 0.3:  # a real name in the wrong place: long ones ('Bosnia and Herzegovina') are copied whole
        name = rng.choice([n for n in names if n != value])
    else:
        name = " ".join(invented_name(names, rng) for _ in range(rng.choice((1, 1, 2, 2, 3))))
    return name.lower() if relation == "currency" else name


def counterfactual(example: Example, titles: list[str], texts: list[str], names: list[str], rng: random.Random,
                   others: dict[str, str] | None = None, stated: str | None = None):
    """The example with its fact's value replaced, in the passages, the input and the target, by an invented one.

    A generator trained on real facts alone can answer from memory; on a passage that says the capital of
    Kenya is 'Naipala' it can only be right by reading. (Longpre et al. 2021 train on such entity
    substitutions for the same reason.) `others`, the passage's other facts (relation -> value, see
    `passage_facts`), are invented too: were the asked value the passage's only strange name, 'copy the
    strange name' would answer every question, whichever relation it asks about. `stated`: the value a claim
    states (default: read back from its classic phrasing, `phrasings.claim_value`).
        -> (titles, texts, question, answer)
    """
    if example.relation not in SUBSTITUTABLE or example.task == "clues":
        return titles, texts, example.question, example.answer
    value = example.facts[example.relation]
    new = invented_value(example.relation, value, names, rng)
    swaps = [replacer(value, new)] + [replacer(v, invented_value(r, v, names, rng))
                                      for r, v in sorted((others or {}).items())
                                      if r != example.relation and v not in value and value not in v]

    def swap(s: str) -> str:
        for one in swaps:
            s = one(s)
        return s
    question = swap(example.question)
    if example.task == "claims" and example.answer == "refutes":
        # The claim's wrong value is invented too: were it left real, 'an invented name in the claim' would
        # mean 'supports', and the generator would learn that instead of comparing claim and passage.
        stated = stated if stated is not None else claim_value(example)
        question = replacer(stated, invented_value(example.relation, value, names, rng))(question)
    return [swap(t) for t in titles], [swap(t) for t in texts], question, swap(example.answer)


def passage_facts(examples: dict[str, list[Example]]) -> dict[str, dict[str, str]]:
    """passage id -> the facts training questions read in it: {'capital': 'Nairobi', 'currency': 'shilling'}"""
    facts: dict[str, dict[str, str]] = {}
    for e in examples.get("qa", []):
        if e.relation in SUBSTITUTABLE and e.relation != "city_by_population":  # not the city's own name
            facts.setdefault(e.gold_ids[0], {})[e.relation] = e.facts[e.relation]
    return facts


def replacer(value: str, new: str):
    """A function replacing every whole-word mention of `value` by `new` (as `tasks.mentions` finds them)."""
    pattern = mention_pattern(value)
    return lambda s: pattern.sub(lambda _: new, s)


def read_maybe_counterfactual(example: Example, titles: list[str], texts: list[str], names: list[str],
                              share: float, rng: random.Random, others: dict[str, str] | None = None,
                              stated: str | None = None):
    """With probability `share` the example's counterfactual, else the example as it is
    -> (titles, texts, question, answer)"""
    if rng.random() < share:
        return counterfactual(example, titles, texts, names, rng, others, stated)
    return titles, texts, example.question, example.answer


def claim_pair(claim: Example, titles: list[str], texts: list[str], names: list[str], values: dict[str, list[str]],
               share: float, rng: random.Random, phrasing: Phrasing | None = None) -> list[tuple]:
    """The claim twice about the same passages: stating the passage's value ('supports') and another value
    ('refutes'). The two inputs differ in the value alone, so neither what the generator remembers about the
    entity nor the phrasing can tell the labels apart; only comparing the value with the passage can. With
    probability `share` the passage's value is replaced by an invented one, as in `counterfactual`, and the wrong
    value is invented alike; failing that, with probability `share` again, by another real value (for a continent
    this is the only way), and the wrong value is another real one from `values` (relation -> the training values,
    see `claim_values`), or an invented one when there is none left. Both claims are written in `phrasing`
    (default: the claim's own classic template, as typed).
        -> [(titles, texts, claim, "supports"), (titles, texts, claim, "refutes")]
    """
    true = claim.facts[claim.relation]
    value, swap, invented = true, str, rng.random() < share and claim.relation in SUBSTITUTABLE
    real = values.get(claim.relation, [])
    if invented:
        value = invented_value(claim.relation, true, names, rng)
        swap = replacer(true, value)
    elif rng.random() < share and any(v != true for v in real):
        value = rng.choice([v for v in real if v != true])
        swap = replacer(true, value)
    titles, texts = [swap(t) for t in titles], [swap(t) for t in texts]

    def stated_by_passage(v: str) -> bool:
        return v == value or any(mention_pattern(v).search(t) for t in titles + texts)
    invent_wrong = invented or all(stated_by_passage(v) for v in real)   # no real value is left to state
    wrong = value   # drawn as the passage's value was, so that what kind of name it is says nothing
    while stated_by_passage(wrong):
        wrong = invented_value(claim.relation, value, names, rng) if invent_wrong else rng.choice(real)
    phrasing = phrasing or classic_phrasing(claim)
    phrasing = dataclasses.replace(phrasing, slots={k: swap(v) for k, v in phrasing.slots.items()})

    def stating(v: str) -> str:
        return phrasing.text(the(v) if claim.relation == "city_country" else v)
    return [(titles, texts, stating(value), "supports"), (titles, texts, stating(wrong), "refutes")]


def claim_values(examples: dict[str, list[Example]]) -> dict[str, list[str]]:
    """relation -> the values training claims may state: every continent, and the training facts' values."""
    values = {"continent": sorted(CONTINENTS.values())}
    for e in examples.get("claims", []):
        if e.relation != "continent":
            values.setdefault(e.relation, set()).add(e.facts[e.relation])
    return {relation: sorted(v) for relation, v in values.items()}


def mask_spans(ids: list[int], mask_id: int, ratio: float, rng: random.Random) -> list[int]:
    """BART's text infilling: spans (Poisson(3) long) replaced by one <mask> each, until `ratio` is hidden."""
    ids, budget = list(ids), round(ratio * len(ids))
    while budget > 0 and len(ids) > 1:
        span = min(max(1, int(np.random.default_rng(rng.randrange(2**31)).poisson(3))), budget)
        start = rng.randrange(0, max(1, len(ids) - span))
        ids[start:start + span] = [mask_id]
        budget -= span
    return ids


# ---------------------------------------------------------------------------------------------- checkpoints

class Checkpointer:
    """Stage outputs and mid-stage states in a work directory, in safetensors plus JSON; and the loss log."""

    def __init__(self, work_dir: Path):
        self.dir = Path(work_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.dir / "train_log.jsonl"

    def done(self, stage: str) -> bool:
        return (self.dir / f"{stage}.done.json").exists()

    def save(self, stage: str, modules: dict, step: int, optimizer=None, done: bool = False) -> None:
        tensors = {f"{name}.{k}": v for name, m in modules.items() for k, v in untied_tensors(m).items()}
        meta = {"stage": stage, "step": step}
        if optimizer is not None:
            state = optimizer.state_dict()
            for i, s in state["state"].items():
                for key, value in s.items():
                    tensors[f"optimizer.{i}.{key}"] = torch.as_tensor(value).clone()
            meta["param_groups"] = state["param_groups"]
        name = f"{stage}.done" if done else f"{stage}.partial"
        save_file(tensors, str(self.dir / f"{name}.safetensors.tmp"))
        (self.dir / f"{name}.safetensors.tmp").replace(self.dir / f"{name}.safetensors")
        (self.dir / f"{name}.json").write_text(json.dumps(meta))
        if done:
            (self.dir / f"{stage}.partial.json").unlink(missing_ok=True)

    def restore(self, stage: str, modules: dict, optimizer=None, done: bool = False) -> int:
        """Load a stage's saved state into `modules` (and `optimizer`); return the step it reached (0 if none)."""
        name = f"{stage}.done" if done else f"{stage}.partial"
        if not (self.dir / f"{name}.json").exists():
            return 0
        meta = json.loads((self.dir / f"{name}.json").read_text())
        tensors = load_file(str(self.dir / f"{name}.safetensors"))
        for mod_name, module in modules.items():
            prefix = f"{mod_name}."
            module.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)},
                                   strict=False)
            if hasattr(module, "tie_weights"):
                module.tie_weights()
        if optimizer is not None and "param_groups" in meta:
            state: dict = {}
            for key, value in tensors.items():
                if key.startswith("optimizer."):
                    _, i, name_ = key.split(".", 2)
                    state.setdefault(int(i), {})[name_] = value
            optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
        return meta["step"]

    def log(self, stage: str, step: int, loss: float) -> None:
        with self.log_path.open("a") as f:
            f.write(json.dumps({"stage": stage, "step": step, "loss": round(loss, 5)}) + "\n")

    def trim_log(self, stage: str, step: int) -> None:
        """On resume, forget log lines this stage wrote after its checkpoint."""
        if not self.log_path.exists():
            return
        rows = [json.loads(line) for line in self.log_path.read_text().splitlines() if line.strip()]
        rows = [r for r in rows if r["stage"] != stage or r["step"] <= step]
        self.log_path.write_text("".join(json.dumps(r) + "\n" for r in rows))


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


# ---------------------------------------------------------------------------------------------- stages

def denoise_loss(generator: Generator, corpus: Corpus, cfg: TrainConfig):
    """Stage 0: −log p_θ(passage | passage with masked spans)."""
    tok = generator.tokenizer
    texts = [" " + passage_text(p) for p in corpus]

    def loss(rng: random.Random, batch: int) -> torch.Tensor:
        rows_in, rows_out = [], []
        for text in rng.sample(texts, batch):
            ids = tok(text, add_special_tokens=False).input_ids[: generator.max_input_len - 2]
            rows_in.append([tok.bos_token_id, *mask_spans(ids, tok.convert_tokens_to_ids(MASK), cfg.mask_ratio, rng),
                            tok.eos_token_id])
            rows_out.append([*ids, tok.eos_token_id])
        x, x_mask = generator.pad(rows_in)
        y, y_mask = generator.pad(rows_out)
        log_p_yi = generator.log_p_yi(x[:, None], x_mask[:, None], y, y_mask)  # (B, 1, T)
        return -log_p_yi.sum() / y_mask.sum()
    return loss


def null_question(example: Example, names: list[str], titles: set[str], share: float, filler_share: float,
                  rng: random.Random) -> str:
    """The example's question, phrased as in training, about an invented place that no passage names."""
    slots = classic_phrasing(example).slots
    subject = slots.get("city") or slots["country"].removeprefix("the ")
    invented = subject
    while invented in titles or invented.lower() == subject.lower():
        invented = invented_name(names, rng)
    phrased, p = rephrase(example, share, rng, filler_share)
    return restyle(p, replacer(subject, invented)(phrased.question))


def retriever_loss(encoder, tokenizer, corpus: Corpus, examples: dict[str, list[Example]], max_len: int = 64,
                   rephrase_share: float = 0.0, filler_share: float = 0.0, null_questions: int = 0,
                   offtopic_questions: int = 0, empty: EmptyPassage | None = None):
    """Stage 1, DPR: −log softmax over the batch's passages, one shared encoder for questions and passages.

    Negatives are the other questions' gold passages (in-batch) plus one hard negative per question:
    another passage of the same country, which shares the country's name with the gold passage, so that
    only the rest of the question (a relation, a city, a population) can tell them apart. A share
    `rephrase_share` of the questions is asked in a training phrasing (`rephrase`).

    `null_questions` questions about places that do not exist join each batch ("What is the capital of Naipala?",
    a training question with its subject replaced by an invented name, `null_question`), with no gold passage:
    their loss is KL(uniform ‖ softmax over the batch's passages), lowest when no passage stands out, which is
    what the memory signal (ragedu.relevance) reads on questions the memory holds nothing on.

    `offtopic_questions` made-up questions about other things ("Why do lobsters hibernate?", ragedu.offtopic) join
    each batch too, null questions as well. With an empty passage ∅ (`empty`), it is one more candidate for the
    real and the off-topic questions: the answer for the off-topic ones, a negative for the real ones
    (`relevance.empty_passage_loss`).
    """
    names, titles = training_names(examples), {p.title for p in corpus}
    asked = [e for e in examples.get("qa", []) if e.relation != "city_by_population"]  # its number names a city
    pairs = [(e, gold, e.entity) for task in examples.values() for e in task for gold in e.gold_ids]
    by_entity: dict[str, set[str]] = {}
    for _, gold, entity in pairs:
        by_entity.setdefault(entity, set()).add(gold)
    by_entity = {entity: sorted(ids) for entity, ids in by_entity.items()}

    def loss(rng: random.Random, batch: int) -> torch.Tensor:
        chosen = rng.sample(pairs, batch)
        hard = [rng.choice([i for i in by_entity[entity] if i != gold] or [gold]) for _, gold, entity in chosen]
        ids = list(dict.fromkeys([gold for _, gold, _ in chosen] + hard))  # unique: no false negatives
        questions = [restyle(p, e.question) for e, p in
                     (rephrase(e, rephrase_share, rng, filler_share) for e, _, _ in chosen)]
        questions += [null_question(rng.choice(asked), names, titles, rephrase_share, filler_share, rng)
                      for _ in range(null_questions)]
        questions += [style(offtopic_question(rng), *random_style(rng)) for _ in range(offtopic_questions)]
        q = tokenizer(questions, padding=True, truncation=True, max_length=max_len, return_tensors="pt")
        d = tokenizer([passage_text(corpus[corpus.row(i)]) for i in ids], padding=True, truncation=True,
                      max_length=128, return_tensors="pt")
        q_x = embed(encoder, q.input_ids, q.attention_mask)   # (B, D)
        d_z = embed(encoder, d.input_ids, d.attention_mask)   # (P, D), P ≤ 2B passages
        gold = torch.tensor([ids.index(g) for _, g, _ in chosen])
        scores = q_x @ d_z.T                                  # (B + null + off-topic, P) d(z)ᵀq(x)
        if empty is None:
            loss = torch.nn.functional.cross_entropy(scores[:batch], gold)
        else:   # real questions, then the off-topic ones, against the passages and ∅
            rows = torch.cat([torch.arange(batch), torch.arange(batch + null_questions, len(questions))])
            target = torch.cat([gold, torch.full((offtopic_questions,), -1)])
            loss = empty_passage_loss(scores[rows], empty(q_x[rows]), target)
        if len(questions) > batch:   # null and off-topic: KL(uniform ‖ p) = logsumexp(s) − mean(s) − log P ≥ 0
            null = scores[batch:]
            loss = loss + (null.logsumexp(-1) - null.mean(-1) - np.log(null.shape[1])).mean()
        return loss
    return loss


def reader_loss(generator: Generator, corpus: Corpus, examples, cfg: TrainConfig):
    """Stage 2: −log p_θ(y | x, gold passage), the generator alone reading the right passage."""
    grouped = by_relation(examples)
    names, values, facts = training_names(examples), claim_values(examples), passage_facts(examples)

    def loss(rng: random.Random, batch: int) -> torch.Tensor:
        rows = []
        for e in sample_examples(grouped, cfg.task_weights, batch, rng):
            gold = corpus[corpus.row(e.gold_ids[0])]
            phrased, p = rephrase(e, cfg.rephrase, rng, cfg.filler)
            if e.task == "claims" and cfg.claim_pairs:
                rows += claim_pair(e, [gold.title], [gold.text], names, values, cfg.counterfactual, rng, p)
            else:
                t, x, q, a = read_maybe_counterfactual(phrased, [gold.title], [gold.text], names, cfg.counterfactual,
                                                       rng, facts.get(gold.id), stated_of(e))
                rows.append((t, x, restyle(p, q), a))
        titles, texts, questions, answers = map(list, zip(*rows))
        ids, mask = generator.context_inputs(titles, texts, [fitted(generator, q) for q in questions])
        y, y_mask = generator.targets(answers)
        return -generator.log_p_yi(ids, mask, y, y_mask).sum() / len(rows)
    return loss


def rag_loss(model: RagModel, examples, cfg: TrainConfig):
    """Stage 3: −log p(y|x), marginalised over the top-K passages; 'both' averages the two models."""
    variants = ("sequence", "token") if cfg.variant == "both" else (cfg.variant,)
    grouped = by_relation(examples)
    names, facts = training_names(examples), passage_facts(examples)

    def loss(rng: random.Random, batch: int) -> torch.Tensor:
        chosen = sample_examples(grouped, cfg.task_weights, batch, rng)
        phrased = [rephrase(e, cfg.rephrase, rng, cfg.filler) for e in chosen]
        retrieved = model.retriever.retrieve([restyle(p, e.question) for e, p in phrased], cfg.k)
        rows = []
        for e, (e_phrased, p), titles, texts in zip(chosen, phrased, retrieved.titles, retrieved.texts):
            t, x, q, a = read_maybe_counterfactual(e_phrased, titles, texts, names, cfg.counterfactual, rng,
                                                   facts.get(e.gold_ids[0]), stated_of(e))
            rows.append((t, x, restyle(p, q), a))
        titles, texts, questions, answers = map(list, zip(*rows))
        questions = [fitted(model.generator, q) for q in questions]
        read = dataclasses.replace(retrieved, titles=titles, texts=texts, questions=questions)
        log_p_yi, _, _ = model.generator_log_p_yi(read, answers)
        return -sum(rag_log_likelihood(v, retrieved.log_p_z, log_p_yi).mean() for v in variants) / len(variants)
    return loss


def closed_book_loss(generator: Generator, examples, cfg: TrainConfig):
    """Baseline: −log p_θ(y | x) with the question alone, no passage."""
    grouped = by_relation(examples)

    def loss(rng: random.Random, batch: int) -> torch.Tensor:
        chosen = sample_examples(grouped, cfg.task_weights, batch, rng)
        x, x_mask = generator.question_inputs([fitted(generator, restyle(p, e.question)) for e, p in
                                               (rephrase(e, cfg.rephrase, rng, cfg.filler) for e in chosen)])
        y, y_mask = generator.targets([e.answer for e in chosen])
        return -generator.log_p_yi(x, x_mask, y, y_mask).sum() / len(chosen)
    return loss


@torch.no_grad()
def calibrate_relevance(retriever: Retriever, quantile: float, batch: int = 256) -> float:
    """τ from the dev questions the memory answers: the task files' and the held-out dev phrasings', QA and claims."""
    questions = [e.question for task in ("qa", "claims")
                 for e in load_task(task, "dev") + held_out_examples(task, "dev")]
    s_x = torch.cat([retriever.retrieve(questions[i:i + batch], 1).margin
                     for i in range(0, len(questions), batch)])   # (Q,) s(x), ragedu.relevance
    return calibrate(s_x, quantile)


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

    texts = [passage_text(p) for p in corpus] + [s for t in examples.values() for e in t for s in (e.question, e.answer)]
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
    seconds["rag"] = run_stage("rag", cfg.rag, {"query_encoder": retriever.query_encoder, "generator": bart},
                               trainable(retriever.query_encoder) + trainable(bart), rag_loss(model, examples, cfg),
                               ckpt, cfg, progress)

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
