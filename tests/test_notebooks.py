"""The course's notebooks are committed without outputs (pytest --nbmake executes them in the suite), and call the library."""
import json
import re
from pathlib import Path

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ holds no .ipynb"


def test_notebooks_are_committed_without_outputs():
    for path in NOTEBOOKS:
        cells = json.loads(path.read_text())["cells"]
        dirty = [i for i, c in enumerate(cells) if c["cell_type"] == "code" and (c["outputs"] or c["execution_count"])]
        assert not dirty, f"{path.name}: cells {dirty} carry outputs; clear them before committing"


def test_notebook_cells_call_the_library_and_define_nothing():
    """Logic lives in ragedu, where it is imported and tested: no function, class or lambda is defined in a
    notebook, and nothing is imported from benchmarks/ or put on sys.path."""
    for path in NOTEBOOKS:
        cells = json.loads(path.read_text())["cells"]
        for i, cell in enumerate(cells):
            source = "".join(cell["source"])
            if cell["cell_type"] != "code":
                continue
            assert not re.search(r"^\s*(def|class)\s|\blambda\b", source, flags=re.M), f"{path.name} cell {i} defines code"
            assert "sys.path" not in source and "benchmarks" not in source, f"{path.name} cell {i} reaches outside ragedu"
