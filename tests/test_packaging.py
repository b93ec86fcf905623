"""The install files agree with each other and with the design card.

``constraints.txt`` is the one home of the seminar's versions: ``make`` installs
them into ``.venv`` and CI tests them; ``environment.yml`` (conda, for GPU users)
must pin exactly the same, and ``pyproject.toml`` must declare every package of the
design card.
"""
from __future__ import annotations

import re
import tomllib

import pytest
import yaml

from hstl_core.paths import REPO_ROOT

CORE = {"torch", "torchvision", "numpy", "opencv-python", "matplotlib", "pyyaml", "tqdm", "tensorboard"}
SEMINAR = {"jupyterlab", "ipywidgets", "nbval", "pytest"}
DESIGN_CARD = {"torch", "torchvision", "jupyterlab", "ipywidgets", "matplotlib", "opencv-python", "numpy", "nbval"}
HEADLESS = {"opencv-python-headless": "opencv-python"}
RETIRED_CHANNELS = {"pytorch", "nvidia"}


def requirement_name(spec: str) -> str:
    """The distribution a requirement names, normalised; the headless OpenCV counts as opencv-python."""
    name = re.split(r"[<>=!~\[ ]", spec.strip(), maxsplit=1)[0]
    name = re.sub(r"[-_.]+", "-", name).lower()
    return HEADLESS.get(name, name)


def exact_pins(lines: list[str], where: str) -> dict[str, str]:
    """``{name: version}`` of ``name==version`` lines; anything else but comments is an error."""
    pins: dict[str, str] = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([A-Za-z0-9_.+!\-]+)", line)
        assert match, f"{where}: {line!r} is not an exact pin name==version"
        name = requirement_name(match.group(1))
        assert name not in pins, f"{where}: {name} pinned twice"
        pins[name] = match.group(2)
    return pins


@pytest.fixture(scope="module")
def constraints() -> dict[str, str]:
    return exact_pins((REPO_ROOT / "constraints.txt").read_text().splitlines(), "constraints.txt")


@pytest.fixture(scope="module")
def environment() -> dict:
    return yaml.safe_load((REPO_ROOT / "environment.yml").read_text())


def pip_section(environment: dict) -> list[str]:
    sections = [dep["pip"] for dep in environment["dependencies"] if isinstance(dep, dict)]
    assert len(sections) == 1, "environment.yml: one pip section expected"
    return sections[0]


def test_environment_yml_pins_exactly_what_constraints_pins(environment: dict, constraints: dict[str, str]) -> None:
    pip = pip_section(environment)
    pins = exact_pins([line for line in pip if not line.startswith("-")], "environment.yml pip section")
    differ = {name: (pins.get(name), constraints.get(name)) for name in pins.keys() | constraints.keys()
              if pins.get(name) != constraints.get(name)}
    assert not differ, f"environment.yml vs constraints.txt (name: (yml, txt)): {differ}"
    assert DESIGN_CARD <= pins.keys(), sorted(DESIGN_CARD - pins.keys())
    assert "-e .[seminar]" in pip, "the package itself installs through the pip section"


def test_environment_yml_takes_only_python_and_pip_from_conda(environment: dict) -> None:
    """PyTorch and the rest come from pip at the tested versions, never from the retired channels."""
    assert not RETIRED_CHANNELS & set(environment["channels"]), environment["channels"]
    conda = sorted(requirement_name(dep).split("=")[0] for dep in environment["dependencies"] if isinstance(dep, str))
    assert conda == ["pip", "python"], conda
    python = next(dep for dep in environment["dependencies"] if isinstance(dep, str) and dep.startswith("python"))
    minimum = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert tuple(map(int, python.split("=")[-1].split("."))) >= tuple(map(int, minimum.lstrip(">=").split(".")))


def test_pyproject_declares_the_design_card_and_constraints_pin_it(constraints: dict[str, str]) -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    core = {requirement_name(d) for d in project["dependencies"]}
    extra = {requirement_name(d) for d in project["optional-dependencies"]["seminar"]}
    assert CORE <= core and SEMINAR <= extra
    assert DESIGN_CARD <= core | extra
    assert core | extra <= set(constraints), sorted((core | extra) - set(constraints))
    assert constraints["torch"] == "2.14.1" and constraints["torchvision"] == "0.29.1"


def test_exact_pins_rejects_a_range() -> None:
    with pytest.raises(AssertionError, match="not an exact pin"):
        exact_pins(["torch>=2.1"], "here")
