"""GaitBase (Fan et al., "OpenGait: Revisiting Gait Recognition Toward Better
Practicality", CVPR 2023), OpenGait's model ``Baseline``.

A ResNet9-like 2D backbone (a 3 x 3 stem conv + BN + ReLU, four stages of
``BasicBlock2D``) runs on every frame; temporal max pooling; a horizontal pooling
pyramid (mean + max per strip); separate FCs per part; a per-part BNNeck whose
normalised classifier gives the logits. ``model_cfg`` is OpenGait's own::

    model: Baseline
    backbone_cfg: {type: ResNet9, block: BasicBlock, channels: [64, 128, 256, 512],
                   layers: [1, 1, 1, 1], strides: [1, 2, 2, 1], maxpool: false}
    SeparateFCs: {in_channels: 512, out_channels: 256, parts_num: 16}
    SeparateBNNecks: {class_num: 74, in_channels: 256, parts_num: 16}
    bin_num: [16]

(OpenGait's ``configs/gaitbase/gaitbase_da_*.yaml``). State-dict keys are
OpenGait's (``Backbone.forward_block.conv1.conv.weight``, ``FCs.fc_bin``,
``BNNecks.fc_bin``, ``BNNecks.bn1d.*``).

Where it differs from HSTL (``hstl_core.model.hstl``): 2D convolutions per frame
instead of 3D ones (no motion modelled before the temporal max), BatchNorm and
residual connections in every stage, spatial down-sampling to a 16 x 11 map
(64 x 44 input) with 512 channels, no region hierarchy (one pyramid of equal
strips at the end), mean + max pooling instead of GeM, and a BNNeck per part with
a cosine classifier. Its ``embeddings`` are the separate FCs' output *before* the
BNNeck (what OpenGait's inference and triplet loss use); HSTL's are after its BN.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from hstl_core.config import reject_unknown_keys
from hstl_core.model.hstl import init_parameters
from hstl_core.model.layers import (
    BasicBlock2D,
    HorizontalPoolingPyramid,
    SeparateBNNecks,
    SeparateFCs,
    SetBlockWrapper,
    TemporalMax,
)

MODEL_CFG_KEYS = ("model", "backbone_cfg", "SeparateFCs", "SeparateBNNecks", "bin_num")


class StemConv2d(nn.Module):
    """3 x 3 conv, stride 1, padding 1, no bias; the weight is ``conv.weight``
    (OpenGait's ``BasicConv2d`` as ResNet9's first layer uses it). ``[n, c_in, h, w]`` -> ``[n, c_out, h, w]``."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=1, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class ResNet9(nn.Module):
    """OpenGait's ``ResNet9`` on single frames ``[n, in_channel, h, w]``.

    ``conv1`` (3 x 3) + ``bn1`` + ReLU (+ a 3 x 3 / 2 max pool when ``maxpool``), then
    ``layer1``..``layer4`` of ``layers[i]`` ``BasicBlock2D`` with ``channels[i]`` and
    the first block of each strided by ``strides[i]`` (a stage of 0 blocks is the
    identity). Output ``[n, channels[3], h / prod(strides), w / prod(strides)]``
    (rounded up per stride).
    """

    def __init__(
        self,
        block: str = "BasicBlock",
        channels: Sequence[int] = (32, 64, 128, 256),
        in_channel: int = 1,
        layers: Sequence[int] = (1, 2, 2, 1),
        strides: Sequence[int] = (1, 2, 2, 1),
        maxpool: bool = True,
    ) -> None:
        super().__init__()
        if block != "BasicBlock":
            raise ValueError(f"model_cfg.backbone_cfg.block: only 'BasicBlock' is built here, got {block!r}")
        if not (len(channels) == len(layers) == len(strides) == 4):
            raise ValueError(
                f"model_cfg.backbone_cfg: channels, layers and strides need 4 entries each, got "
                f"{list(channels)}, {list(layers)}, {list(strides)}"
            )
        self.conv1 = StemConv2d(in_channel, channels[0])
        self.bn1 = nn.BatchNorm2d(channels[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1) if maxpool else nn.Identity()
        in_channels = channels[0]
        for index, (width, blocks, stride) in enumerate(zip(channels, layers, strides), start=1):
            stage = [BasicBlock2D(in_channels, width, stride)] + [BasicBlock2D(width, width) for _ in range(blocks - 1)]
            setattr(self, f"layer{index}", nn.Sequential(*stage) if blocks >= 1 else nn.Identity())
            if blocks >= 1:
                in_channels = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


def clips_and_mask(sils: torch.Tensor, seqL: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Silhouettes -> ``([n, 1, s, h, w], mask)`` without HSTL's short-sequence repeats.

    ``sils [n, s, h, w]`` with ``seqL=None`` gives ``mask=None``. Packed input
    ``[1, sum(seqL), h, w]`` is cut into its sequences and zero-padded to the
    longest; ``mask [B, s]`` is True on real frames. OpenGait runs these models on
    sequences of any length, so (unlike HSTL) nothing is repeated.
    """
    if sils.dim() != 4:
        raise ValueError(f"expected silhouettes [n, s, h, w], got {list(sils.shape)}")
    if seqL is None:
        return sils.unsqueeze(1), None
    lengths = torch.as_tensor(seqL, dtype=torch.long, device=sils.device).reshape(-1)
    if sils.shape[0] != 1:
        raise ValueError(f"packed input needs sils [1, sum(seqL), h, w], got batch size {sils.shape[0]}")
    if bool((lengths < 1).any()) or int(lengths.sum()) != sils.shape[1]:
        raise ValueError(f"seqL {lengths.tolist()} must be positive lengths summing to the {sils.shape[1]} frames given")
    steps = torch.arange(int(lengths.max()), device=sils.device)
    mask = steps[None, :] < lengths[:, None]
    source = ((torch.cumsum(lengths, 0) - lengths)[:, None] + steps[None, :]).clamp(max=sils.shape[1] - 1)
    clips = sils[0][source].masked_fill(~mask[:, :, None, None], 0.0)
    return clips.unsqueeze(1), mask


def head_outputs(
    embed_1: torch.Tensor, embed_2: torch.Tensor, logits: torch.Tensor, use_emb2: bool, training: bool
) -> dict[str, torch.Tensor]:
    """The output contract from OpenGait's ``[n, c, p]`` head tensors, laid out ``[n, p, c]``.

    ``features`` = ``embed_1`` (separate FCs, before the BNNeck), ``bn_features`` =
    ``embed_2`` (after it), ``logits`` from the BNNeck's classifier. ``embeddings``
    is what OpenGait uses: ``embed_1`` in training (its triplet loss) and at
    inference ``embed_2`` if ``use_emb2`` else ``embed_1``.
    """
    embeddings = embed_2 if use_emb2 and not training else embed_1
    return {
        "embeddings": embeddings.transpose(1, 2).contiguous(),
        "logits": logits.transpose(1, 2).contiguous(),
        "features": embed_1.transpose(1, 2).contiguous(),
        "bn_features": embed_2.transpose(1, 2).contiguous(),
    }


def _section(model_cfg: Mapping, key: str, allowed: Sequence[str]) -> dict:
    section = model_cfg.get(key)
    if not isinstance(section, Mapping):
        raise ValueError(f"model_cfg.{key}: a mapping is needed, got {section!r}")
    reject_unknown_keys(section, allowed, f"model_cfg.{key}")
    return dict(section)


def separate_fcs_from_cfg(model_cfg: Mapping) -> SeparateFCs:
    """``SeparateFCs`` from OpenGait's ``{in_channels, out_channels, parts_num, norm}``."""
    cfg = _section(model_cfg, "SeparateFCs", ("in_channels", "out_channels", "parts_num", "norm"))
    if cfg.pop("norm", False):
        raise ValueError("model_cfg.SeparateFCs.norm: only norm: false is built here")
    return SeparateFCs(parts=cfg["parts_num"], in_channels=cfg["in_channels"], out_channels=cfg["out_channels"])


def bnnecks_from_cfg(model_cfg: Mapping, **defaults: int) -> SeparateBNNecks:
    """``SeparateBNNecks`` from OpenGait's ``{class_num, in_channels, parts_num, norm, parallel_BN1d}``;
    ``defaults`` fill keys the model derives itself (DeepGaitV2 gives only ``class_num``)."""
    cfg = _section(model_cfg, "SeparateBNNecks", ("class_num", "in_channels", "parts_num", "norm", "parallel_BN1d"))
    return SeparateBNNecks(**{**defaults, **cfg})


class GaitBase(nn.Module):
    """OpenGait's ``Baseline`` (GaitBase); see the module docstring for ``model_cfg``.

    ``forward(sils [n, s, h, w], seqL=None)``: ``Backbone`` per frame ->
    ``TP`` (temporal max over real frames) -> ``HPP`` ``[n, c, parts]`` -> ``FCs`` ->
    ``BNNecks``; returns ``embeddings`` / ``features`` / ``bn_features``
    ``[n, parts, c_fc]`` and ``logits`` ``[n, parts, class_num]`` (see
    :func:`head_outputs`). With ``seqL`` the packed sequences are cut apart and each
    row equals that sequence run alone.
    """

    def __init__(self, model_cfg: Mapping) -> None:
        super().__init__()
        reject_unknown_keys(model_cfg, MODEL_CFG_KEYS, "model_cfg")
        backbone_cfg = _section(model_cfg, "backbone_cfg", ("type", "block", "channels", "in_channel", "layers", "strides", "maxpool"))
        if backbone_cfg.pop("type", "ResNet9") != "ResNet9":
            raise ValueError(f"model_cfg.backbone_cfg.type: only ResNet9 is built here, got {model_cfg['backbone_cfg']['type']!r}")
        bin_num = model_cfg.get("bin_num", [16])
        self.Backbone = SetBlockWrapper(ResNet9(**backbone_cfg))
        self.FCs = separate_fcs_from_cfg(model_cfg)
        self.BNNecks = bnnecks_from_cfg(model_cfg)
        self.TP = TemporalMax()
        self.HPP = HorizontalPoolingPyramid(bin_num=bin_num)
        if sum(self.HPP.bin_num) != self.FCs.fc_bin.shape[0]:
            raise ValueError(f"model_cfg.SeparateFCs.parts_num: bin_num {list(bin_num)} gives {sum(bin_num)} parts")
        init_parameters(self)

    def forward(self, sils: torch.Tensor, seqL: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        x, mask = clips_and_mask(sils, seqL)
        x = self.Backbone(x)
        feat = self.HPP(self.TP(x, mask))
        embed_1 = self.FCs(feat)
        embed_2, logits = self.BNNecks(embed_1)
        return head_outputs(embed_1, embed_2, logits, use_emb2=False, training=self.training)


__all__ = ["GaitBase", "ResNet9", "clips_and_mask", "head_outputs"]
