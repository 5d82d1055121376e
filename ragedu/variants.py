"""The two RAG models by name: 'sequence' and 'token'.   (notebook 3)

Plain names, importable without torch, so that the command line can parse its arguments (and set torch's
threads up, see ragedu/__init__.py) before anything imports torch. The formulas are ragedu.marginalize.
"""
from __future__ import annotations

from ragedu.errors import RagEduError

VARIANTS = ("sequence", "token")


def check_variant(variant: str) -> str:
    if variant not in VARIANTS:
        raise RagEduError(f"unknown RAG variant {variant!r}; choose one of {VARIANTS}")
    return variant
