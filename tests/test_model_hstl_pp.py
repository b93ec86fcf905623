"""HSTL++: every switch alone, equality with HSTL when all are off, sizes, augmentation, training."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from hstl_core import config
from hstl_core.data.transforms import build_transform
from hstl_core.engine import Trainer
from hstl_core.engine.distributed import init_distributed
from hstl_core.model import build_model, load_checkpoint
from hstl_core.model.hstl_pp import SWITCHES, PartConfidence, RegionP3D, part_rows
from hstl_core.model.summary import summary
from hstl_core.paths import CONFIG_ROOT

SMALL_HSTL = {"model": "HSTL", "channels": [8, 16, 32], "class_num": 14, "input_height": 32}
SMALL_PP = config.load(CONFIG_ROOT / "hstlpp_small.yaml")["model_cfg"]
OFF = {name: False for name in SWITCHES}


def test_with_every_switch_off_hstlpp_is_hstl():
    torch.manual_seed(0)
    hstl = build_model(SMALL_HSTL).eval()
    plus = build_model({**SMALL_HSTL, "model": "HSTLPP", **OFF}).eval()
    plus.load_state_dict(hstl.state_dict(), strict=True)
    sils = torch.rand(2, 9, 32, 22)
    with torch.no_grad():
        expected, got = hstl(sils), plus(sils)
    assert set(got) == set(expected)
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=1e-5, atol=1e-6)


SIZES = {
    # variant: (parameters, GFLOPs of a 30-frame 32 x 22 sequence), hstl_core.model.summary
    "hstl": (239_266, 0.814),
    "+p3d_arme": (142_626, 0.440),
    "+downsample": (203_938, 0.098),
    "+bnneck_head": (241_826, 0.814),
    "+part_confidence": (239_348, 0.814),
    "hstlpp": (1_586_908, 0.878),
    "-p3d_arme": (3_072_220, 0.924),
    "-downsample": (2_029_324, 6.476),
    "-bnneck_head": (1_582_812, 0.878),
    "-part_confidence": (1_586_874, 0.878),
}


def variant(name: str) -> dict:
    if name == "hstl":
        return {**SMALL_HSTL, "model": "HSTLPP", **OFF}
    if name == "hstlpp":
        return dict(SMALL_PP)
    switch = name[1:]
    return {**SMALL_HSTL, "model": "HSTLPP", **OFF, switch: True} if name[0] == "+" else {**SMALL_PP, switch: False}


@pytest.mark.parametrize("name", sorted(SIZES))
def test_each_variant_builds_with_its_pinned_size_and_the_output_contract(name):
    model = build_model(variant(name))
    table = summary(model, (1, 30, 32, 22))
    assert (table.total_params, round(table.total_flops / 1e9, 3)) == SIZES[name]
    outputs = model.train()(torch.rand(3, 6, 32, 22))
    parts = model.parts
    assert outputs["embeddings"].shape == (3, parts, model.Head0.fc_bin.shape[2] if hasattr(model, "Head0") else model.FCs.fc_bin.shape[2])
    assert outputs["logits"].shape == (3, parts, 14)


def test_switches_change_the_modules_they_name():
    plain = dict(build_model(variant("hstl")).named_children())
    assert type(plain["arme2"]).__name__ == "MaskedSequential" and "Head0" in plain
    full = dict(build_model(variant("hstlpp")).named_children())
    assert type(full["arme2"]).__name__ == type(full["arme3"]).__name__ == "RegionP3D"
    assert {"pool2", "pool3", "FCs", "BNNecks", "part_gate"} <= set(full) and "Head0" not in full
    assert build_model(variant("hstlpp")).parts == 1 + 2 + 2 + 4 + 8


def test_regions_of_the_p3d_level_stay_separate():
    torch.manual_seed(3)
    level = RegionP3D(4, 8, [6, 10]).eval()
    x = torch.rand(1, 4, 5, 16, 11)
    changed = x.clone()
    changed[:, :, :, 6:] = torch.rand_like(changed[:, :, :, 6:])
    with torch.no_grad():
        assert torch.equal(level(x)[:, :, :, :6], level(changed)[:, :, :, :6])
        assert not torch.equal(level(x)[:, :, :, 6:], level(changed)[:, :, :, 6:])


def test_part_confidence_drops_for_parts_whose_rows_are_empty():
    gate = PartConfidence(part_rows([(0, 16), (0, 8), (8, 16)], 16))
    sils = torch.zeros(2, 1, 4, 16, 11)
    sils[:, :, :, 2:16, 3:8] = 1.0
    sils[1, :, :, 8:] = 0.0  # the legs of the second sequence are occluded
    confidence = gate(sils)
    assert confidence.shape == (2, 3)
    assert confidence[1, 2] < 0.5 < confidence[0, 2]
    assert confidence[1, 1] > confidence[0, 1], "relative to the visible body, the upper half holds more"


def test_packed_sequences_equal_each_run_alone_with_everything_on():
    torch.manual_seed(4)
    model = build_model(SMALL_PP).eval()
    first, second = torch.rand(1, 8, 32, 22), torch.rand(1, 5, 32, 22)
    with torch.no_grad():
        packed = model(torch.cat([first, second], dim=1), seqL=torch.tensor([8, 5]))["embeddings"]
        alone = torch.cat([model(first)["embeddings"], model(second)["embeddings"]])
    torch.testing.assert_close(packed, alone, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("cfg", "problem"),
    [({**SMALL_PP, "p3d": True}, r"unknown key\(s\) \['p3d'\]"), ({**SMALL_PP, "downsample": 1}, "model_cfg.downsample"),
     ({**SMALL_PP, "channels": [8, 16]}, "model_cfg.channels")],
)
def test_bad_switches_are_named(cfg, problem):
    with pytest.raises(ValueError, match=problem):
        build_model(cfg)


def walker(frames: int = 6) -> np.ndarray:
    sils = np.zeros((frames, 32, 32), np.uint8)
    for t in range(frames):
        sils[t, 4:28, 10 + t : 18 + t] = 255
    return sils


@pytest.mark.parametrize("name", ["RandomPerspective", "RandomHorizontalFlip", "RandomRotate", "RandomErasing"])
def test_augmentations_change_every_frame_of_a_sequence_the_same_way(name):
    """With prob 1 the augmentation happens; frames that were shifted copies stay shifted
    copies only if the same draw was used for all (checked on identical frames)."""
    torch.manual_seed(5)
    same = np.repeat(walker(1), 5, axis=0)
    out = build_transform({"type": name, "prob": 1.0})(same)
    assert out.shape == same.shape and not np.array_equal(out, same)
    assert all(np.array_equal(frame, out[0]) for frame in out)
    assert np.array_equal(build_transform({"type": name, "prob": 0.0})(same), same)


def test_per_frame_erasing_draws_a_box_per_frame_and_bad_arguments_are_named():
    torch.manual_seed(6)
    out = build_transform({"type": "RandomErasing", "prob": 1.0, "per_frame": True})(np.full((6, 32, 22), 1.0, np.float32))
    assert len({frame.tobytes() for frame in out}) > 1
    with pytest.raises(ValueError, match="RandomRotate: unknown argument"):
        build_transform({"type": "RandomRotate", "prob": 0.5, "angle": 3})
    with pytest.raises(ValueError, match="prob must be in"):
        build_transform({"type": "RandomHorizontalFlip", "prob": 2})


def test_opengaits_nested_compose_loads_from_a_config():
    cfg = config.load(CONFIG_ROOT / "gaitbase_gait3d.yaml")
    torch.manual_seed(7)
    out = build_transform(cfg["trainer_cfg"]["transform"])(np.repeat(walker(1), 3, axis=0).repeat(2, 1).repeat(2, 2))
    assert out.shape == (3, 64, 44) and out.dtype == np.float32 and float(out.max()) <= 1.0


@pytest.mark.parametrize("name", ["hstlpp_small", "hstlpp_casiab", "hstlpp_gait3d", "hstlpp_grew"])
def test_shipped_hstlpp_configs_load(name):
    cfg = config.load(CONFIG_ROOT / f"{name}.yaml")
    assert all(cfg["model_cfg"][switch] for switch in SWITCHES)
    assert cfg["optimizer_cfg"]["solver"] == "SGD"
    types = [entry["type"] for entry in cfg["trainer_cfg"]["transform"]]
    assert "BaseSilCuttingTransform" in types or types == ["Compose"]


@pytest.mark.slow
def test_the_trainer_trains_hstlpp_with_augmentation(tmp_path):
    """20 iterations of hstlpp_small (SGD, augmentation, every switch) through the real loop."""
    from hstl_core.data.syngait import ensure_syngait

    ensure_syngait("small", img_size=32)
    cfg = config.load(CONFIG_ROOT / "hstlpp_small.yaml")
    cfg["data_cfg"]["num_workers"] = 0
    cfg["model_cfg"]["channels"] = [8, 16, 32]
    cfg["trainer_cfg"].update(total_iter=20, save_iter=20, log_iter=10, save_name="tiny_hstlpp")
    cfg["trainer_cfg"]["sampler"].update(batch_size=[2, 2], frames_num_fixed=4)
    trainer = Trainer(copy.deepcopy(cfg), init_distributed(), tmp_path)
    before = {key: value.clone() for key, value in trainer.model.named_parameters()}
    outcome = trainer.train()
    assert outcome["iteration"] == 20
    assert all(np.isfinite(value) for value in outcome["scalars"].values())
    assert all(not torch.equal(before[key], value) for key, value in trainer.model.named_parameters())
    assert load_checkpoint(build_model(cfg["model_cfg"]), outcome["checkpoint"], strict=True) == 20
