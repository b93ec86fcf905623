"""DeepGaitV2 (Fan et al., "Exploring Deep Models for Practical Gait Recognition",
2023), OpenGait's model ``DeepGaitV2``.

``layer0`` (3 x 3 conv + BN + ReLU per frame) and ``layer1`` (``BasicBlock2D`` per
frame) are 2D in every mode; ``layer2``..``layer4`` use the block of ``mode``:
``2d`` (``BasicBlock2D`` per frame), ``p3d`` (``BasicBlockP3D``: 2D 3 x 3 conv + BN
and a residual temporal 3 x 1 x 1 conv) or ``3d`` (``BasicBlock3D``). Strides per
stage 1, 2, 2, 1 (spatial only), then temporal max, a 16-strip horizontal pooling
pyramid, separate FCs ``channels[3] -> channels[2]`` and a per-part BNNeck.
``model_cfg`` is OpenGait's own::

    model: DeepGaitV2
    Backbone: {in_channels: 1, mode: p3d, layers: [1, 4, 4, 1], channels: [64, 128, 256, 512]}
    SeparateBNNecks: {class_num: 3000}
    use_emb2: false          # optional: evaluate on the BNNeck's output

(OpenGait's ``configs/deepgaitv2/DeepGaitV2_*.yaml``). ``bin_num`` (default [16])
is our addition, so that 32-row inputs (an 8-row map) can keep one strip per row.
State-dict keys are OpenGait's (``layer0.forward_block.0.weight``,
``layer2.0.conv1.forward_block.0.weight``, ``layer2.0.shortcut3d.weight``, ...;
in ``2d`` mode ``layer2.forward_block.0.conv1.weight``).

Where it differs from HSTL (``hstl_core.model.hstl``): deeper residual stages with
BatchNorm (HSTL has none in its backbone), temporal modelling by cheap 3 x 1 x 1
convolutions on a residual path (HSTL: full 3 x 3 x 3 convolutions per region plus
FTA's learned temporal pooling), spatial down-sampling to 16 x 11 with up to 512
channels, no region hierarchy, and GaitBase's head (mean + max strips, BNNeck,
cosine classifier, embeddings before the BNNeck unless ``use_emb2``).
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from hstl_core.config import reject_unknown_keys
from hstl_core.model.gaitbase import bnnecks_from_cfg, clips_and_mask, head_outputs
from hstl_core.model.hstl import init_parameters
from hstl_core.model.layers import (
    BasicBlock2D,
    BasicBlock3D,
    BasicBlockP3D,
    HorizontalPoolingPyramid,
    ResidualStage,
    SeparateFCs,
    SetBlockWrapper,
    TemporalMax,
    conv3x3,
)

BLOCKS = {"2d": BasicBlock2D, "p3d": BasicBlockP3D, "3d": BasicBlock3D}
"""OpenGait's ``blocks_map``: the block of ``layer2``..``layer4`` per ``mode``."""

BACKBONE_KEYS = ("in_channels", "mode", "layers", "channels")
MODEL_CFG_KEYS = ("model", "Backbone", "SeparateBNNecks", "use_emb2", "bin_num")


class DeepGaitV2(nn.Module):
    """OpenGait's ``DeepGaitV2``; see the module docstring for ``model_cfg``.

    ``forward(sils [n, s, h, w], seqL=None)`` returns ``embeddings`` / ``features`` /
    ``bn_features`` ``[n, parts, channels[2]]`` and ``logits``
    ``[n, parts, class_num]`` (``hstl_core.model.gaitbase.head_outputs``). The
    temporal convolutions see zeros beyond a sequence's ends, so with ``seqL`` each
    row equals that sequence run alone.
    """

    def __init__(self, model_cfg: Mapping) -> None:
        super().__init__()
        reject_unknown_keys(model_cfg, MODEL_CFG_KEYS, "model_cfg")
        backbone = model_cfg.get("Backbone")
        if not isinstance(backbone, Mapping) or sorted(set(backbone) - set(BACKBONE_KEYS)):
            raise ValueError(f"model_cfg.Backbone: a mapping with keys {list(BACKBONE_KEYS)} is needed, got {backbone!r}")
        mode = backbone.get("mode")
        if mode not in BLOCKS:
            raise ValueError(f"model_cfg.Backbone.mode: {mode!r} is not one of {sorted(BLOCKS)}")
        layers, channels = list(backbone.get("layers", ())), list(backbone.get("channels", ()))
        if len(layers) != 4 or len(channels) != 4:
            raise ValueError(f"model_cfg.Backbone: layers and channels need 4 entries each, got {layers}, {channels}")
        self.mode = mode
        self.inference_use_emb2 = bool(model_cfg.get("use_emb2", False))
        bin_num = list(model_cfg.get("bin_num", [16]))
        parts = sum(bin_num)

        self.layer0 = SetBlockWrapper(
            nn.Sequential(conv3x3(backbone.get("in_channels", 1), channels[0]), nn.BatchNorm2d(channels[0]), nn.ReLU(inplace=True))
        )
        self.layer1 = SetBlockWrapper(self._stage(BasicBlock2D, channels[0], channels[0], 1, layers[0]))
        strides = [(1, 2, 2), (1, 2, 2), (1, 1, 1)] if mode == "3d" else [(2, 2), (2, 2), (1, 1)]
        block = BLOCKS[mode]
        for index in range(2, 5):
            stage = self._stage(block, channels[index - 2], channels[index - 1], strides[index - 2], layers[index - 1])
            setattr(self, f"layer{index}", SetBlockWrapper(stage) if mode == "2d" else ResidualStage(*stage))
        self.FCs = SeparateFCs(parts, channels[3], channels[2])
        self.BNNecks = bnnecks_from_cfg(model_cfg, parts_num=parts, in_channels=channels[2])
        self.TP = TemporalMax()
        self.HPP = HorizontalPoolingPyramid(bin_num=bin_num)
        init_parameters(self)

    @staticmethod
    def _stage(block: type[nn.Module], in_channels: int, width: int, stride, blocks: int) -> nn.Sequential:
        """``blocks`` blocks, the first strided; the others keep the size (``make_layer``)."""
        unit = (1, 1, 1) if block is BasicBlock3D else 1
        return nn.Sequential(block(in_channels, width, stride), *(block(width, width, unit) for _ in range(blocks - 1)))

    def forward(self, sils: torch.Tensor, seqL: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        x, mask = clips_and_mask(sils, seqL)
        x = self.layer1(self.layer0(x))
        for stage in (self.layer2, self.layer3, self.layer4):
            x = stage(x, mask)
        feat = self.HPP(self.TP(x, mask))
        embed_1 = self.FCs(feat)
        embed_2, logits = self.BNNecks(embed_1)
        return head_outputs(embed_1, embed_2, logits, self.inference_use_emb2, self.training)
