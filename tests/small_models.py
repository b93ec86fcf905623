"""Small configs of HSTL (CASIA-B and OU-MVLP variants, 32-row input) shared by the model tests."""
from __future__ import annotations

import torch

from hstl_core.model import build_model

SMALL_CB = {"model": "HSTL", "channels": [8, 16, 32], "class_num": 16, "input_height": 32}
SMALL_OU = {"model": "HSTL_OU", "channels": [8, 8, 16, 16], "class_num": 16, "input_height": 32}


def randomised(cfg: dict) -> torch.nn.Module:
    """A model in eval mode whose GeM p, FTA biases and BN statistics differ from their initial values."""
    torch.manual_seed(0)
    model = build_model(cfg)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith(".p"):
                param.uniform_(2.0, 8.0)
        model.Bn.running_mean.normal_(0.0, 0.1)
        model.Bn.running_var.uniform_(0.5, 2.0)
        for fta in model.fta.mma:
            for fc in fta.fcs:
                fc.bias.normal_(0.0, 0.5)
    return model.eval()
