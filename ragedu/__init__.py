"""ragedu: Retrieval-Augmented Generation (Lewis et al. 2020), small enough to read, run and see on a CPU."""
import os
import sys

# Before torch starts its OpenMP threads: idle threads sleep instead of spinning. The default model's matrices are
# small, so each op is a short parallel region; on a busy 2-core machine spinning threads fought the other
# processes and loading + the first answer took 6.7 s instead of 0.45 s (benchmarks/startup.py). Same threads,
# same results; a value you set yourself wins, and it has no effect if torch was imported first.
# `ragedu train` is the exception: its ops come back to back for minutes, and waking sleeping threads costs more
# than it saves (benchmarks/omp_policy.py: 5.8 denoising steps/s active, 4.7 passive, on 2 cores).
_TRAINING = sys.argv[1:2] == ["train"] and os.path.basename(sys.argv[0]) in ("ragedu", "-m")
os.environ.setdefault("OMP_WAIT_POLICY", "ACTIVE" if _TRAINING else "PASSIVE")

from ragedu.pretrained import load, load_closed_book, load_default  # noqa: E402  (after the line above)

__version__ = "0.1.0"
__all__ = ["load", "load_default", "load_closed_book", "from_hf"]


def from_hf(*args, **kwargs):
    """`ragedu.hf.from_hf`, imported on first use: the RAG and DPR classes of transformers take seconds to
    import, and only the released checkpoints need them."""
    from ragedu.hf import from_hf as load_hf_checkpoint

    return load_hf_checkpoint(*args, **kwargs)


from_hf.__doc__ += "\n\n" + "See ragedu.hf.from_hf for the arguments."
