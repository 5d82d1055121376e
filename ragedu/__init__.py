"""ragedu: Retrieval-Augmented Generation (Lewis et al. 2020), small enough to read, run and see on a CPU."""
from ragedu.pretrained import load, load_closed_book, load_default

__version__ = "0.1.0"
__all__ = ["load", "load_default", "load_closed_book"]
