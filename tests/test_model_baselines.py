"""GaitBase and DeepGaitV2: OpenGait's model_cfg and state-dict layout, output contract, training."""
from __future__ import annotations

import copy

import pytest
import torch

from hstl_core import config
from hstl_core.engine import Trainer
from hstl_core.engine.distributed import init_distributed
from hstl_core.model import build_model, load_checkpoint
from hstl_core.paths import CONFIG_ROOT

GAITBASE_CASIAB = {
    "model": "Baseline",
    "backbone_cfg": {
        "type": "ResNet9", "block": "BasicBlock", "channels": [64, 128, 256, 512],
        "layers": [1, 1, 1, 1], "strides": [1, 2, 2, 1], "maxpool": False,
    },
    "SeparateFCs": {"in_channels": 512, "out_channels": 256, "parts_num": 16},
    "SeparateBNNecks": {"class_num": 74, "in_channels": 256, "parts_num": 16},
    "bin_num": [16],
}


def deepgaitv2_cfg(mode: str, layers: list[int], channels=(64, 128, 256, 512), class_num=3000, **extra) -> dict:
    backbone = {"in_channels": 1, "mode": mode, "layers": layers, "channels": list(channels)}
    return {"model": "DeepGaitV2", "Backbone": backbone, "SeparateBNNecks": {"class_num": class_num}, **extra}


SMALL_P3D = deepgaitv2_cfg("p3d", [1, 1, 1, 1], (8, 16, 32, 64), class_num=10, bin_num=[8])


def bn(prefix: str, width: int) -> dict[str, tuple[int, ...]]:
    return {f"{prefix}.{name}": (width,) for name in ("weight", "bias", "running_mean", "running_var")} | {
        f"{prefix}.num_batches_tracked": ()
    }


def basic_block(prefix: str, c_in: int, c_out: int, strided: bool) -> dict[str, tuple[int, ...]]:
    """torchvision's BasicBlock: conv1/bn1/conv2/bn2 and a 1x1 conv + BN downsample."""
    keys = {f"{prefix}.conv1.weight": (c_out, c_in, 3, 3), **bn(f"{prefix}.bn1", c_out),
            f"{prefix}.conv2.weight": (c_out, c_out, 3, 3), **bn(f"{prefix}.bn2", c_out)}
    if strided or c_in != c_out:
        keys |= {f"{prefix}.downsample.0.weight": (c_out, c_in, 1, 1), **bn(f"{prefix}.downsample.1", c_out)}
    return keys


def p3d_block(prefix: str, c_in: int, c_out: int, strided: bool) -> dict[str, tuple[int, ...]]:
    """OpenGait's BasicBlockP3D: SetBlockWrapper'd conv+BN pairs, shortcut3d/sbn, 3D downsample."""
    keys = {f"{prefix}.conv1.forward_block.0.weight": (c_out, c_in, 3, 3), **bn(f"{prefix}.conv1.forward_block.1", c_out),
            f"{prefix}.conv2.forward_block.0.weight": (c_out, c_out, 3, 3), **bn(f"{prefix}.conv2.forward_block.1", c_out),
            f"{prefix}.shortcut3d.weight": (c_out, c_out, 3, 1, 1), **bn(f"{prefix}.sbn", c_out)}
    if strided or c_in != c_out:
        keys |= {f"{prefix}.downsample.0.weight": (c_out, c_in, 1, 1, 1), **bn(f"{prefix}.downsample.1", c_out)}
    return keys


def block3d(prefix: str, c_in: int, c_out: int, strided: bool) -> dict[str, tuple[int, ...]]:
    keys = {f"{prefix}.conv1.weight": (c_out, c_in, 3, 3, 3), **bn(f"{prefix}.bn1", c_out),
            f"{prefix}.conv2.weight": (c_out, c_out, 3, 3, 3), **bn(f"{prefix}.bn2", c_out)}
    if strided or c_in != c_out:
        keys |= {f"{prefix}.downsample.0.weight": (c_out, c_in, 1, 1, 1), **bn(f"{prefix}.downsample.1", c_out)}
    return keys


def head(parts: int, c_in: int, c_fc: int, class_num: int) -> dict[str, tuple[int, ...]]:
    return {"FCs.fc_bin": (parts, c_in, c_fc), "BNNecks.fc_bin": (parts, c_fc, class_num), **bn("BNNecks.bn1d", c_fc * parts)}


def expected_gaitbase(channels, layers, strides, parts, c_fc, class_num) -> dict[str, tuple[int, ...]]:
    root = "Backbone.forward_block"
    keys = {f"{root}.conv1.conv.weight": (channels[0], 1, 3, 3), **bn(f"{root}.bn1", channels[0])}
    c_in = channels[0]
    for stage, (width, blocks, stride) in enumerate(zip(channels, layers, strides), start=1):
        for index in range(blocks):
            keys |= basic_block(f"{root}.layer{stage}.{index}", c_in, width, index == 0 and stride > 1)
            c_in = width
    return keys | head(parts, channels[-1], c_fc, class_num)


def expected_deepgaitv2(mode, layers, channels, class_num, parts=16) -> dict[str, tuple[int, ...]]:
    keys = {"layer0.forward_block.0.weight": (channels[0], 1, 3, 3), **bn("layer0.forward_block.1", channels[0])}
    for index in range(layers[0]):
        keys |= basic_block(f"layer1.forward_block.{index}", channels[0], channels[0], False)
    block = {"2d": basic_block, "p3d": p3d_block, "3d": block3d}[mode]
    c_in = channels[0]
    for stage, (width, blocks, strided) in enumerate(zip(channels[1:], layers[1:], (True, True, False)), start=2):
        for index in range(blocks):
            prefix = f"layer{stage}.forward_block.{index}" if mode == "2d" else f"layer{stage}.{index}"
            keys |= block(prefix, c_in, width, strided and index == 0)
            c_in = width
    return keys | head(parts, channels[3], channels[2], class_num)


def layout(model: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {key: tuple(value.shape) for key, value in model.state_dict().items()}


def test_gaitbase_has_opengaits_state_dict_layout_and_pinned_size():
    model = build_model(GAITBASE_CASIAB)
    assert layout(model) == expected_gaitbase([64, 128, 256, 512], [1, 1, 1, 1], [1, 2, 2, 1], 16, 256, 74)
    assert sum(p.numel() for p in model.parameters()) == 7_305_408


@pytest.mark.parametrize(
    ("mode", "layers", "params"),
    [("2d", [1, 1, 1, 1], 19_290_304), ("p3d", [1, 1, 1, 1], 20_324_288), ("p3d", [1, 4, 4, 1], 25_492_160),
     ("3d", [1, 1, 1, 1], 28_580_032), ("3d", [1, 4, 4, 1], 41_855_680)],
)
def test_deepgaitv2_has_opengaits_state_dict_layout_and_pinned_size(mode, layers, params):
    model = build_model(deepgaitv2_cfg(mode, layers))
    assert layout(model) == expected_deepgaitv2(mode, layers, [64, 128, 256, 512], 3000)
    assert sum(p.numel() for p in model.parameters()) == params


@pytest.mark.parametrize("cfg", [GAITBASE_CASIAB, deepgaitv2_cfg("p3d", [1, 4, 4, 1], class_num=74)], ids=["gaitbase", "p3d"])
def test_a_checkpoint_with_opengaits_keys_loads_strictly_and_gives_its_outputs(cfg, tmp_path):
    """A state dict written from the key list alone (DDP ``module.`` prefix) loads into a
    fresh model with strict=True and reproduces the source model's embeddings."""
    torch.manual_seed(0)
    shapes = expected_gaitbase([64, 128, 256, 512], [1, 1, 1, 1], [1, 2, 2, 1], 16, 256, 74) if cfg is GAITBASE_CASIAB \
        else expected_deepgaitv2("p3d", [1, 4, 4, 1], [64, 128, 256, 512], 74)
    state = {f"module.{key}": (torch.randint(1, 5, shape) if key.endswith("num_batches_tracked") else torch.rand(shape) * 0.1)
             for key, shape in shapes.items()}
    path = tmp_path / "opengait.pt"
    torch.save({"model": state, "iteration": 60000}, path)
    model = build_model(cfg).eval()
    assert load_checkpoint(model, path, strict=True) == 60000
    reference = build_model(cfg).eval()
    reference.load_state_dict({key.removeprefix("module."): value for key, value in state.items()}, strict=True)
    sils = torch.rand(1, 6, 64, 44)
    with torch.no_grad():
        assert torch.equal(model(sils)["embeddings"], reference(sils)["embeddings"])


def test_output_contract_and_use_emb2():
    model = build_model({**SMALL_P3D, "use_emb2": True})
    sils = torch.rand(3, 7, 32, 22)
    train = model.train()(sils)
    assert set(train) == {"embeddings", "logits", "features", "bn_features"}
    assert train["embeddings"].shape == (3, 8, 32) and train["logits"].shape == (3, 8, 10)
    assert torch.equal(train["embeddings"], train["features"]), "the triplet loss reads the pre-BNNeck features"
    assert float(train["logits"].detach().abs().max()) <= 1.0 + 1e-5, "cosine classifier"
    with torch.no_grad():
        evaluated = model.eval()(sils)
    assert torch.equal(evaluated["embeddings"], evaluated["bn_features"]), "use_emb2 evaluates after the BNNeck"
    norms = evaluated["bn_features"].norm(dim=-1)
    assert torch.allclose(norms, torch.ones_like(norms), atol=1e-5)


@pytest.mark.parametrize("mode", ["2d", "p3d", "3d"])
def test_packed_sequences_equal_each_sequence_run_alone(mode):
    torch.manual_seed(1)
    model = build_model({**SMALL_P3D, "Backbone": {**SMALL_P3D["Backbone"], "mode": mode}}).eval()
    first, second = torch.rand(1, 7, 32, 22), torch.rand(1, 2, 32, 22)
    with torch.no_grad():
        packed = model(torch.cat([first, second], dim=1), seqL=torch.tensor([7, 2]))["embeddings"]
        alone = torch.cat([model(first)["embeddings"], model(second)["embeddings"]])
    torch.testing.assert_close(packed, alone, rtol=1e-5, atol=1e-5)


def test_temporal_blocks_see_time_and_2d_models_do_not():
    """Shuffling frames leaves GaitBase (per-frame + max) unchanged and changes DeepGaitV2-P3D."""
    torch.manual_seed(2)
    sils = torch.rand(1, 9, 32, 22)
    shuffled = sils[:, torch.randperm(9)]
    base_cfg = config.load(CONFIG_ROOT / "gaitbase_small.yaml")["model_cfg"]
    for cfg, changes in ((base_cfg, False), (SMALL_P3D, True)):
        model = build_model(cfg).eval()
        with torch.no_grad():
            same = torch.allclose(model(sils)["embeddings"], model(shuffled)["embeddings"], atol=1e-5)
        assert same is not changes


@pytest.mark.parametrize(
    ("cfg", "problem"),
    [
        ({**GAITBASE_CASIAB, "channels": [1]}, "model_cfg: unknown key(s) ['channels']"),
        ({**GAITBASE_CASIAB, "SeparateFCs": {"in_channels": 512, "out_channels": 256, "parts_num": 8}}, "parts_num"),
        (deepgaitv2_cfg("p2d", [1, 1, 1, 1]), "model_cfg.Backbone.mode"),
        (deepgaitv2_cfg("p3d", [1, 1, 1]), "model_cfg.Backbone: layers"),
        ({**GAITBASE_CASIAB, "backbone_cfg": {**GAITBASE_CASIAB["backbone_cfg"], "block": "Bottleneck"}}, "block"),
    ],
)
def test_bad_model_cfg_names_the_key(cfg, problem):
    with pytest.raises(ValueError, match=problem.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(").replace(")", r"\)")):
        build_model(cfg)


SHIPPED = ["gaitbase_small", "deepgaitv2_small", "gaitbase_casiab", "gaitbase_gait3d", "gaitbase_grew",
           "deepgaitv2_casiab", "deepgaitv2_gait3d", "deepgaitv2_grew"]


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_configs_load_and_build(name):
    cfg = config.load(CONFIG_ROOT / f"{name}.yaml")
    assert cfg["model_cfg"]["model"] in ("Baseline", "DeepGaitV2")
    losses = {entry["type"]: entry for entry in cfg["loss_cfg"]}
    assert losses["CrossEntropyLoss"]["scale"] == 16 and cfg["optimizer_cfg"]["solver"] == "SGD"
    if name.endswith("_small"):
        model = build_model(cfg["model_cfg"])
        assert model(torch.rand(2, 5, 32, 22))["logits"].shape[-1] == cfg["model_cfg"]["SeparateBNNecks"]["class_num"]


def test_config_names_a_key_the_model_does_not_know(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text((CONFIG_ROOT / "gaitbase_small.yaml").read_text() + "\n")
    cfg = config.read_yaml(path)
    cfg["model_cfg"]["channels"] = [8, 16, 32]
    del cfg["model_cfg"]["SeparateFCs"]
    path.write_text(config.dump(cfg))
    with pytest.raises(config.ConfigError) as err:
        config.load(path)
    assert "model_cfg.SeparateFCs: required key is missing for model Baseline" in str(err.value)
    assert "model_cfg.channels: not a key of model Baseline" in str(err.value)


@pytest.fixture(scope="module")
def tiny_train_cfg():
    from hstl_core.data.syngait import ensure_syngait

    ensure_syngait("small", img_size=32)

    def make(name: str) -> dict:
        cfg = config.load(CONFIG_ROOT / f"{name}.yaml")
        cfg["data_cfg"]["num_workers"] = 0
        cfg["trainer_cfg"].update(total_iter=20, save_iter=20, log_iter=10, save_name=f"tiny_{name}")
        cfg["trainer_cfg"]["sampler"].update(batch_size=[2, 2], frames_num_fixed=4)
        return cfg

    return make


@pytest.mark.slow
@pytest.mark.parametrize("name", ["gaitbase_small", "deepgaitv2_small"])
def test_the_trainer_trains_the_model_unchanged(name, tiny_train_cfg, tmp_path):
    """20 iterations of the shipped recipe through the real trainer loop: finite losses,
    every parameter group moved, and the checkpoint loads strictly into a fresh model."""
    cfg = tiny_train_cfg(name)
    trainer = Trainer(copy.deepcopy(cfg), init_distributed(), tmp_path)
    before = {key: value.clone() for key, value in trainer.model.state_dict().items()}
    outcome = trainer.train()
    assert outcome["iteration"] == 20
    assert all(torch.isfinite(torch.tensor(value)) for value in outcome["scalars"].values())
    after = trainer.model.state_dict()
    moved = [key for key, value in trainer.model.named_parameters() if not torch.equal(before[key], after[key])]
    assert len(moved) == len(list(trainer.model.parameters()))
    assert load_checkpoint(build_model(cfg["model_cfg"]), outcome["checkpoint"], strict=True) == 20


OPENGAIT_STYLE = """
data_cfg: {dataset_name: Gait3D, dataset_root: your_path, dataset_partition: ./datasets/Gait3D/Gait3D.json,
           num_workers: 1, remove_no_gallery: false, test_dataset_name: Gait3D}
evaluator_cfg:
  enable_float16: true
  restore_ckpt_strict: true
  restore_hint: 60000
  save_name: DeepGaitV2
  eval_func: evaluate_Gait3D
  sampler: {batch_shuffle: false, batch_size: 4, sample_type: all_ordered, frames_all_limit: 720}
  metric: euc
  transform:
    - type: BaseSilCuttingTransform
loss_cfg:
  - loss_term_weight: 1.0
    margin: 0.2
    type: TripletLoss
    log_prefix: triplet
  - loss_term_weight: 1.0
    scale: 16
    type: CrossEntropyLoss
    log_prefix: softmax
    log_accuracy: true
model_cfg:
  model: DeepGaitV2
  Backbone: {in_channels: 1, mode: p3d, layers: [1, 4, 4, 1], channels: [64, 128, 256, 512]}
  SeparateBNNecks: {class_num: 3000}
optimizer_cfg: {lr: 0.1, momentum: 0.9, solver: SGD, weight_decay: 0.0005}
scheduler_cfg: {gamma: 0.1, milestones: [20000, 40000, 50000], scheduler: MultiStepLR}
trainer_cfg:
  enable_float16: true
  fix_BN: false
  with_test: false
  log_iter: 100
  restore_ckpt_strict: true
  restore_hint: 0
  save_iter: 20000
  save_name: DeepGaitV2
  sync_BN: true
  total_iter: 60000
  sampler: {batch_shuffle: true, batch_size: [32, 4], frames_num_fixed: 30, frames_num_max: 50,
            frames_num_min: 10, sample_type: fixed_unordered, type: TripletSampler, frames_skip_num: 4}
  transform:
    - type: Compose
      trf_cfg:
        - {type: RandomPerspective, prob: 0.2}
        - {type: BaseSilCuttingTransform}
        - {type: RandomHorizontalFlip, prob: 0.2}
        - {type: RandomRotate, prob: 0.2}
"""


def test_an_opengait_style_config_loads_unchanged(tmp_path):
    """Written as OpenGait's DeepGaitV2 Gait3D file is (key order, no label_smooth, nested
    Compose): it validates, its losses build as OpenGait's defaults say (label smoothing on)."""
    from hstl_core.data.transforms import build_transform
    from hstl_core.losses import LossAggregator

    path = tmp_path / "DeepGaitV2_gait3d.yaml"
    path.write_text(OPENGAIT_STYLE)
    cfg = config.load(path)
    losses = LossAggregator(cfg["loss_cfg"])
    assert losses.losses["softmax"].label_smooth and losses.losses["softmax"].scale == 16
    sils = build_transform(cfg["trainer_cfg"]["transform"])(torch.zeros(5, 64, 64, dtype=torch.uint8).numpy())
    assert sils.shape == (5, 64, 44)
