"""Packaging: environment.yml lists what pyproject.toml does; CI runs the README's test command."""
import ast
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
CONDA_NAMES = {"pytorch": "torch"}  # conda-forge name -> PyPI name


def split_requirement(requirement: str) -> tuple[str, str]:
    name, spec = re.match(r"^([A-Za-z0-9_.\-]+)\s*(.*)$", requirement.strip()).groups()
    return name.lower().replace("_", "-"), spec.replace(" ", "")


def test_environment_yml_lists_the_same_packages_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip_side = dict(split_requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda_side = {}
    for entry in env["dependencies"]:
        if isinstance(entry, str):
            name, spec = split_requirement(entry)
            if name not in ("python", "pip"):
                conda_side[CONDA_NAMES.get(name, name)] = spec
        else:
            assert entry["pip"] == ["-e ."], "the pip section installs ragedu itself and nothing else"
    assert conda_side == pip_side


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```(?:bash|sh)?\n(.*?)\n```", text, flags=re.S)


def test_readme_opens_with_the_course_command_then_the_test_command():
    first, second = readme_commands()[:2]
    assert "jupyter lab" in first and "pip install" in first
    assert "pytest" in second and "pip install" in second


def test_ci_runs_the_readme_test_command_unchanged():
    test_command = readme_commands()[1]
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert test_command.strip() in ci_lines
    assert any(re.fullmatch(r".*pip install .*torch==2\.13\.0", line) for line in ci_lines)


def run_python(code: str, **env) -> str:
    import os
    import subprocess
    import sys

    environ = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"} | env
    return subprocess.run([sys.executable, "-c", code], env=environ, capture_output=True, text=True,
                          check=True).stdout.split()


def test_importing_ragedu_reads_no_argv_and_imports_no_torch():
    # whatever the command line says, the package only sets its interactive default, and torch waits
    code = ("import sys; sys.argv = ['ragedu', 'train']; import os, ragedu, ragedu.cli; "
            "print('torch' in sys.modules, os.environ['OMP_WAIT_POLICY'])")
    assert run_python(code) == ["False", "PASSIVE"]


def test_ragedu_train_chooses_active_threads_before_torch_unless_the_user_chose():
    code = ("import os, sys; from ragedu.cli import main; main(['train', '--config', '/no/such.json']); "
            "print(os.environ['OMP_WAIT_POLICY'], 'torch' in sys.modules)")
    assert run_python(code) == ["ACTIVE", "True"]            # torch came after the choice
    assert run_python(code, OMP_WAIT_POLICY="PASSIVE") == ["PASSIVE", "True"]


def test_what_is_where_lists_every_module_and_every_module_names_its_notebook():
    text = (ROOT / "README.md").read_text()
    table = text[text.index("## What is where"):text.index("## How it is checked")]
    listed = set(re.findall(r"`ragedu/(\w+)\.py`", table))
    modules = {p.stem for p in (ROOT / "ragedu").glob("*.py")} - {"__init__"}
    assert listed == modules, f"missing from the table: {modules - listed}; gone from ragedu/: {listed - modules}"
    for name in sorted(modules):
        source = (ROOT / "ragedu" / f"{name}.py").read_text()
        lines = len(source.splitlines())
        assert lines <= 350, f"ragedu/{name}.py has {lines} lines; one concept fits in 350"
        first_paragraph = ast.get_docstring(ast.parse(source)).split("\n\n")[0]
        assert "notebook" in first_paragraph, f"ragedu/{name}.py does not name the notebook that introduces it"
