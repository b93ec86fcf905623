"""HSTL: Hierarchical Spatio-Temporal Representation Learning (Wang et al., ICCV 2023).

Components, named as in the paper's method section (Sec. 3; subsection numbers are
not cited here because we could not check them against the published PDF):

* ``ARMEConv`` - adaptive region-based motion extractor: separate 3D convs on
  horizontal regions.
* ``FTA`` / ``FTABlock`` - frame-level temporal aggregation: two temporal max-pool
  branches fused by learned softmax weights, per region.
* ``ASTP`` - adaptive spatio-temporal pooling: temporal max, optional 1x1
  projection, GeM per region.
* ``HSTL`` (CASIA-B), ``HSTL_OU`` (OU-MVLP), ``HSTL_Gait3D`` (Gait3D).

Tensor names: ``n`` batch, ``c`` channels, ``s`` frames, ``h`` x ``w`` map, ``p`` parts.
Region heights are given in rows of a 64-high input (as in the paper's code) and
scaled by ``input_height / 64``; the scale must give whole rows.

Two implementations of the same function, switched by ``set_fast_path``:

* the fast path (what ``build_model`` returns): 3D convolution weights in the
  memory layout that pays for the mode (``fast_layout``: ``channels_last_3d``,
  oneDNN's native layout on CPUs and cuDNN's NDHWC on GPUs, except for inference
  on a CPU; a convolution whose weight is channels-last gives a channels-last
  feature map, so the features follow), every float32 CPU convolution on oneDNN
  (``OneDNNConv3d``), leaky ReLU in place, and FTA's two temporal max pools run
  once on the whole map instead of once per region (a (k, 1, 1) pool never mixes
  rows, so this is exact); only the per-region branch weights are computed per
  region. Where no gradient is wanted (inference) the temporal maxima keep no
  argmax indices: FTA's pools by strided slices (``temporal_pools_by_slices``),
  ``TemporalMax`` by ``amax``;
* the plain path: the original code's layout and per-region split/cat, kept as the
  reference that ``record_intermediates`` (per-region hooks), the equivalence
  tests and ``benchmarks/bench_speed.py`` run against.

Both give the same state dict (keys, shapes, values) and the same fp32 outputs up
to float rounding (relative 1e-5 in the tests).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from hstl_core.model.layers import (
    BasicConv2d,
    BasicConv3d,
    GeMHPP,
    MaskedSequential,
    OneDNNConv3d,
    SeparateFCs,
    TemporalMax,
    frame_mask,
    leaky_relu,
)
from hstl_core.model.sequences import check_silhouettes, fta_frame_count, fta_mask, prepare_sequences

PAPER_HEIGHT = 64
"""The silhouette height the paper's region splits are written for."""


def fast_layout(weight: torch.Tensor, training: bool) -> torch.memory_format:
    """The memory format the fast path keeps a ``Conv3d`` weight in.

    ``channels_last_3d`` for training and on GPUs; contiguous for inference on a
    CPU, where it does not pay: on a 2-core AVX2 CPU (``benchmarks/bench_speed.py``)
    channels-last made a training step of the small config 1.3x faster but one
    80-frame sequence through the paper's model slower (2.49 s against 2.01 s):
    its convolutions took the same time, but the no-index temporal maxima
    (``temporal_pools_by_slices``, ``TemporalMax``) reduce over a strided axis.
    """
    return torch.channels_last_3d if training or weight.is_cuda else torch.contiguous_format


def place_conv_weights(model: nn.Module, fast: bool) -> None:
    """Give the weight of every ``OneDNNConv3d`` (ARME's and the stem's 3D
    convolutions) in ``model`` its layout: ``fast_layout`` of its module's mode when
    ``fast``, else contiguous (the original code's). The parameters keep their
    identity, so an optimizer built before still holds them."""
    for module in model.modules():
        if isinstance(module, OneDNNConv3d):
            weight = module.weight.data
            layout = fast_layout(weight, module.training) if fast else torch.contiguous_format
            module.weight.data = weight.contiguous(memory_format=layout)


def set_fast_path(model: nn.Module, enabled: bool) -> nn.Module:
    """Switch every HSTL module inside ``model`` to the fast (or the plain) path.

    Sets ``fast`` on HSTL's own modules, ``inplace`` on its ``nn.LeakyReLU`` and the
    memory format of every ``OneDNNConv3d`` weight (``place_conv_weights``). Returns ``model``.
    """
    for module in model.modules():
        if isinstance(module, (ARMEConv, FastPathModel, FTABlock, OneDNNConv3d, TemporalMax)):
            module.fast = enabled
        elif isinstance(module, nn.LeakyReLU):
            module.inplace = enabled
    place_conv_weights(model, enabled)
    return model


class FastPathModel(nn.Module):
    """Base of the models built from HSTL's modules (``HSTL``, ``HSTLPP``): each ends
    its ``__init__`` with ``set_fast_path(self, True)``, and ``train()`` / ``eval()``
    move the ``OneDNNConv3d`` weights to the layout of the new mode (``fast_layout``)
    while the fast path is on."""

    fast = False

    def train(self, mode: bool = True) -> FastPathModel:
        super().train(mode)
        if self.fast:
            place_conv_weights(self, True)
        return self


class ARMEConv(nn.Module):
    """One ARME convolution layer (paper Sec. 3, adaptive region-based motion extractor).

    The map is cut along height into regions of ``splits`` rows; each region gets
    its own 3 x 3 x 3 convolution (``conv3d.{i}``) with its own zero padding, so no
    value crosses a region border; the results are stacked back along height and
    passed through leaky ReLU. Input ``[n, c_in, s, h, w]`` with ``h == sum(splits)``,
    output ``[n, c_out, s, h, w]``.
    """

    def __init__(self, in_channels: int, out_channels: int, splits: Sequence[int]) -> None:
        super().__init__()
        self.splits = list(splits)
        self.conv3d = nn.ModuleList(BasicConv3d(in_channels, out_channels) for _ in self.splits)
        self.fast = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        regions = x.split(self.splits, dim=3)
        joined = torch.cat([conv(region) for conv, region in zip(self.conv3d, regions)], dim=3)
        return leaky_relu(joined, inplace=self.fast)


class FTA(nn.Module):
    """Frame-level temporal aggregation for one region (paper Sec. 3, FTA).

    Two temporal max pools, ``FP_3`` (kernel 3, stride 3) and ``FP_5`` (kernel 5,
    stride 3, padding 1), both give T' = floor((T - 3) / 3) + 1 frames. Their sum is
    averaged over height and width (``gap``), two 1x1 ``Conv1d`` (``fcs.0``,
    ``fcs.1``) turn it into per-channel, per-frame logits, a softmax across the two
    branches gives weights a_3 + a_5 = 1, and the output is a_3 * FP_3 + a_5 * FP_5.
    Input ``[n, c, T, h, w]`` (+ optional frame mask ``[n, T]``), output
    ``[n, c, T', h, w]``; ``softmax``'s output (hookable) is ``[2, n, c, T', 1, 1]``.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.FP_3 = nn.MaxPool3d(kernel_size=(3, 1, 1), stride=(3, 1, 1), padding=(0, 0, 0))
        self.FP_5 = nn.MaxPool3d(kernel_size=(5, 1, 1), stride=(3, 1, 1), padding=(1, 0, 0))
        self.gap = nn.AdaptiveAvgPool3d((None, 1, 1))
        self.fcs = nn.ModuleList(nn.Conv1d(channels, channels, kernel_size=1) for _ in range(2))
        self.softmax = nn.Softmax(dim=0)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if mask is not None:
            x = x.masked_fill(~frame_mask(mask), float("-inf"))
        branches = [self.FP_3(x), self.FP_5(x)]
        if mask is not None:
            kept = frame_mask(fta_mask(mask))
            branches = [branch.masked_fill(~kept, 0.0) for branch in branches]
        summary = self.gap(branches[0] + branches[1]).flatten(2)
        logits = torch.stack([fc(summary) for fc in self.fcs], dim=0)
        weights = self.softmax(logits[..., None, None])
        return (weights * torch.stack(branches, dim=0)).sum(dim=0)


def temporal_pools_by_slices(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """FTA's ``FP_3`` and ``FP_5`` of ``[n, c, T, h, w]`` by strided slices, for inference.

    ``FP_3``'s window t holds frames 3t .. 3t+2; ``FP_5``'s (padding 1) holds one frame
    more on each side, 3t-1 .. 3t+3, and the padding frames are minus infinity. So
    ``FP_5`` is the element-wise maximum of ``FP_3`` and the frames 3t-1 and 3t+3.
    Returns both ``[n, c, T', h, w]``, equal to the ``MaxPool3d`` modules' outputs.
    They keep no argmax indices, so autograd would split a tie's gradient where the
    pools give it to one frame: the fast path uses this only when ``x`` needs no
    gradient. On the 2-core CPU it took 20 ms against the pools' 223 ms for the
    paper model's map of one 80-frame sequence (``[1, 64, 80, 64, 44]``).
    """
    frames = fta_frame_count(x.shape[2])
    branch3 = x[:, :, : 3 * frames].unflatten(2, (frames, 3)).amax(dim=3)
    padded = F.pad(x, (0, 0, 0, 0, 1, 1), value=float("-inf"))
    neighbours = torch.maximum(padded[:, :, 0 : 3 * frames : 3], padded[:, :, 4 : 3 * frames + 2 : 3])
    return branch3, torch.maximum(branch3, neighbours)


class FTABlock(nn.Module):
    """An independent ``FTA`` per horizontal region (``mma.{i}``), stacked back along height.

    Input ``[n, c, T, h, w]``, output ``[n, c, T', h, w]``.
    """

    def __init__(self, splits: Sequence[int], channels: int) -> None:
        super().__init__()
        self.splits = list(splits)
        self.mma = nn.ModuleList(FTA(channels) for _ in self.splits)
        self.fast = False

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if self.fast:
            return self.forward_whole_map(x, mask)
        regions = x.split(self.splits, dim=3)
        return torch.cat([fta(region, mask) for fta, region in zip(self.mma, regions)], dim=3)

    def forward_whole_map(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """The fast path: both pools once over all rows, branch weights per region.

        Equal to the per-region FTAs: a (k, 1, 1) max pool treats every pixel on its
        own, and each region's weights come from its own rows' mean and ``fcs``.
        """
        first = self.mma[0]
        if mask is not None:
            x = x.masked_fill(~frame_mask(mask), float("-inf"))
        branch3, branch5 = (first.FP_3(x), first.FP_5(x)) if x.requires_grad else temporal_pools_by_slices(x)
        if mask is not None:
            kept = ~frame_mask(fta_mask(mask))
            branch3, branch5 = branch3.masked_fill(kept, 0.0), branch5.masked_fill(kept, 0.0)
        row_sums = (branch3 + branch5).sum(dim=4)
        width = x.shape[4]
        weights = []
        for fta, rows in zip(self.mma, row_sums.split(self.splits, dim=3)):
            summary = rows.mean(dim=3) / width
            weights.append(fta.softmax(torch.stack([fc(summary) for fc in fta.fcs], dim=0)))
        per_row = torch.stack(weights, dim=-1).repeat_interleave(
            torch.tensor(self.splits, device=x.device), dim=-1, output_size=x.shape[3]
        )[..., None]
        return torch.addcmul(branch3 * per_row[0], branch5, per_row[1])


class ASTP(nn.Module):
    """Adaptive spatio-temporal pooling (paper Sec. 3, ASTP).

    Temporal max, then (if ``project``) a 1x1 conv ``proj`` to ``out_channels``
    without activation, then one GeM (``hpp.{i}``, its own p) over each whole
    region. Input ``[n, c_in, s, h, w]``, output ``[n, c_out, len(splits)]``.
    """

    def __init__(self, splits: Sequence[int], in_channels: int, out_channels: int, project: bool) -> None:
        super().__init__()
        self.splits = list(splits)
        self.hpp = nn.ModuleList(GeMHPP(bin_num=(1,)) for _ in self.splits)
        if project:
            self.proj = BasicConv2d(in_channels, out_channels)
        self.SP1 = TemporalMax()

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = self.SP1(x, mask)
        if hasattr(self, "proj"):
            x = self.proj(x)
        regions = x.split(self.splits, dim=2)
        return torch.cat([gem(region) for gem, region in zip(self.hpp, regions)], dim=-1)


def scale_splits(splits: Sequence[int], input_height: int) -> list[int]:
    """Region heights written for a 64-high input -> heights for ``input_height``.

    Raises ValueError when a region would not be a whole number of rows.
    """
    scaled = [split * input_height / PAPER_HEIGHT for split in splits]
    if any(value != int(value) or value < 1 for value in scaled):
        raise ValueError(
            f"input_height {input_height} does not divide the regions {list(splits)} (written for "
            f"{PAPER_HEIGHT} rows) into whole rows: got {scaled}; use a height like 64, 32 or 16"
        )
    return [int(value) for value in scaled]


def init_parameters(model: nn.Module) -> None:
    """OpenGait's initialisation: xavier-uniform conv/linear weights, zero biases,
    BatchNorm weights ~ N(1, 0.02) and zero biases. ``SeparateFCs`` and GeM ``p``
    keep their construction values (xavier, 6.5)."""
    for module in model.modules():
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)):
            nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.modules.batchnorm._BatchNorm) and module.affine:
            nn.init.normal_(module.weight, 1.0, 0.02)
            nn.init.zeros_(module.bias)


class HSTL(FastPathModel):
    """HSTL for CASIA-B (``HSTL-CB.py``): channels ``[c0, c1, c2]``, the paper's framework figure.

    Levels: ``arme1`` (1 -> c0) | ``arme2`` on 2 regions [40, 24] (c0 -> c0 -> c1) |
    ``fta`` per region (T -> T') | ``arme3`` on 4 regions [8, 32, 16, 8]
    (c1 -> c2 -> c2) | temporal max + ``HPP`` with one bin per row. ASTP after each
    level gives 1 + 2 + 2 + 4 parts, HPP ``input_height`` more: 73 parts at 64 rows,
    41 at 32. ``Head0`` (separate FCs), ``Bn`` (BNNeck), ``Head1`` (classifier).

    ``forward(sils [n, s, h, w], seqL=None)`` returns ``embeddings`` (post-BN)
    ``[n, p, c2]``, ``features`` (pre-BN) ``[n, p, c2]`` and ``logits``
    ``[n, p, class_num]``; see :meth:`forward`.
    """

    STEM_CONVS = 1
    STEM_POOL = False
    LEVEL_SPLITS: tuple[tuple[int, ...], ...] = ((40, 24), (8, 32, 16, 8))
    """Region heights per level after the stem, at a 64-high input."""

    def __init__(self, channels: Sequence[int], class_num: int, input_height: int = PAPER_HEIGHT) -> None:
        super().__init__()
        channels = list(channels)
        if len(channels) != len(self.LEVEL_SPLITS) + 1:
            raise ValueError(f"{type(self).__name__} needs {len(self.LEVEL_SPLITS) + 1} channel widths, got {channels}")
        self.input_height = input_height
        width = channels[-1]
        stem_rows = input_height // 2 if self.STEM_POOL else input_height
        level_splits = [scale_splits(splits, input_height) for splits in self.LEVEL_SPLITS]
        self.stages = [f"arme{k}" for k in range(3, len(level_splits) + 2)]

        stem: list[nn.Module] = []
        for index in range(self.STEM_CONVS):
            stem += [BasicConv3d(1 if index == 0 else channels[0], channels[0]), nn.LeakyReLU(0.01)]
        self.arme1 = MaskedSequential(*stem)
        self.astp1 = ASTP([input_height], channels[0], width, project=True)
        if self.STEM_POOL:
            self.MaxPool0 = nn.MaxPool3d(kernel_size=(1, 2, 2), stride=(1, 2, 2))
        for level, (splits, (c_in, c_mid, c_out)) in enumerate(zip(level_splits, self.stage_widths(channels)), start=2):
            arme = MaskedSequential(ARMEConv(c_in, c_mid, splits), ARMEConv(c_mid, c_out, splits))
            setattr(self, f"arme{level}", arme)
            setattr(self, f"astp{level}", ASTP(splits, c_out, width, project=level < len(level_splits) + 1))
            if level == 2:
                self.fta = FTABlock(splits, c_out)
                self.astp2_fta = ASTP(splits, c_out, width, project=True)
        self.TP = TemporalMax()
        self.HPP = GeMHPP(bin_num=(stem_rows,))
        self.parts = 1 + 2 * len(level_splits[0]) + sum(len(s) for s in level_splits[1:]) + stem_rows
        self.Head0 = SeparateFCs(self.parts, width, width)
        self.Bn = nn.BatchNorm1d(width)
        self.Head1 = SeparateFCs(self.parts, width, class_num)
        init_parameters(self)
        set_fast_path(self, True)

    def stage_widths(self, channels: list[int]) -> list[tuple[int, int, int]]:
        """(in, middle, out) channels of ``arme2``, ``arme3``, ...: CASIA-B's ``arme2``
        keeps c0 in its first conv (c0 -> c0 -> c1); later levels widen first."""
        widths = [(channels[i], channels[i + 1], channels[i + 1]) for i in range(len(channels) - 1)]
        widths[0] = (channels[0], channels[0], channels[1])
        return widths

    def forward(
        self, sils: torch.Tensor, seqL: torch.Tensor | None = None, return_intermediates: bool = False
    ) -> dict[str, torch.Tensor]:
        """Embed silhouette sequences.

        ``sils`` float ``[n, s, h, w]`` in [0, 1] with ``h == input_height``. With
        ``seqL`` (LongTensor ``[B]``), ``sils`` is ``[1, sum(seqL), h, w]`` holding B
        sequences back to back, and each output row equals that sequence run alone.
        Returns ``embeddings`` ``[n, p, c]`` (post-BN, for triplet loss and
        retrieval), ``features`` ``[n, p, c]`` (pre-BN) and ``logits``
        ``[n, p, class_num]``; with ``return_intermediates`` also
        ``intermediates`` (see ``hstl_core.model.intermediates``).
        """
        if return_intermediates:
            from hstl_core.model.intermediates import record_intermediates

            with record_intermediates(self) as recorded:
                outputs = self.forward(sils, seqL)
            outputs["intermediates"] = recorded
            return outputs
        check_silhouettes(sils, self.input_height)
        x, mask = prepare_sequences(sils, seqL)
        x = self.arme1(x, mask)
        parts = [self.astp1(x, mask)]
        if self.STEM_POOL:
            x = self.MaxPool0(x)
        x = self.arme2(x, mask)
        parts.append(self.astp2(x, mask))
        x = self.fta(x, mask)
        mask = None if mask is None else fta_mask(mask)
        parts.append(self.astp2_fta(x, mask))
        for stage in self.stages:
            x = getattr(self, stage)(x, mask)
            parts.append(getattr(self, stage.replace("arme", "astp"))(x, mask))
        parts.append(self.HPP(self.TP(x, mask)))
        features = self.Head0(torch.cat(parts, dim=-1))
        embeddings = self.Bn(features)
        logits = self.Head1(embeddings)
        return {
            "embeddings": embeddings.permute(0, 2, 1).contiguous(),
            "logits": logits.permute(0, 2, 1).contiguous(),
            "features": features.permute(0, 2, 1).contiguous(),
        }


class HSTL_OU(HSTL):
    """HSTL for OU-MVLP (``HSTL-OU.py``): channels ``[c0, c1, c2, c3]``.

    Differs from CASIA-B: ``arme1`` has two convs (keys ``arme1.0``, ``arme1.2``),
    ``MaxPool0`` halves height and width after it, levels widen in their first conv,
    a fourth level ``arme4``/``astp4`` follows, ``astp3`` projects, and HPP has one bin
    per row of the pooled map (32 at 64 rows). Regions (rows of the pooled map of a
    64-high input): [4, 24, 4], [4, 4, 12, 8, 4], [4, 4, 12, 4, 4, 4];
    parts 1 + 3 + 3 + 5 + 6 + 32 = 50.
    """

    STEM_CONVS = 2
    STEM_POOL = True
    LEVEL_SPLITS = ((4, 24, 4), (4, 4, 12, 8, 4), (4, 4, 12, 4, 4, 4))

    def stage_widths(self, channels: list[int]) -> list[tuple[int, int, int]]:
        return [(channels[i], channels[i + 1], channels[i + 1]) for i in range(len(channels) - 1)]


class HSTL_Gait3D(HSTL_OU):
    """HSTL for Gait3D (``HSTL-Gait3D.py``): as ``HSTL_OU`` with regions [20, 12],
    [4, 16, 8, 4], [4, 4, 12, 8, 4]; parts 1 + 2 + 2 + 4 + 5 + 32 = 46."""

    LEVEL_SPLITS = ((20, 12), (4, 16, 8, 4), (4, 4, 12, 8, 4))
