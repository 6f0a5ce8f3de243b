"""The conda environment and pyproject.toml list the same packages."""
import re
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def _pip_requirements_from_env() -> set[str]:
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    return {r for r in pip if not r.startswith("-e")}


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert set(project["dependencies"]) == _pip_requirements_from_env()


def test_torch_is_pinned_to_the_cpu_wheel():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    torch = [d for d in project["dependencies"] if re.match(r"torch\b", d)]
    assert torch == ["torch==2.13.0"]


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    assert "make test" in readme and "make demo" in readme
    assert "make test" in (REPO / ".ci" / "run").read_text()
