"""The two RAG models by name: 'sequence' and 'token'.   (notebook 3)

Plain names, importable without torch, so that the command line can parse its arguments (and set torch's
threads up, see ragedu/__init__.py) before anything imports torch. The formulas are ragedu.marginalize.
"""
from __future__ import annotations

from ragedu.errors import RagEduError

VARIANTS = ("sequence", "token")

# one name and one colour per model, for every figure of the course and the explorer (ragedu.viz re-exports them)
VARIANT_NAMES = {"sequence": "RAG-Sequence", "token": "RAG-Token", "closed_book": "closed-book BART"}
VARIANT_COLORS = {"sequence": "tab:blue", "token": "tab:orange", "closed_book": "tab:gray"}
NEUTRAL_COLOR = "tab:green"   # what belongs to neither model (the retriever's p(z|x), training losses): not their blue


def check_variant(variant: str) -> str:
    if variant not in VARIANTS:
        raise RagEduError(f"unknown RAG variant {variant!r}; choose one of {VARIANTS}")
    return variant
