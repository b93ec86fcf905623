"""Class 8: checkpoints that cannot be a model are refused with the file and keys named."""
from __future__ import annotations

import copy
import os
import pickle

import pytest
import torch

from hstl_core.engine import Trainer, checkpoint_path, read_scalars, restore, run_dir
from hstl_core.engine.distributed import init_distributed
from hstl_core.model import CheckpointError, build_model, load_checkpoint, save_checkpoint

SMALL = {"model": "HSTL", "channels": [8, 16, 32], "class_num": 16, "input_height": 32}


def saved(tmp_path, change) -> str:
    model = build_model(SMALL)
    state = model.state_dict()
    change(state)
    path = tmp_path / "HSTL-00010.pt"
    torch.save({"model": state, "iteration": 10}, path)
    return str(path)


def test_a_non_tensor_state_dict_value_is_named(tmp_path):
    path = saved(tmp_path, lambda state: state.update({"HPP.p": 3.0, "Head1.fc_bin": "weights"}))
    with pytest.raises(CheckpointError, match=r"HSTL-00010.pt: 2 state-dict value\(s\) are not tensors: .*HPP.p \(float\)"):
        load_checkpoint(build_model(SMALL), path)


def test_nan_weights_are_refused_with_the_tensor_names(tmp_path):
    def poison(state):
        state["Head1.fc_bin"][0, 0, 0] = float("nan")
        state["HPP.p"].fill_(float("inf"))

    path = saved(tmp_path, poison)
    with pytest.raises(CheckpointError, match=r"2 tensor\(s\) hold NaN or infinite values .*Head1.fc_bin"):
        load_checkpoint(build_model(SMALL), path)


class RunsCode:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_a_hostile_pickle_is_refused_without_running(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"model": RunsCode()}, protocol=2))
    with pytest.raises(CheckpointError, match="evil.pt"):
        load_checkpoint(build_model(SMALL), path)
    assert not (tmp_path / "pwned").exists()


def test_a_missing_restore_hint_lists_the_saved_iterations(tiny_cfg, tmp_path):
    cfg = copy.deepcopy(tiny_cfg)
    model = build_model(cfg["model_cfg"])
    for iteration in (3, 6):
        save_checkpoint(model, checkpoint_path(cfg, iteration, output_root=tmp_path), iteration)
    cfg["trainer_cfg"]["restore_hint"] = 5
    with pytest.raises(FileNotFoundError, match=r"restore_hint 5: .* this run has checkpoints of iterations \[3, 6\]"):
        restore(cfg, "train", model, output_root=tmp_path)


def test_tensorboard_keeps_the_step_a_run_resumed_at(tiny_cfg, tmp_path):
    first = copy.deepcopy(tiny_cfg)
    first["trainer_cfg"]["total_iter"] = 3
    Trainer(first, init_distributed(), tmp_path).train()
    resumed = copy.deepcopy(tiny_cfg)
    resumed["trainer_cfg"]["restore_hint"] = 3
    Trainer(resumed, init_distributed(), tmp_path).train()
    steps = [step for step, _ in read_scalars(run_dir(resumed, "train", tmp_path))["scalar/total_loss"]]
    assert steps == [1, 2, 3, 4, 5, 6]
