"""ragedu: Retrieval-Augmented Generation (Lewis et al. 2020), small enough to read, run and see on a CPU."""
from ragedu.pretrained import load, load_closed_book, load_default

__version__ = "0.1.0"
__all__ = ["load", "load_default", "load_closed_book", "from_hf"]


def from_hf(*args, **kwargs):
    """`ragedu.hf.from_hf`, imported on first use: the RAG and DPR classes of transformers take seconds to
    import, and only the released checkpoints need them."""
    from ragedu.hf import from_hf as load_hf_checkpoint

    return load_hf_checkpoint(*args, **kwargs)


from_hf.__doc__ += "\n\n" + "See ragedu.hf.from_hf for the arguments."
