"""Can the shipped generator learn claim verification when it reads the gold passage? A probe, not a stage.

    python benchmarks/claims_probe.py [--json] [--steps 600] [--counterfactual 1.0] [--model DIR]

Fine-tunes a copy of the shipped generator (or --model's) on training claims alone (the reader's loss: gold
passage, claims in pairs, the given share of counterfactual examples) and prints, every 100 steps, the training
loss and two accuracies on 200 dev claims read with their gold passage: as they are (`dev_accuracy`), and made
into training pairs with every value invented (`dev_invented_accuracy`). A falling loss with both near 0.5 means
the generator fits the training claims in a way that does not transfer to unseen entities; the invented pairs
rising alone means it learns to compare claim and passage, but not yet on real names.
"""
import argparse
import copy
import json
import random

import torch

import ragedu
from ragedu.generator import Generator
from ragedu.tasks import LABELS, load_task
from ragedu.augment import claim_pair, claim_values, training_names
from ragedu.stages import reader_loss, training_examples
from ragedu.train import TrainConfig


@torch.no_grad()
def accuracy(generator: Generator, rows: list[tuple]) -> float:
    """Share of (titles, texts, claim, label) rows whose label token is likelier, reading those passages."""
    titles, texts, claims, labels = map(list, zip(*rows))
    ids, mask = generator.context_inputs(titles, texts, claims)
    scores = []
    for label in LABELS:
        y, y_mask = generator.targets([label] * len(claims))
        scores.append(generator.log_p_yi(ids, mask, y, y_mask)[:, 0, 0])  # (B,) the label token
    predicted = torch.stack(scores, -1).argmax(-1).tolist()
    return round(sum(LABELS[p] == label for p, label in zip(predicted, labels)) / len(rows), 3)


def gold_rows(corpus, claims) -> list[tuple]:
    """Each dev claim as it is, with its gold passage."""
    gold = [corpus[corpus.row(e.gold_ids[0])] for e in claims]
    return [([p.title], [p.text], e.question, e.answer) for p, e in zip(gold, claims)]


def counterfactual_rows(corpus, claims, names, values) -> list[tuple]:
    """Each dev claim as training makes them (`claim_pair` with every passage value invented): does what the
    generator learnt on training entities work on unseen ones when the names are invented?"""
    rng = random.Random(0)
    return [row for e in claims for p in [corpus[corpus.row(e.gold_ids[0])]]
            for row in claim_pair(e, [p.title], [p.text], names, values, 1.0, rng)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--counterfactual", type=float, default=1.0)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--model", help="a model directory (default: the shipped model)")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = ragedu.load(args.model) if args.model else ragedu.load_default()
    corpus = model.retriever.corpus
    generator = Generator(copy.deepcopy(model.generator.model), model.generator.tokenizer)
    dev = random.Random(0).sample(load_task("claims", "dev"), 200)
    train = training_examples()
    real, invented = gold_rows(corpus, dev), counterfactual_rows(corpus, dev, training_names(train), claim_values(train))
    loss_fn = reader_loss(generator, corpus, train,
                          TrainConfig(task_weights={"claims": 1.0}, counterfactual=args.counterfactual))
    optimizer = torch.optim.AdamW(generator.model.parameters(), lr=args.lr)
    generator.model.eval()
    rows = [{"step": 0, "dev_accuracy": accuracy(generator, real), "dev_invented_accuracy": accuracy(generator, invented)}]
    losses = []
    for step in range(args.steps):
        generator.model.train()
        loss = loss_fn(random.Random(f"claims-probe-{step}"), 32)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if (step + 1) % 100 == 0:
            generator.model.eval()
            rows.append({"step": step + 1, "train_loss_last_100": round(sum(losses[-100:]) / 100, 3),
                         "dev_accuracy": accuracy(generator, real), "dev_invented_accuracy": accuracy(generator, invented)})
            if not args.json:
                print(json.dumps(rows[-1]), flush=True)
    if args.json:
        print(json.dumps({"counterfactual": args.counterfactual, "steps": args.steps, "curve": rows}))


if __name__ == "__main__":
    main()
