"""The knowledge corpus: passages z with a stable id, a title and a short text.   (notebooks 1 and 6)

The paper's memory is 21M disjoint 100-word Wikipedia chunks; ours is a few thousand short
passages written by our own templates from GeoNames facts (see `ragedu.geonames`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ragedu.errors import RagEduError, RagEduFileNotFound

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
CORPUS_PATH = DATA_DIR / "corpus.jsonl"
TITLE_SEP = " / "  # between a passage's title and its text, as Hugging Face's RAG writes it


@dataclass(frozen=True)
class Passage:
    """One passage z: what the generator reads as `title / text`."""

    id: str
    title: str
    text: str


def passage_text(title: str, text: str, title_sep: str = TITLE_SEP) -> str:
    """A passage as the encoders read it, and as the generator reads it before the question: `title / text`"""
    return title + title_sep + text


class Corpus:
    """An ordered list of passages; the row of a passage is its id in the FAISS index."""

    def __init__(self, passages: list[Passage]):
        if not passages:
            raise RagEduError("a corpus needs at least one passage, got none")
        row_of_id: dict[str, int] = {}
        for row, passage in enumerate(passages):
            if not passage.id:
                raise RagEduError(f"passage at row {row} has an empty id")
            if passage.id in row_of_id:
                raise RagEduError(
                    f"duplicate passage id {passage.id!r} at rows {row_of_id[passage.id]} and {row}; "
                    "every passage needs a unique id"
                )
            row_of_id[passage.id] = row
        self.passages = list(passages)
        self._row_of_id = row_of_id

    def __len__(self) -> int:
        return len(self.passages)

    def __getitem__(self, row: int) -> Passage:
        return self.passages[row]

    def __iter__(self):
        return iter(self.passages)

    def row(self, passage_id: str) -> int:
        """The index row of a passage id (KeyError names the id if it is unknown)."""
        if passage_id not in self._row_of_id:
            raise KeyError(f"no passage with id {passage_id!r} in this corpus of {len(self)} passages")
        return self._row_of_id[passage_id]

    def __contains__(self, passage_id: str) -> bool:
        return passage_id in self._row_of_id


def load_corpus(path: str | Path = CORPUS_PATH) -> Corpus:
    """Read a corpus from JSON lines with the keys id, title, text."""
    path = Path(path)
    if not path.exists():
        raise RagEduFileNotFound(f"corpus file {path} does not exist (build it with `python -m ragedu.build_data`)")
    passages = []
    with path.open(encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                raise RagEduError(f"{path}:{line_no} is not a JSON object; write one passage a line as "
                                  '{"id": …, "title": …, "text": …}') from None
            missing = {"id", "title", "text"} - (row.keys() if isinstance(row, dict) else set())
            if missing or not all(isinstance(row[k], str) for k in ("title", "text")):
                raise RagEduError(f"{path}:{line_no}: a passage needs the keys id, title, text, with strings "
                                  f"for title and text; got {line.strip()[:60]!r}")
            passages.append(Passage(str(row["id"]), row["title"], row["text"]))
    return Corpus(passages)


def save_corpus(corpus: Corpus, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for p in corpus:
            f.write(json.dumps({"id": p.id, "title": p.title, "text": p.text}, ensure_ascii=False) + "\n")
