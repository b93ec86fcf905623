"""bf16 autocast trains the small config like fp32 does (the CPU bf16 NaN of issue 9).

Slow where the CPU has no native bf16 (AVX-512 BF16 / AMX): its bf16 convolutions
then take a reference path several times slower than fp32.
"""
from __future__ import annotations

import pytest
import torch

from hstl_core import build_model, config
from hstl_core.engine.evaluator import autocast_for
from hstl_core.engine.trainer import build_optimizer
from hstl_core.losses import LossAggregator
from hstl_core.paths import CONFIG_ROOT

STEPS = 50
IDS, CLIPS_PER_ID, FRAMES = 4, 2, 4


def batches(height: int, width: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``STEPS`` P x K batches of noisy copies of one random silhouette per id, with empty top rows."""
    generator = torch.Generator().manual_seed(1)
    templates = (torch.rand(IDS, 1, height, width, generator=generator) > 0.5).float()
    templates[:, :, : height // 8] = 0.0
    labels = torch.arange(IDS).repeat_interleave(CLIPS_PER_ID)
    out = []
    for _ in range(STEPS):
        flips = torch.rand(len(labels), FRAMES, height, width, generator=generator) < 0.1
        out.append(((templates[labels] + flips.float()) % 2, labels))
    return out


def loss_curve(bf16: bool) -> list[float]:
    cfg = config.load(CONFIG_ROOT / "syngait_small.yaml")
    torch.manual_seed(0)
    model = build_model(cfg["model_cfg"]).train()
    losses = LossAggregator(cfg["loss_cfg"])
    optimizer = build_optimizer(model, cfg["optimizer_cfg"])
    engine = {"enable_bfloat16": bf16}
    curve = []
    height = cfg["model_cfg"]["input_height"]
    for sils, labels in batches(height, height * 11 // 16):
        with autocast_for(torch.device("cpu"), engine):
            outputs = model(sils)
        total, _ = losses({k: outputs[k].float() for k in ("embeddings", "logits")}, labels)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
        curve.append(float(total.detach()))
    return curve


@pytest.mark.slow
def test_bf16_training_follows_the_fp32_loss_curve():
    fp32, bf16 = loss_curve(False), loss_curve(True)
    print("fp32", [round(v, 3) for v in fp32])
    print("bf16", [round(v, 3) for v in bf16])
    assert all(torch.isfinite(torch.tensor(bf16))), "bf16 training produced a non-finite loss"
    assert bf16[0] == pytest.approx(fp32[0], rel=0.05)
    assert sum(bf16[-10:]) < 0.8 * sum(bf16[:10]) and sum(fp32[-10:]) < 0.8 * sum(fp32[:10]), "both learn"
    assert sum(bf16[-10:]) == pytest.approx(sum(fp32[-10:]), rel=0.25), "bf16 ends where fp32 ends"
