"""HSTL++: HSTL's body hierarchy with the ingredients of the stronger silhouette models,
each behind its own ``model_cfg`` switch so that it can be ablated alone.

HSTL (Wang et al., ICCV 2023, Sec. 3) learns body regions at several levels: ARME
(separate 3D convolutions per horizontal region), FTA (learned temporal
aggregation) and ASTP (pooled part features after every level). HSTL++ keeps that
hierarchy (CASIA-B layout: regions [40, 24] then [8, 32, 16, 8] of a 64-row input)
and adds, switch by switch:

* ``p3d_arme`` - each region of ``arme2`` / ``arme3`` is a residual pseudo-3D block
  with BatchNorm (``BasicBlockP3D`` of DeepGaitV2, Fan et al. 2023) instead of two
  plain 3 x 3 x 3 convolutions; regions keep their own weights and padding.
* ``downsample`` - a 2 x 2 spatial max pool (``pool2``, ``pool3``) before ``arme2``
  and before ``arme3``: the last map is a quarter of the input's height and width
  (16 x 11 at 64 x 44, as GaitBase's), so wider ``channels`` cost less; region
  heights and HPP's one-bin-per-row follow the pooled map.
* ``bnneck_head`` - GaitBase's head (separate FCs ``FCs``, then a per-part BNNeck
  ``BNNecks`` with a normalised, cosine classifier; embeddings before the BNNeck)
  instead of HSTL's ``Head0`` / ``Bn`` / ``Head1``.
* ``part_confidence`` - our idea for wild data (occlusion, bodies cut by the frame
  border, dropped limbs): every part gets a confidence
  ``sigmoid(a_p * occupancy_p / mean_occupancy + b_p)`` from how much silhouette its
  rows hold over the sequence, relative to the whole body, and its embedding is
  multiplied by it. A part that is empty or cut away in a sequence then contributes
  a smaller vector, so it moves the part-averaged distance less; ``a_p``, ``b_p``
  (``part_gate.weight`` / ``part_gate.bias``) are learned by the triplet loss.

Two ingredients are not model switches: the SGD recipe (``optimizer_cfg`` /
``scheduler_cfg`` of the configs ``hstlpp_*.yaml``) and sequence-consistent
silhouette augmentation (``hstl_core.data.transforms``, set in ``transform``).
With every switch off HSTL++ is HSTL: the same modules, state-dict keys and outputs.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from hstl_core.config import reject_unknown_keys
from hstl_core.model.hstl import (
    ASTP,
    PAPER_HEIGHT,
    ARMEConv,
    FastPathModel,
    FTABlock,
    init_parameters,
    scale_splits,
    set_fast_path,
)
from hstl_core.model.layers import (
    BasicBlockP3D,
    BasicConv3d,
    GeMHPP,
    MaskedSequential,
    SeparateBNNecks,
    SeparateFCs,
    TemporalMax,
)
from hstl_core.model.sequences import check_silhouettes, fta_mask, prepare_sequences

SWITCHES = ("p3d_arme", "downsample", "bnneck_head", "part_confidence")
"""The model switches of HSTL++, each a ``model_cfg`` bool (default false)."""

MODEL_CFG_KEYS = ("model", "channels", "class_num", "input_height", *SWITCHES)

LEVEL_SPLITS = ((40, 24), (8, 32, 16, 8))
"""HSTL's CASIA-B regions per level, in rows of a 64-row input."""


class RegionP3D(nn.Module):
    """One residual pseudo-3D block per horizontal region (``blocks.{i}``), stacked back.

    Each region ``[n, c_in, s, h_i, w]`` goes through its own ``BasicBlockP3D``
    (2D 3 x 3 conv + BN, residual temporal 3 x 1 x 1 conv + BN, 3 x 3 conv + BN,
    shortcut), zero-padded at its own borders as ARME's convolutions are.
    Input ``[n, c_in, s, h, w]`` (+ frame mask), output ``[n, c_out, s, h, w]``.
    """

    def __init__(self, in_channels: int, out_channels: int, splits: Sequence[int]) -> None:
        super().__init__()
        self.splits = list(splits)
        self.blocks = nn.ModuleList(BasicBlockP3D(in_channels, out_channels) for _ in self.splits)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        regions = x.split(self.splits, dim=3)
        return torch.cat([block(region, mask) for block, region in zip(self.blocks, regions)], dim=3)


class PartConfidence(nn.Module):
    """Per-part confidence from silhouette occupancy (the ``part_confidence`` switch).

    ``rows`` ``[p, H]`` says which input rows each part covers (each row of it sums
    to 1). For silhouettes ``[n, 1, s, H, W]`` (+ frame mask) the occupancy of a
    row is its mean over real frames and columns; a part's is the mean over its
    rows, divided by the whole body's mean occupancy. Confidence
    ``sigmoid(weight * relative_occupancy + bias)`` ``[n, p]``; initialised so that a
    part with average occupancy gets 0.95 and an empty one 0.27.
    """

    def __init__(self, rows: torch.Tensor) -> None:
        super().__init__()
        parts = rows.shape[0]
        self.register_buffer("rows", rows, persistent=False)
        self.weight = nn.Parameter(torch.full((parts,), 4.0))
        self.bias = nn.Parameter(torch.full((parts,), -1.0))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        per_frame = x[:, 0].mean(dim=-1)
        if mask is None:
            row_occupancy = per_frame.mean(dim=1)
        else:
            weights = mask.to(per_frame.dtype)
            row_occupancy = (per_frame * weights[:, :, None]).sum(1) / weights.sum(1, keepdim=True)
        part_occupancy = row_occupancy @ self.rows.T
        relative = part_occupancy / (row_occupancy.mean(dim=1, keepdim=True) + 1e-6)
        return torch.sigmoid(self.weight * relative + self.bias)


def part_rows(spans: Sequence[tuple[int, int]], height: int) -> torch.Tensor:
    """``[p, height]`` matrix, row i averaging the input rows ``[start, stop)`` of span i."""
    rows = torch.zeros(len(spans), height)
    for index, (start, stop) in enumerate(spans):
        rows[index, start:stop] = 1.0 / (stop - start)
    return rows


def region_spans(splits: Sequence[int], scale: int) -> list[tuple[int, int]]:
    """Input-row spans of regions given in rows of a map ``scale`` times smaller."""
    bounds = [0]
    for split in splits:
        bounds.append(bounds[-1] + split * scale)
    return list(zip(bounds[:-1], bounds[1:]))


class HSTLPP(FastPathModel):
    """HSTL++ (see the module docstring); ``model_cfg`` keys ``channels`` ``[c0, c1, c2]``,
    ``class_num``, ``input_height`` and the bools of :data:`SWITCHES`.

    Levels as ``HSTL``: ``arme1`` (stem) | ``astp1`` | [``pool2``] ``arme2`` on 2 regions
    | ``astp2`` | ``fta`` | ``astp2_fta`` | [``pool3``] ``arme3`` on 4 regions | ``astp3`` |
    temporal max + ``HPP`` with one bin per row of the last map. Parts:
    1 + 2 + 2 + 4 + rows (73 at 64 rows, 41 at 32; with ``downsample`` 25 and 17).
    ``forward(sils [n, s, h, w], seqL=None)`` returns ``embeddings`` and ``features``
    ``[n, p, c2]`` and ``logits`` ``[n, p, class_num]``: with HSTL's head,
    ``embeddings`` are after its BN; with ``bnneck_head`` they are the FCs' output
    before the BNNeck (``bn_features`` after it), as GaitBase's. Built on HSTL's fast
    path (``hstl_core.model.hstl.set_fast_path``), as ``HSTL`` is.
    """

    def __init__(
        self,
        channels: Sequence[int],
        class_num: int,
        input_height: int = PAPER_HEIGHT,
        p3d_arme: bool = False,
        downsample: bool = False,
        bnneck_head: bool = False,
        part_confidence: bool = False,
    ) -> None:
        super().__init__()
        c0, c1, c2 = channels
        self.input_height = input_height
        if downsample and input_height % 4:
            raise ValueError(f"model_cfg.input_height: downsample needs a multiple of 4, got {input_height}")
        pool = 2 if downsample else 1
        split2 = scale_splits(LEVEL_SPLITS[0], input_height // pool)
        split3 = scale_splits(LEVEL_SPLITS[1], input_height // pool**2)
        last_rows = input_height // pool**2

        self.arme1 = MaskedSequential(BasicConv3d(1, c0), nn.LeakyReLU(0.01))
        self.astp1 = ASTP([input_height], c0, c2, project=True)
        if downsample:
            self.pool2 = nn.MaxPool3d(kernel_size=(1, 2, 2), stride=(1, 2, 2))
        self.arme2 = self._level(c0, c0, c1, split2, p3d_arme)
        self.astp2 = ASTP(split2, c1, c2, project=True)
        self.fta = FTABlock(split2, c1)
        self.astp2_fta = ASTP(split2, c1, c2, project=True)
        if downsample:
            self.pool3 = nn.MaxPool3d(kernel_size=(1, 2, 2), stride=(1, 2, 2))
        self.arme3 = self._level(c1, c2, c2, split3, p3d_arme)
        self.astp3 = ASTP(split3, c2, c2, project=False)
        self.TP = TemporalMax()
        self.HPP = GeMHPP(bin_num=(last_rows,))
        self.parts = 1 + 2 * len(split2) + len(split3) + last_rows
        if bnneck_head:
            self.FCs = SeparateFCs(self.parts, c2, c2)
            self.BNNecks = SeparateBNNecks(self.parts, c2, class_num)
        else:
            self.Head0 = SeparateFCs(self.parts, c2, c2)
            self.Bn = nn.BatchNorm1d(c2)
            self.Head1 = SeparateFCs(self.parts, c2, class_num)
        if part_confidence:
            spans = [(0, input_height)] + region_spans(split2, pool) * 2 + region_spans(split3, pool**2)
            spans += region_spans([1] * last_rows, pool**2)
            self.part_gate = PartConfidence(part_rows(spans, input_height))
        init_parameters(self)
        set_fast_path(self, True)

    @staticmethod
    def _level(c_in: int, c_mid: int, c_out: int, splits: list[int], p3d: bool) -> nn.Module:
        """HSTL's two ARME convs (c_in -> c_mid -> c_out), or one residual P3D block per region."""
        if p3d:
            return RegionP3D(c_in, c_out, splits)
        return MaskedSequential(ARMEConv(c_in, c_mid, splits), ARMEConv(c_mid, c_out, splits))

    def forward(self, sils: torch.Tensor, seqL: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        check_silhouettes(sils, self.input_height)
        clips, mask = prepare_sequences(sils, seqL)
        x = self.arme1(clips, mask)
        parts = [self.astp1(x, mask)]
        if hasattr(self, "pool2"):
            x = self.pool2(x)
        x = self.arme2(x, mask)
        parts.append(self.astp2(x, mask))
        x = self.fta(x, mask)
        level3_mask = None if mask is None else fta_mask(mask)
        parts.append(self.astp2_fta(x, level3_mask))
        if hasattr(self, "pool3"):
            x = self.pool3(x)
        x = self.arme3(x, level3_mask)
        parts.append(self.astp3(x, level3_mask))
        parts.append(self.HPP(self.TP(x, level3_mask)))
        feat = torch.cat(parts, dim=-1)
        if hasattr(self, "BNNecks"):
            features = self.FCs(feat)
            bn_features, logits = self.BNNecks(features)
            embeddings = features
            outputs = {"bn_features": bn_features.transpose(1, 2).contiguous()}
        else:
            features = self.Head0(feat)
            embeddings = self.Bn(features)
            logits = self.Head1(embeddings)
            outputs = {}
        embeddings = embeddings.transpose(1, 2)
        if hasattr(self, "part_gate"):
            embeddings = embeddings * self.part_gate(clips, mask)[:, :, None]
        outputs.update(
            embeddings=embeddings.contiguous(),
            logits=logits.transpose(1, 2).contiguous(),
            features=features.transpose(1, 2).contiguous(),
        )
        return outputs


def build_hstlpp(model_cfg: Mapping) -> HSTLPP:
    """``HSTLPP`` from ``model_cfg``; raises ValueError naming a wrong key."""
    reject_unknown_keys(model_cfg, MODEL_CFG_KEYS, "model_cfg")
    channels = model_cfg.get("channels")
    if not isinstance(channels, (list, tuple)) or len(channels) != 3 or not all(
        isinstance(c, int) and not isinstance(c, bool) and c > 0 for c in channels
    ):
        raise ValueError(f"model_cfg.channels: HSTLPP needs a list of 3 positive ints, got {channels!r}")
    class_num = model_cfg.get("class_num")
    if not isinstance(class_num, int) or isinstance(class_num, bool) or class_num < 1:
        raise ValueError(f"model_cfg.class_num: a positive int is needed, got {class_num!r}")
    switches = {}
    for name in SWITCHES:
        value = model_cfg.get(name, False)
        if not isinstance(value, bool):
            raise ValueError(f"model_cfg.{name}: true or false, got {value!r}")
        switches[name] = value
    return HSTLPP(list(channels), class_num, model_cfg.get("input_height", PAPER_HEIGHT), **switches)
