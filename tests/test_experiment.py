"""The experiment runner: grid files, skipping and rerunning, the report, paired statistics."""
from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import yaml

from hstl_core.cli import main as cli_main
from hstl_core.config import ConfigError
from hstl_core.data.syngait import ensure_syngait
from hstl_core.experiments import load_grid, paired, run_grid
from hstl_core.experiments.grid import _set_class_num
from hstl_core.experiments.reference import gait_energy_image, gei_features, gei_reference
from hstl_core.experiments.runner import is_done, result_path

SMOKE_PARTITION = {"TRAIN_SET": [f"{i:03d}" for i in range(1, 15)], "TEST_SET": ["015", "016", "017", "018"]}


def smoke_grid(folder, seeds=(0, 1)) -> dict:
    """Two tiny HSTL runs on SynGait small, four test ids, a few frames: seconds on a CPU."""
    partition = folder / "smoke-partition.json"
    partition.write_text(json.dumps(SMOKE_PARTITION))
    return {
        "name": "smoke",
        "seeds": list(seeds),
        "reference": "HSTL",
        "flops_input": [30, 32, 22],
        "common": {
            "trainer_cfg": {
                "total_iter": 2, "log_iter": 1, "save_iter": 1,
                "sampler": {"batch_size": [4, 2], "frames_num_fixed": 8},
            },
            "evaluator_cfg": {"sampler": {"batch_size": 8, "sample_type": "all_ordered", "frames_all_limit": 8}},
        },
        "benchmarks": {
            "SynGait": {
                "headline": "mean",
                "config": {
                    "data_cfg": {"dataset_name": "SynGait", "dataset_root": "data/syngait/small-32",
                                 "dataset_partition": str(partition), "num_workers": 0},
                    "transform": [{"type": "BaseSilCuttingTransform", "img_w": 32}],
                },
            }
        },
        "configs": {"HSTL": {"model_cfg": {"model": "HSTL", "channels": [4, 8, 16], "class_num": 1, "input_height": 32}}},
    }


def write_grid(folder, grid: dict):
    path = folder / "grid.yaml"
    path.write_text(yaml.safe_dump(grid))
    return path


def test_a_wrong_grid_names_every_problem(tmp_path):
    grid = smoke_grid(tmp_path)
    grid.update(seeds=[0, 0], reference="HSTL++", epochs=3)
    with pytest.raises(ConfigError) as err:
        load_grid(write_grid(tmp_path, grid))
    message = str(err.value)
    for part in ("unknown key 'epochs'", "seeds must be", "reference must name"):
        assert part in message


def test_a_run_config_is_validated_and_named(tmp_path):
    grid = smoke_grid(tmp_path)
    grid["configs"]["HSTL"]["optimizer_cfg"] = {"solver": "Adam", "lr": "1e-3"}
    with pytest.raises(ConfigError, match=r"run HSTL x SynGait x seed 0: optimizer_cfg.lr"):
        load_grid(write_grid(tmp_path, grid)).runs()


def test_class_num_is_set_everywhere_inside_model_cfg():
    model_cfg = {"model": "Baseline", "SeparateBNNecks": {"class_num": 74, "parts_num": 16}, "bin_num": [16]}
    assert _set_class_num(model_cfg, 14)
    assert model_cfg["SeparateBNNecks"]["class_num"] == 74  # a larger published value is kept
    model_cfg["SeparateBNNecks"]["class_num"] = 1
    assert _set_class_num(model_cfg, 14) and model_cfg["SeparateBNNecks"]["class_num"] == 14
    assert not _set_class_num({"model": "HSTL"}, 14)


def test_paired_comparison_statistics():
    def run(config, seed, value):
        return {"config": config, "benchmark": "B", "seed": seed, "metrics": {"m": value}}

    results = [run("a", s, v) for s, v in enumerate([11.0, 12.0, 13.0])]
    results += [run("b", s, v) for s, v in enumerate([10.0, 10.0, 10.0])]
    p = paired(results, "a", "b", "B", "m")
    assert p.diffs == {0: 1.0, 1: 2.0, 2: 3.0}
    assert p.mean == pytest.approx(2.0) and p.sd == pytest.approx(1.0) and p.wins == 3
    assert p.t == pytest.approx(2.0 / (1.0 / math.sqrt(3)))
    assert p.p == pytest.approx(0.0742, abs=1e-3)
    assert p.beyond_spread  # |2.0| > sd of a (1.0) and of b (0.0), all seeds agree
    noisy = [run("c", s, v) for s, v in enumerate([9.0, 14.0, 13.0])]
    assert not paired(results + noisy, "c", "b", "B", "m").beyond_spread  # one seed disagrees


def test_two_run_smoke_grid_runs_reports_and_skips_when_done(tmp_path, capsys):
    ensure_syngait("small", img_size=32)
    path = write_grid(tmp_path, smoke_grid(tmp_path))
    grid = load_grid(path)
    runs = grid.runs()
    assert [r.run_id for r in runs] == ["HSTL__SynGait__s0", "HSTL__SynGait__s1"]
    assert runs[0].cfg["model_cfg"]["class_num"] == 14 and runs[1].cfg["trainer_cfg"]["seed"] == 1

    assert cli_main(["experiment", str(path), "--output_root", str(tmp_path / "out")]) == 0
    assert "2 run(s) trained" in capsys.readouterr().out
    result = json.loads(result_path(grid, runs[0]).read_text())
    assert result["iterations"] == 2 and result["test_ids"] == 4 and result["params"] > 0 and result["flops"] > 0
    assert set(result["metrics"]) >= {"NM", "BG", "CL", "mean"} and set(result["subsets"]) == {"A", "B"}
    assert all(0 <= result["metrics"][k] <= 100 for k in ("NM", "BG", "CL"))
    rows = list(csv.DictReader((grid.results_dir / "results.csv").open()))
    assert [r["seed"] for r in rows] == ["0", "1"] and rows[0]["code_revision"]
    assert "| HSTL | 2 |" in (grid.results_dir / "summary.md").read_text()

    assert run_grid(grid, runs, tmp_path / "out") == {"done": 2, "busy": 0, "finished": 0}
    grid_changed = smoke_grid(tmp_path)
    grid_changed["common"]["trainer_cfg"]["total_iter"] = 3
    changed = load_grid(write_grid(tmp_path, grid_changed))
    assert not any(is_done(changed, spec) for spec in changed.runs())  # a changed config is not "done"


def test_a_paper_grid_runs_the_shipped_config_files_unchanged():
    grid = load_grid("experiments/paper_casiab.yaml")
    runs = {r.run_id: r.cfg for r in grid.runs()}
    hstl, base = runs["HSTL__CASIA-B__s1"], runs["GaitBase__CASIA-B__s0"]
    assert hstl["model_cfg"] == {"model": "HSTL", "channels": [32, 64, 128], "class_num": 74}
    assert hstl["trainer_cfg"]["total_iter"] == 90000 and hstl["trainer_cfg"]["seed"] == 1
    assert base["model_cfg"]["SeparateBNNecks"]["class_num"] == 74  # kept: CASIA-B.json has 73 ids (no 005)
    assert base["optimizer_cfg"]["solver"] == "SGD"


def test_gait_energy_image_is_the_mean_silhouette_in_unit_range():
    sils = np.zeros((4, 2, 3), dtype=np.float32)
    sils[:2, 0, 0] = 1.0
    sils[:, 1, 2] = 1.0
    gei = gait_energy_image(sils)
    assert gei.dtype == np.float32 and gei.shape == (2, 3)
    assert gei[0, 0] == 0.5 and gei[1, 2] == 1.0 and gei.sum() == 1.5


def test_gei_reference_scores_every_test_sequence_with_the_benchmark_protocol(tiny_cfg):
    features = gei_features(tiny_cfg)
    keys = list(zip(features["labels"], features["types"], features["views"]))
    assert keys == sorted(set(keys)) and features["embeddings"].shape == (len(keys), 1, 32 * 22), "the evaluator's 32 -> 22 cut"
    metrics = gei_reference(tiny_cfg)
    assert set(metrics) == {"NM", "BG", "CL", "mean"}
    assert 10.0 < metrics["NM"] <= 100.0, "same-view GEIs of one walker must match above chance (10 test ids)"
