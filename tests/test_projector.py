"""Figures a class reads from the back row: no notebook asks for a figure wider than 10 inches, and the check that
tests/test_viz*.py run on every view's figure (conftest.projector_problems) finds small text and wide figures."""
import json
import re
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt

from conftest import projector_problems

ROOT = Path(__file__).resolve().parents[1]


def test_no_notebook_or_view_asks_for_a_figure_wider_than_10_inches():
    sources = {p: "".join("".join(c["source"]) for c in json.loads(p.read_text())["cells"] if c["cell_type"] == "code")
               for p in sorted((ROOT / "notebooks").glob("*.ipynb"))}
    sources.update({p: p.read_text() for p in (ROOT / "ragedu").glob("*.py")})
    widths = [(p.name, float(w)) for p, src in sources.items() for w in re.findall(r"figsize=\(([\d.]+),", src)]
    assert len(widths) >= 15
    assert not [(name, w) for name, w in widths if w > 10]


def test_the_views_style_is_12_pt_and_the_check_finds_small_text_and_wide_figures():
    import ragedu.viz  # noqa: F401

    assert matplotlib.rcParams["font.size"] >= 12 and matplotlib.rcParams["xtick.labelsize"] >= 12
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.set_title("p(z | x)")
    assert projector_problems(fig) == []
    ax.text(0.5, 0.5, "tiny", fontsize=8)
    fig.set_figwidth(14)
    assert projector_problems(fig) == ["14.0 inches wide", "'tiny' at 8 pt"]
    plt.close(fig)
