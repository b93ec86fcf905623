"""HSTL model structure: state-dict keys/order/shapes, parameter counts, init, config checks."""
from __future__ import annotations

import math

import pytest
import torch

from hstl_core.model import build_model

PAPER_CB = {"model": "HSTL", "channels": [32, 64, 128], "class_num": 74}
PAPER_OU = {"model": "HSTL_OU", "channels": [32, 64, 128, 256], "class_num": 5153}
PAPER_GAIT3D = {"model": "HSTL_Gait3D", "channels": [32, 64, 128, 256], "class_num": 3000}


def arme_keys(level: int, regions: int, widths: list[tuple[int, int]]) -> list[tuple[str, list[int]]]:
    """Keys of one ARME level: two ARME convs, one 3D conv per region each."""
    return [
        (f"arme{level}.{layer}.conv3d.{region}.conv3d.weight", [c_out, c_in, 3, 3, 3])
        for layer, (c_in, c_out) in enumerate(widths)
        for region in range(regions)
    ]


def astp_keys(name: str, regions: int, proj: tuple[int, int] | None) -> list[tuple[str, list[int]]]:
    keys = [(f"{name}.hpp.{region}.p", [1]) for region in range(regions)]
    if proj:
        keys.append((f"{name}.proj.conv.weight", [proj[1], proj[0], 1, 1]))
    return keys


def fta_keys(regions: int, channels: int) -> list[tuple[str, list[int]]]:
    return [
        (f"fta.mma.{region}.fcs.{branch}.{kind}", [channels, channels, 1] if kind == "weight" else [channels])
        for region in range(regions)
        for branch in range(2)
        for kind in ("weight", "bias")
    ]


def tail_keys(parts: int, width: int, class_num: int) -> list[tuple[str, list[int]]]:
    return [
        ("HPP.p", [1]),
        ("Head0.fc_bin", [parts, width, width]),
        ("Bn.weight", [width]),
        ("Bn.bias", [width]),
        ("Bn.running_mean", [width]),
        ("Bn.running_var", [width]),
        ("Bn.num_batches_tracked", []),
        ("Head1.fc_bin", [parts, width, class_num]),
    ]


def official_cb_keys() -> list[tuple[str, list[int]]]:
    """Spec D.5, in order."""
    return (
        [("arme1.0.conv3d.weight", [32, 1, 3, 3, 3])]
        + astp_keys("astp1", 1, (32, 128))
        + arme_keys(2, 2, [(32, 32), (32, 64)])
        + astp_keys("astp2", 2, (64, 128))
        + fta_keys(2, 64)
        + astp_keys("astp2_fta", 2, (64, 128))
        + arme_keys(3, 4, [(64, 128), (128, 128)])
        + astp_keys("astp3", 4, None)
        + tail_keys(73, 128, 74)
    )


def official_four_level_keys(regions: list[int], parts: int, class_num: int) -> list[tuple[str, list[int]]]:
    """Spec D.6 (HSTL-OU.py / HSTL-Gait3D.py registration order)."""
    return (
        [("arme1.0.conv3d.weight", [32, 1, 3, 3, 3]), ("arme1.2.conv3d.weight", [32, 32, 3, 3, 3])]
        + astp_keys("astp1", 1, (32, 256))
        + arme_keys(2, regions[0], [(32, 64), (64, 64)])
        + astp_keys("astp2", regions[0], (64, 256))
        + fta_keys(regions[0], 64)
        + astp_keys("astp2_fta", regions[0], (64, 256))
        + arme_keys(3, regions[1], [(64, 128), (128, 128)])
        + astp_keys("astp3", regions[1], (128, 256))
        + arme_keys(4, regions[2], [(128, 256), (256, 256)])
        + astp_keys("astp4", regions[2], None)
        + tail_keys(parts, 256, class_num)
    )


def layout(model: torch.nn.Module) -> list[tuple[str, list[int]]]:
    return [(key, list(value.shape)) for key, value in model.state_dict().items()]


@pytest.fixture(scope="module")
def paper_cb():
    return build_model(PAPER_CB)


def test_casia_b_state_dict_matches_official_keys_order_shapes(paper_cb):
    assert layout(paper_cb) == official_cb_keys()


@pytest.mark.parametrize(
    ("cfg", "regions", "parts"), [(PAPER_OU, [3, 5, 6], 50), (PAPER_GAIT3D, [2, 4, 5], 46)], ids=["OU", "Gait3D"]
)
def test_four_level_variants_match_official_keys(cfg, regions, parts):
    model = build_model(cfg)
    assert layout(model) == official_four_level_keys(regions, parts, cfg["class_num"])


def count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_parameter_counts_of_paper_configs(paper_cb):
    assert count(paper_cb) == 4_745_834
    assert count(build_model(PAPER_OU)) == 89_103_603
    assert count(build_model(PAPER_GAIT3D)) == 54_719_087


def test_small_config_keeps_the_architecture():
    model = build_model({"model": "HSTL", "channels": [8, 16, 32], "class_num": 16, "input_height": 32})
    assert model.parts == 1 + 2 + 2 + 4 + 32
    assert model.arme2[0].splits == [20, 12] and model.arme3[0].splits == [4, 16, 8, 4]
    assert count(model) == 241_890
    names = [key for key, _ in layout(model)]
    assert names == [key for key, _ in official_cb_keys()]


def test_initialisation_follows_opengait(paper_cb):
    model = paper_cb
    weight = model.arme3[1].conv3d[0].conv3d.weight
    fan_in, fan_out = 128 * 27, 128 * 27
    assert weight.abs().max() <= math.sqrt(6 / (fan_in + fan_out)) + 1e-7
    assert float(weight.detach().std()) == pytest.approx(math.sqrt(2 / (fan_in + fan_out)), rel=0.05)
    assert torch.count_nonzero(model.fta.mma[0].fcs[0].bias) == 0
    assert model.Head0.fc_bin.abs().max() <= math.sqrt(6 / (128 * 128 + 73 * 128)) + 1e-7
    assert float(model.Bn.weight.detach().mean()) == pytest.approx(1.0, abs=0.01)
    assert torch.count_nonzero(model.Bn.bias) == 0
    assert all(p.item() == 6.5 for name, p in model.named_parameters() if name.endswith(".p"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"model": "GaitGL"}, "model_cfg.model"),
        ({"channels": [32, 64]}, "model_cfg.channels"),
        ({"channels": [32, 0, 128]}, "model_cfg.channels"),
        ({"class_num": 0}, "model_cfg.class_num"),
        ({"input_height": 48.0}, "model_cfg.input_height"),
        ({"input_height": 36}, "input_height 36"),
        ({"dataset_name": "OUMVLP"}, "unknown key"),
    ],
)
def test_bad_model_cfg_raises_clear_value_error(change, message):
    with pytest.raises(ValueError, match=message):
        build_model({**PAPER_CB, **change})


def test_ou_regions_scale_to_a_32_high_input():
    model = build_model({"model": "HSTL_OU", "channels": [8, 16, 32, 64], "class_num": 16, "input_height": 32})
    assert model.arme2[0].splits == [2, 12, 2]
    assert model.parts == 1 + 3 + 3 + 5 + 6 + 16
