"""The manifest of a model directory: a SHA-256 digest of every file, checked before anything is read.   (every notebook)

    manifest.json    {"format": "ragedu-manifest/1",
                      "files": {"config.json": {"bytes": 542, "sha256": "…"}, "index.faiss": {…}, …}}

`ragedu.pretrained.save` (and so `ragedu train`) writes it last, inside the temporary directory that is renamed
over the old model, so a manifest always describes a complete directory. `ragedu.pretrained.load` checks it
first: a flipped byte in the weights, a reordered or swapped index, a corpus of another edition, a truncated
file are each refused with the file's name, before torch or FAISS read a byte of them. Because config.json
records the fingerprint of the corpus the index was built from, and the manifest pins config.json, corpus.jsonl
and index.faiss together, the index is tied to its passages as a whole, not by a sample of its rows.

A directory without a manifest (one saved before manifests existed, or assembled by hand) is refused with the
command that writes one after checking the whole index against the corpus: `ragedu manifest DIR`.
Hashing the shipped model's 21 MB takes about 0.02 s.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ragedu.errors import RagEduError, RagEduFileNotFound

MANIFEST = "manifest.json"
FORMAT = "ragedu-manifest/1"
CHUNK = 1 << 20  # bytes hashed at a time: a file is never read whole into memory


def file_digest(path: Path) -> str:
    """The SHA-256 of a file's bytes, in hex."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def manifest_digest(model_dir: str | Path) -> str:
    """SHA-256 of a model directory's manifest.json, which pins every file of the model: what a saved result
    (data/results/*.json) records to say which model it was measured on."""
    return file_digest(Path(model_dir) / MANIFEST)


def write_manifest(path: str | Path) -> Path:
    """Write manifest.json: a digest of every file in the directory `path` (not of sub-directories, hidden
    files or the manifest itself). Written beside, then renamed, so a reader never sees half a manifest."""
    path = Path(path)
    files = {f.name: {"bytes": f.stat().st_size, "sha256": file_digest(f)}
             for f in sorted(path.iterdir()) if f.is_file() and f.name != MANIFEST and not f.name.startswith(".")}
    tmp = path / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps({"format": FORMAT, "files": files}, indent=2) + "\n")
    os.replace(tmp, path / MANIFEST)
    return path / MANIFEST


def read_manifest(path: Path) -> dict[str, dict]:
    """The files of a directory's manifest: name -> {"bytes", "sha256"}."""
    where = path / MANIFEST
    if not where.exists():
        raise RagEduError(f"model directory {path} has no {MANIFEST}, so its files cannot be verified; if you "
                          f"trust it, check it and write one with `ragedu manifest {path}` (ragedu train and ragedu.pretrained.save write one)")
    try:
        manifest = json.loads(where.read_text(encoding="utf-8"))
        files = manifest["files"]
        ok = manifest["format"] == FORMAT and all(
            isinstance(e["sha256"], str) and isinstance(e["bytes"], int) for e in files.values())
    except (ValueError, KeyError, TypeError, AttributeError):
        ok = False
    if not ok:
        raise RagEduError(f"{where} is not a {FORMAT} manifest (damaged or edited); re-copy the model directory, "
                          "or retrain it with `ragedu train`")
    return files


def verify(path: str | Path, needed: tuple[str, ...]) -> None:
    """Refuse a directory whose manifest does not list every file in `needed` (the files the loader will read),
    or where any listed file is missing or differs from its digest. Sizes are compared first: a truncated
    file is caught without hashing it."""
    path = Path(path)
    files = read_manifest(path)
    unlisted = [name for name in needed if (path / name).exists() and name not in files]
    if unlisted:
        raise RagEduError(f"{path / unlisted[0]} is not in {MANIFEST}, so it was added after the model was saved; "
                          "remove it, or re-copy the model directory")
    for name, entry in files.items():
        f = path / name
        if not f.is_file():
            raise RagEduFileNotFound(f"{f} is listed in {MANIFEST} but missing; re-copy the model directory, "
                                     "or retrain it with `ragedu train`")
        if f.stat().st_size != entry["bytes"] or file_digest(f) != entry["sha256"]:
            raise RagEduError(f"{f} was changed or damaged since the model was saved (its SHA-256 differs from "
                              f"{MANIFEST}); re-copy the model directory, or retrain it with `ragedu train`")
