"""The package's layers (pyproject.toml's [tool.importlinter]): imports point down only, and no module imports
itself back through others, imports inside functions included. Checked by import-linter on the package as it is,
and on copies with one bad import added, which it must refuse."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("importlinter")

ROOT = Path(__file__).resolve().parent.parent


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    """import-linter's verdict on the package under `root`, with `root`'s pyproject.toml."""
    code = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True, no_logo=True))"
    return subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True,
                          env={"PYTHONPATH": str(root), "PATH": ""})


def copy_with(tmp_path: Path, module: str, lines: str) -> Path:
    """ragedu and pyproject.toml copied under tmp_path, `lines` appended to ragedu/{module}.py"""
    shutil.copytree(ROOT / "ragedu", tmp_path / "ragedu", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    with (tmp_path / "ragedu" / f"{module}.py").open("a") as f:
        f.write("\n\n" + lines + "\n")
    return tmp_path


def test_the_package_keeps_its_layers_and_has_no_cycle():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


def test_an_upward_import_inside_a_function_breaks_the_layers(tmp_path):
    # the data layer reaching up into evaluation, as ragedu.memory once did from the corpus builder's side
    result = lint_imports(copy_with(tmp_path, "corpus", "def _reach_up():\n    from ragedu.evaluate import mean"))
    assert result.returncode == 1
    assert "the command line BROKEN" in result.stdout
    assert "ragedu.corpus is not allowed to import ragedu.evaluate" in result.stdout


def test_a_cycle_within_one_layer_is_refused(tmp_path):
    # geonames -> tasks -> geonames: both are data, so only the cycle check can see it
    result = lint_imports(copy_with(tmp_path, "geonames", "def _build():\n    from ragedu import tasks"))
    assert result.returncode == 1
    assert "no import cycle between ragedu's modules BROKEN" in result.stdout
    assert "the command line KEPT" in result.stdout                           # the layers alone allow it
    assert ".tasks -> .geonames" in result.stdout or ".geonames -> .tasks" in result.stdout
