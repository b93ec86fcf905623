"""Layered configs: merge rule, validation errors, diff, the shipped configs, the CLI."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hstl_core import config
from hstl_core.model.build import BUILDERS, MODELS
from hstl_core.paths import CONFIG_ROOT, REPO_ROOT

HERE = Path(__file__).parent / "configs"
SHIPPED = sorted(p for p in CONFIG_ROOT.glob("*.yaml") if p.name != "default.yaml")


def write(tmp_path: Path, text: str, name: str = "exp.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def minimal(extra: str = "") -> str:
    return (
        "data_cfg: {dataset_name: SynGait, dataset_root: data/x, dataset_partition: data/p.json}\n"
        "model_cfg: {model: HSTL, channels: [8, 16, 32], class_num: 4}\n" + extra
    )


def test_merge_dicts_recursively_and_lists_replace():
    base = {"a": {"x": 1, "y": [1, 2]}, "b": [1, 2, 3]}
    over = {"a": {"y": [9]}, "b": [4]}
    merged = config.merge(base, over)
    assert merged == {"a": {"x": 1, "y": [9]}, "b": [4]}
    assert base == {"a": {"x": 1, "y": [1, 2]}, "b": [1, 2, 3]}, "inputs are not modified"


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_config_loads(path):
    cfg = config.load(path)
    assert cfg["model_cfg"]["model"] in {*MODELS, *BUILDERS}, "build_model knows the model"
    assert cfg["trainer_cfg"]["transform"], "phase transforms inherit the top-level one"


def test_official_hstl_config_loads_as_published_and_notes_inert_keys():
    cfg = config.load(HERE / "official_hstl.yaml")
    assert cfg["optimizer_cfg"] == {"solver": "Adam", "lr": 1.0e-4, "weight_decay": 5.0e-4}
    assert cfg["trainer_cfg"]["sampler"]["batch_size"] == [8, 8]
    assert cfg["data_cfg"]["cache"] is False, "supplied by the shipped default"
    notes = config.inert_keys(cfg)
    assert any(note.startswith("trainer_cfg.enable_distributed") for note in notes)


def test_course_fork_faults_are_refused_naming_each_one():
    with pytest.raises(config.ConfigError) as err:
        config.load(HERE / "course_fork_hstl.yaml")
    lines = str(err.value).splitlines()
    assert all(line.startswith(str(HERE / "course_fork_hstl.yaml")) for line in lines)
    text = str(err.value)
    assert "trainer_cfg.sampler.frames_skip_num_fixed: unknown key; did you mean frames_skip_num" in text
    assert "trainer_cfg.sampler.batch_size: TripletSampler needs [P, K]" in text
    assert "trainer_cfg.sampler.sample_method: unknown key" in text


def test_unknown_nested_key_names_file_key_and_nearest(tmp_path):
    path = write(tmp_path, minimal("trainer_cfg: {totl_iter: 5}\n"))
    with pytest.raises(config.ConfigError) as err:
        config.load(path)
    assert str(err.value).startswith(f"{path}: trainer_cfg.totl_iter: unknown key; did you mean total_iter")
    assert len(str(err.value).splitlines()) == 1


def test_unknown_top_level_key(tmp_path):
    path = write(tmp_path, minimal("trainer: {}\n"))
    with pytest.raises(config.ConfigError, match=r"trainer: unknown key; did you mean trainer_cfg"):
        config.load(path)


def test_wrong_type_is_named(tmp_path):
    path = write(tmp_path, minimal("trainer_cfg: {total_iter: lots}\n"))
    with pytest.raises(config.ConfigError, match=r"trainer_cfg.total_iter: expected int, got str 'lots'"):
        config.load(path)


def test_bool_is_not_an_int(tmp_path):
    path = write(tmp_path, minimal("trainer_cfg: {save_iter: true}\n"))
    with pytest.raises(config.ConfigError, match=r"trainer_cfg.save_iter: expected int, got bool True"):
        config.load(path)


def test_yaml_1e4_pitfall_is_explained(tmp_path):
    path = write(tmp_path, minimal("optimizer_cfg: {lr: 1e-4}\n"))
    with pytest.raises(config.ConfigError, match=r"optimizer_cfg.lr: expected a number, got the string '1e-4'.*1\.0e-4"):
        config.load(path)


def test_optimizer_arguments_are_checked_against_torch(tmp_path):
    path = write(tmp_path, minimal("optimizer_cfg: {solver: Adam, momentum: 0.9}\n"))
    with pytest.raises(config.ConfigError, match=r"optimizer_cfg.momentum: Adam takes no argument 'momentum'"):
        config.load(path)
    path = write(tmp_path, minimal("optimizer_cfg: {solver: SDG, lr: 0.1}\n"))
    with pytest.raises(config.ConfigError, match=r"optimizer_cfg.solver: 'SDG' is not in torch.optim; did you mean SGD"):
        config.load(path)


def test_missing_required_key(tmp_path):
    path = write(tmp_path, "model_cfg: {model: HSTL, channels: [8, 16, 32], class_num: 4}\n")
    with pytest.raises(config.ConfigError) as err:
        config.load(path)
    assert f"{path}: data_cfg.dataset_root: required key is missing" in str(err.value).splitlines()


def test_bad_yaml_names_file_and_line(tmp_path):
    path = write(tmp_path, "data_cfg:\n  dataset_name: [unclosed\nmodel_cfg: {}\n")
    with pytest.raises(config.ConfigError, match=rf"{path}: line \d+, column \d+: not valid YAML"):
        config.load(path)


def test_unknown_loss_and_transform_types(tmp_path):
    path = write(tmp_path, minimal("loss_cfg: [{type: TripletLos, margin: 0.2}]\ntransform: {type: Cut}\n"))
    with pytest.raises(config.ConfigError) as err:
        config.load(path)
    text = str(err.value)
    assert "loss_cfg[0].type: unknown type 'TripletLos'; did you mean TripletLoss" in text
    assert "transform[0].type: unknown type 'Cut'" in text


def test_diff_lists_changes_additions_and_removals():
    a = {"x": {"lr": 0.1, "keep": 1}, "gone": 3}
    b = {"x": {"lr": 0.01, "keep": 1, "new": [1, 2]}}
    assert config.diff(a, b) == ["x.lr: 0.1 -> 0.01", "+ x.new: [1, 2]", "- gone: 3"]


def test_official_vs_fork_recipe_diff():
    lines = config.diff(config.load(CONFIG_ROOT / "hstl.yaml"), config.load(CONFIG_ROOT / "hstl_fork_sgd.yaml"))
    assert "optimizer_cfg.solver: Adam -> SGD" in lines
    assert "trainer_cfg.total_iter: 90000 -> 80000" in lines
    assert "scheduler_cfg.milestones: [70000] -> [10000, 20000, 30000]" in lines


def test_loading_never_modifies_the_files(tmp_path):
    path = write(tmp_path, minimal())
    before = path.read_bytes()
    config.load(path)
    assert path.read_bytes() == before


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hstl_core", *args], capture_output=True, text=True, cwd=REPO_ROOT, timeout=120
    )


def test_cli_config_show_and_diff():
    shown = run_cli("config", "show", str(CONFIG_ROOT / "hstl.yaml"))
    assert shown.returncode == 0, shown.stderr
    assert yaml.safe_load(shown.stdout) == config.load(CONFIG_ROOT / "hstl.yaml")
    diffed = run_cli("config", "diff", str(CONFIG_ROOT / "hstl.yaml"), str(CONFIG_ROOT / "hstl_oumvlp.yaml"))
    assert diffed.returncode == 0, diffed.stderr
    assert "model_cfg.model: HSTL -> HSTL_OU" in diffed.stdout.splitlines()


def test_cli_reports_a_bad_config_in_one_line_per_problem(tmp_path):
    path = write(tmp_path, minimal("trainer_cfg: {totl_iter: 5}\n"))
    result = run_cli("config", "show", str(path))
    assert result.returncode == 2
    assert f"{path}: trainer_cfg.totl_iter: unknown key; did you mean total_iter" in result.stderr


def test_transform_entries_match_what_the_data_code_builds(tmp_path):
    from hstl_core.data.transforms import build_transform

    good = minimal(
        "transform:\n  - {type: BaseSilCuttingTransform, img_w: 64, disvor: 255.0}\n"
        "  - {type: torchvision.RandomHorizontalFlip, p: 0.5}\n"
    )
    cfg = config.load(write(tmp_path, good))
    assert build_transform(cfg["trainer_cfg"]["transform"]) is not None
    bad = write(tmp_path, minimal("transform: {type: BaseSilTransform, img_shape: [64, 44]}\n"), "bad.yaml")
    with pytest.raises(config.ConfigError, match=r"transform\[0\]\.img_shape: unknown key"):
        config.load(bad)
