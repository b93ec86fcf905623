"""The training engine: path rule, atomic checkpoints, exact resume, torchrun with gloo."""
from __future__ import annotations

import copy
import json
import logging
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from hstl_core import config
from hstl_core.atomic import atomic_open
from hstl_core import build_model
from hstl_core.engine import LaunchError, Trainer, checkpoint_path, evaluate_model, extract_embeddings, launch, run_dir
from hstl_core.engine.distributed import init_distributed
from hstl_core.model import load_checkpoint
from hstl_core.paths import CONFIG_ROOT


def test_checkpoint_path_rule_gives_the_released_checkpoint_path():
    cfg = config.load(CONFIG_ROOT / "hstl.yaml")
    assert checkpoint_path(cfg, 80000) == Path("output/CASIA-B/HSTL/HSTL/checkpoints/HSTL-80000.pt")
    assert checkpoint_path(cfg, 5000).name == "HSTL-05000.pt"
    assert run_dir(cfg, "test", "/runs") == Path("/runs/CASIA-B/HSTL/HSTL")


def test_atomic_write_leaves_the_old_file_when_interrupted(tmp_path):
    target = tmp_path / "HSTL-00010.pt"
    target.write_bytes(b"old checkpoint")
    with pytest.raises(KeyboardInterrupt):
        with atomic_open(target) as handle:
            handle.write(b"half of a new one")
            raise KeyboardInterrupt
    assert target.read_bytes() == b"old checkpoint"
    assert [p.name for p in tmp_path.iterdir()] == ["HSTL-00010.pt"], "no temporary file left behind"


def losses_of(trainer: Trainer, steps: int) -> list[float]:
    batches = iter(trainer.loader)
    return [trainer.step(next(batches))["scalar/total_loss"] for _ in range(steps)]


def test_resume_reproduces_the_uninterrupted_losses(tiny_cfg, tmp_path):
    info = init_distributed()
    uninterrupted = losses_of(Trainer(copy.deepcopy(tiny_cfg), info, tmp_path / "a"), 6)

    first_half = copy.deepcopy(tiny_cfg)
    first_half["trainer_cfg"]["total_iter"] = 3
    outcome = Trainer(first_half, info, tmp_path / "b").train()
    assert outcome["checkpoint"] == checkpoint_path(first_half, 3, output_root=tmp_path / "b")
    content = torch.load(outcome["checkpoint"], weights_only=True)
    assert sorted(content) == ["iteration", "model", "optimizer", "scheduler"] and content["iteration"] == 3

    resumed_cfg = copy.deepcopy(tiny_cfg)
    resumed_cfg["trainer_cfg"]["restore_hint"] = 3
    resumed = Trainer(resumed_cfg, info, tmp_path / "b")
    assert resumed.iteration == 3
    assert losses_of(resumed, 3) == pytest.approx(uninterrupted[3:], rel=1e-5, abs=1e-6)


def test_two_gloo_processes_train_and_end_with_identical_weights(tiny_cfg, tmp_path):
    cfg = copy.deepcopy(tiny_cfg)
    cfg["trainer_cfg"].update(save_iter=3, with_test=True)
    cfg["evaluator_cfg"]["sampler"]["batch_size"] = 16
    result = launch(cfg, nproc=2, phase="train", output_root=tmp_path, quiet=True)
    assert result["iteration"] == 6 and result["world_size"] == 2 and result["backend"] == "gloo"
    assert sorted(result["tests"]) == ["3", "6"], "a test in the middle (eval, then back to training)"
    digests = result["rank_weight_digests"]
    assert len(digests) == 2 and digests[0] == digests[1]
    model = build_model(cfg["model_cfg"])
    assert load_checkpoint(model, result["checkpoint"]) == 6

    alone = evaluate_model(cfg, model, init_distributed())
    assert result["tests"]["6"] == pytest.approx(alone["summary"]), "features gathered from 2 ranks = one process"


def test_a_failing_rank_makes_launch_raise_with_its_log(tiny_cfg, tmp_path):
    broken = copy.deepcopy(tiny_cfg)
    broken["data_cfg"]["dataset_root"] = str(tmp_path / "no_such_dataset")
    with pytest.raises(LaunchError) as err:
        launch(broken, nproc=2, phase="train", output_root=tmp_path, quiet=True)
    text = str(err.value)
    assert "failed" in text and "no_such_dataset" in text


def processes_mentioning(text: str) -> list[int]:
    """PIDs whose command line contains ``text`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_interrupting_launch_stops_the_whole_process_group(tiny_cfg, tmp_path):
    cfg = copy.deepcopy(tiny_cfg)
    cfg["trainer_cfg"].update(total_iter=100_000, save_name="interrupted")
    cfg_file = tmp_path / "interrupted.yaml"
    cfg_file.write_text(config.dump(cfg))
    script = (
        "from hstl_core import config\nfrom hstl_core.engine import launch\n"
        f"launch(config.load({str(cfg_file)!r}, base=None), nproc=2, output_root={str(tmp_path)!r})\n"
    )
    caller = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    rank_config = str(run_dir(cfg, "train", tmp_path) / "launch-train.yaml")
    deadline = time.monotonic() + 240
    for line in caller.stdout:
        if "Iteration 00001" in line or time.monotonic() > deadline:
            break
    assert len(processes_mentioning(rank_config)) >= 2, "torchrun and its ranks are running"
    caller.send_signal(signal.SIGINT)
    caller.communicate(timeout=60)
    assert caller.returncode != 0
    time.sleep(2)
    assert processes_mentioning(rank_config) == [], "no rank survives the interrupted cell"


@pytest.mark.slow
def test_compiled_training_follows_the_eager_losses_and_logs_the_compile_time(tiny_cfg, tmp_path, caplog):
    info = init_distributed()
    eager = losses_of(Trainer(copy.deepcopy(tiny_cfg), info, tmp_path / "eager"), 2)
    cfg = copy.deepcopy(tiny_cfg)
    cfg["trainer_cfg"]["compile"] = True
    with caplog.at_level(logging.INFO, logger="hstl"):
        compiled = losses_of(Trainer(cfg, info, tmp_path / "compiled"), 2)
    assert compiled == pytest.approx(eager, rel=1e-4)
    assert "torch.compile: first training step took" in caplog.text


@pytest.mark.slow
def test_compiled_evaluation_gives_the_eager_embeddings_for_every_length(tiny_cfg, caplog):
    cfg = copy.deepcopy(tiny_cfg)
    cfg["evaluator_cfg"]["sampler"]["batch_size"] = 16
    torch.manual_seed(0)
    model = build_model(cfg["model_cfg"])
    info = init_distributed()
    eager = extract_embeddings(cfg, model, info)
    cfg["evaluator_cfg"]["compile"] = True
    with caplog.at_level(logging.INFO, logger="hstl"):
        compiled = extract_embeddings(cfg, model, info)
    assert compiled["labels"] == eager["labels"] and compiled["views"] == eager["views"]
    assert compiled["embeddings"] == pytest.approx(eager["embeddings"], rel=1e-4, abs=1e-5)
    assert "torch.compile: first test batch took" in caplog.text


def test_cli_test_phase_evaluates_a_checkpoint_and_saves_json_beside_it(tiny_cfg, tmp_path):
    cfg = copy.deepcopy(tiny_cfg)
    cfg["trainer_cfg"]["total_iter"] = 3
    Trainer(cfg, init_distributed(), tmp_path).train()
    cfg["evaluator_cfg"]["sampler"]["batch_size"] = 16
    cfg_file = tmp_path / "tiny.yaml"
    cfg_file.write_text(config.dump(cfg))
    result = subprocess.run(
        [sys.executable, "-m", "hstl_core", "--cfgs", str(cfg_file), "--phase", "test", "--iter", "3", "--output_root", str(tmp_path)],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Rank-1 accuracy (%), identical views excluded" in result.stdout
    saved = checkpoint_path(cfg, 3, output_root=tmp_path).with_suffix(".test.json")
    content = json.loads(saved.read_text())
    assert set(content["summary"]) == {"NM", "BG", "CL"}
    assert len(content["NM"]["per_view"]) == 11


def test_fix_bn_survives_the_switch_back_from_evaluation(tiny_cfg, tmp_path):
    cfg = copy.deepcopy(tiny_cfg)
    cfg["trainer_cfg"]["fix_BN"] = True
    trainer = Trainer(cfg, init_distributed(), tmp_path)
    trainer.model.eval()  # what an evaluation in the middle of training leaves behind
    trainer.train_mode()
    norms = [m for m in trainer.model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert norms and not any(m.training for m in norms)
    assert trainer.model.training
