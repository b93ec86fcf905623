"""The install files agree with each other and with the design card."""
from __future__ import annotations

import re
import tomllib

import yaml

from hstl_core.paths import REPO_ROOT

CORE = {"torch", "torchvision", "numpy", "opencv-python", "matplotlib", "pyyaml", "tqdm", "tensorboard"}
SEMINAR = {"jupyterlab", "ipywidgets", "nbval", "pytest"}
CONDA_NAMES = {"pytorch": "torch"}
HEADLESS = {"opencv-python-headless": "opencv-python"}


def requirement_name(spec: str) -> str:
    name = re.split(r"[<>=!~\[ ]", spec.strip(), maxsplit=1)[0].lower()
    return HEADLESS.get(name, CONDA_NAMES.get(name, name))


def test_environment_yml_has_every_package_of_the_design_card():
    env = yaml.safe_load((REPO_ROOT / "environment.yml").read_text())
    names = set()
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            names |= {requirement_name(d) for d in dep["pip"] if not d.startswith("-")}
        else:
            names.add(requirement_name(dep))
    assert "python" in names
    assert CORE | SEMINAR <= names, sorted((CORE | SEMINAR) - names)
    pip_lines = next(dep["pip"] for dep in env["dependencies"] if isinstance(dep, dict))
    assert "-e .[seminar]" in pip_lines, "the package itself installs through the pip section"


def test_pyproject_declares_the_design_card_and_constraints_pin_it():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    core = {requirement_name(d) for d in project["dependencies"]}
    extra = {requirement_name(d) for d in project["optional-dependencies"]["seminar"]}
    assert CORE <= core and SEMINAR <= extra
    pinned = {}
    for line in (REPO_ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pinned[requirement_name(name)] = version
    assert core | extra <= set(pinned), sorted((core | extra) - set(pinned))
    assert pinned["torch"] == "2.14.1" and pinned["torchvision"] == "0.29.1"
