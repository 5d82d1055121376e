"""ragedu: Retrieval-Augmented Generation (Lewis et al. 2020), small enough to read, run and see on a CPU."""
import os

# Before torch starts its OpenMP threads: idle threads sleep instead of spinning. The default model's matrices are
# small, so each op is a short parallel region; on a busy 2-core machine spinning threads fought the other
# processes and loading + the first answer took 6.7 s instead of 0.45 s (benchmarks/startup.py). Same threads,
# same results; a value you set yourself wins, and it has no effect if torch was imported first. So importing
# ragedu imports no torch: the loaders below are imported on first use, and `ragedu train` (ragedu.cli), whose
# ops come back to back for minutes, can still choose ACTIVE before it imports torch.
WAIT_POLICY_SET_BY_USER = "OMP_WAIT_POLICY" in os.environ
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
__all__ = ["load", "load_default", "load_closed_book", "from_hf"]


def __getattr__(name: str):
    """`ragedu.load`, `load_default`, `load_closed_book` (ragedu.pretrained) and `from_hf` (ragedu.hf), imported on
    first use; the RAG and DPR classes of transformers behind from_hf take seconds to import, and only the
    released checkpoints need them."""
    if name in ("load", "load_default", "load_closed_book"):
        from ragedu import pretrained

        return getattr(pretrained, name)
    if name == "from_hf":
        from ragedu.hf import from_hf

        return from_hf
    raise AttributeError(f"module 'ragedu' has no attribute {name!r}")
