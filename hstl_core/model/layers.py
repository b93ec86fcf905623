"""Basic layers of HSTL: conv wrappers, temporal max, GeM pooling, separate FCs.

Shapes use ``n`` batch, ``c`` channels, ``s`` frames, ``h`` x ``w`` the feature map,
``p`` parts. The wrappers keep the attribute names of OpenGait's modules
(``conv3d``, ``conv``, ``p``, ``fc_bin``) because the released checkpoints name
their tensors after them.

Frame masks: the packed inference path pads sequences of different lengths to a
common length and carries a boolean ``mask`` ``[n, s]`` (True = real frame). Layers
that take a ``mask`` make sure padded frames never reach a real frame's result;
with ``mask=None`` they compute exactly what the original code computes.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def frame_mask(mask: torch.Tensor) -> torch.Tensor:
    """Broadcastable view ``[n, 1, s, 1, 1]`` of a frame mask ``[n, s]``."""
    return mask[:, None, :, None, None]


def onednn_applies(x: torch.Tensor) -> bool:
    """True where PyTorch has oneDNN (MKL-DNN) convolutions for ``x``: a float32
    tensor on a CPU, outside autocast, with oneDNN built in and enabled, in eager
    mode (``torch.compile`` cannot trace ``torch.mkldnn_convolution``: it has no
    shape-only implementation; inductor picks its own convolution kernels)."""
    return (
        not torch.compiler.is_compiling()
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and not torch.is_autocast_enabled("cpu")
        and torch.backends.mkldnn.is_available()
        and torch.backends.mkldnn.enabled
    )


class OneDNNConv3d(nn.Conv3d):
    """``nn.Conv3d`` that, with ``fast`` (HSTL's fast path sets it), runs every float32
    CPU convolution on oneDNN. Same parameters, state-dict keys and hooks as ``nn.Conv3d``.

    ``nn.Conv3d`` picks a backend by size: for batch 1 with at most 20,480 values in
    ``n * c_in * s * h`` (measured on PyTorch 2.14: a thin ARME region of one test
    sequence, or the one-channel stem) it falls back to an im2col kernel
    (``slow_conv3d_forward`` in a profile). On the 2-core CPU that kernel took
    110 ms for an 8-row region of the paper model's ``arme3`` (``[1, 64, 26, 8, 44]``),
    oneDNN 52 ms. Both compute the same convolution (float rounding apart);
    autograd works through either.
    """

    fast = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fast and self.padding_mode == "zeros" and onednn_applies(x):
            return torch.mkldnn_convolution(x, self.weight, self.bias, self.padding, self.stride, self.dilation, self.groups)
        return super().forward(x)


class BasicConv3d(nn.Module):
    """3D convolution without bias (the building block of ARME, paper Sec. 3).

    Input ``[n, c_in, s, h, w]``, output ``[n, c_out, s, h, w]`` with the default
    3 x 3 x 3 kernel, stride 1, padding 1. The weight is ``conv3d.weight``; the
    convolution is a :class:`OneDNNConv3d`.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, padding: int = 1) -> None:
        super().__init__()
        self.conv3d = OneDNNConv3d(in_channels, out_channels, kernel_size, stride=1, padding=padding, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv3d(x)


class BasicConv2d(nn.Module):
    """1 x 1 2D convolution without bias: the ASTP projection (paper Sec. 3).

    Input ``[n, c_in, h, w]``, output ``[n, c_out, h, w]``. The weight is ``conv.weight``.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=1, padding=0, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class TemporalMax(nn.Module):
    """Max over time (the temporal pooling inside ASTP and before HPP, paper Sec. 3).

    Input ``[n, c, s, h, w]`` and an optional frame mask ``[n, s]``; output
    ``[n, c, h, w]``. Padded frames are set to minus infinity first, so they never win.
    With ``fast`` (HSTL's fast path) and no gradient wanted it takes ``amax``, the
    same values without the argmax indices that only a backward needs (on the
    2-core CPU 3.7 ms against 16 ms for the paper model's last map, ``[1, 128, 26, 64, 44]``).
    """

    fast = False

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if mask is not None:
            x = x.masked_fill(~frame_mask(mask), float("-inf"))
        if self.fast and not x.requires_grad:
            return x.amax(dim=2)
        return x.max(dim=2).values


class MaskedSequential(nn.Sequential):
    """``nn.Sequential`` over 5D features that re-zeroes padded frames after each layer.

    Input and output ``[n, c, s, h, w]``. Zeroing after every layer makes a padded
    frame look exactly like the zero padding a 3D convolution sees beyond the end of
    a sequence run alone (the convolutions have no bias, so zeros stay zeros).
    """

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        for layer in self:
            x = layer(x)
            if mask is not None:
                x = x.masked_fill(~frame_mask(mask), 0.0)
        return x


class GeMHPP(nn.Module):
    """Generalised-mean horizontal pyramid pooling (GeM, used by ASTP and HPP; paper Sec. 3).

    .. math:: \\mathrm{GeM}(X) = \\Big(\\frac{1}{|X|}\\sum_{x \\in X} \\max(x, \\epsilon)^p\\Big)^{1/p}

    p = 1 is average pooling, p -> infinity is max pooling; p is one learnable scalar
    (initial 6.5) shared by all bins. Input ``[n, c, h, w]`` is cut into each of
    ``bin_num`` equal horizontal strips (``h`` must be divisible by every bin count);
    output ``[n, c, sum(bin_num)]``.
    """

    def __init__(self, bin_num: tuple[int, ...] = (64,), p: float = 6.5, eps: float = 1.0e-6) -> None:
        super().__init__()
        self.bin_num = tuple(bin_num)
        self.p = nn.Parameter(torch.ones(1) * p)
        self.eps = eps

    def gem(self, x: torch.Tensor) -> torch.Tensor:
        """GeM over the last axis: ``[..., k]`` -> ``[...]``, in float32 under any autocast.

        Computed as ``exp((logsumexp(p * log(max(x, eps))) - log k) / p)``, equal to
        the formula above. The direct ``mean(max(x, eps) ** p) ** (1 / p)`` underflows
        wherever a whole bin is at most ``eps`` (an empty row of the silhouette):
        ``eps ** p`` is about 1e-39, a subnormal float32 that is 0 when the CPU flushes
        subnormals to zero, in float16/bfloat16, and for p > 7.5 in any float32; the
        root's gradient there is infinite and ``p``'s gradient NaN, so one step makes
        ``p`` and every later output NaN. The log-sum-exp form never leaves the
        normal range and its gradients are softmax weights.
        """
        logs = x.float().clamp(min=self.eps).log() * self.p
        return ((logs.logsumexp(dim=-1) - math.log(x.shape[-1])) / self.p).exp()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, _ = x.shape
        for bins in self.bin_num:
            if h % bins:
                raise ValueError(f"GeMHPP: height {h} is not divisible into {bins} bins")
        return torch.cat([self.gem(x.reshape(n, c, bins, -1)) for bins in self.bin_num], dim=-1)


class SeparateFCs(nn.Module):
    """One independent linear map per part, no bias (the paper's separate FC heads).

    ``fc_bin`` is ``[parts, in, out]``, xavier-uniform initialised once at
    construction. Input ``[n, in, parts]``, output ``[n, out, parts]``.
    """

    def __init__(self, parts: int, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.fc_bin = nn.Parameter(nn.init.xavier_uniform_(torch.zeros(parts, in_channels, out_channels)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts_first = x.permute(2, 0, 1).contiguous()
        return parts_first.matmul(self.fc_bin).permute(1, 2, 0).contiguous()


def leaky_relu(x: torch.Tensor, inplace: bool = False) -> torch.Tensor:
    """The activation used everywhere in HSTL: leaky ReLU with slope 0.01.

    ``inplace`` overwrites ``x`` (autograd keeps the output for the backward, which
    a positive slope allows); only for a fresh tensor nothing else reads.
    """
    return F.leaky_relu(x, negative_slope=0.01, inplace=inplace)


# ---------------------------------------------------------------------------
# Blocks of the residual silhouette models (GaitBase, DeepGaitV2, HSTL++).
# Attribute names follow OpenGait's modules (``forward_block``, ``conv1``, ``bn1``,
# ``shortcut3d``, ``sbn``, ``downsample``, ``fc_bin``, ``bn1d``) so that released
# OpenGait checkpoints of those models load strictly.
# ---------------------------------------------------------------------------


def conv3x3(in_channels: int, out_channels: int, stride: int | tuple[int, int] = 1) -> nn.Conv2d:
    """3 x 3 2D convolution, padding 1, no bias (the ResNet ``conv3x3``)."""
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_channels: int, out_channels: int, stride: int | tuple[int, int] = 1) -> nn.Conv2d:
    """1 x 1 2D convolution without bias (the ResNet ``conv1x1``, used by shortcuts)."""
    return nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False)


class SetBlockWrapper(nn.Module):
    """Apply a 2D module to every frame: ``[n, c, s, h, w]`` -> ``[n, c', s, h', w']``.

    The frames are folded into the batch (``[n * s, c, h, w]``), ``forward_block``
    runs once and the result is unfolded. Frames never see each other, so padded
    frames cannot reach real ones; the ``mask`` argument is accepted and ignored so
    the wrapper fits in a :class:`MaskedSequential`-style chain.
    """

    def __init__(self, forward_block: nn.Module) -> None:
        super().__init__()
        self.forward_block = forward_block

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        n, c, s, h, w = x.shape
        out = self.forward_block(x.transpose(1, 2).reshape(n * s, c, h, w))
        return out.reshape(n, s, *out.shape[1:]).transpose(1, 2).contiguous()


class BasicBlock2D(nn.Module):
    """The ResNet basic block (He et al., CVPR 2016), on one image ``[n, c_in, h, w]``.

    ``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))`` with 3 x 3 convs; the
    first conv carries the ``stride``. ``downsample`` (a 1 x 1 conv + BN, keys
    ``downsample.0`` / ``downsample.1``) is built when the stride or width changes.
    Output ``[n, c_out, h / stride, w / stride]``.
    """

    expansion = 1

    def __init__(self, in_channels: int, out_channels: int, stride: int | tuple[int, int] = 1) -> None:
        super().__init__()
        self.conv1 = conv3x3(in_channels, out_channels, stride)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(out_channels, out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)
        strided = max(_pair(stride)) > 1
        if strided or in_channels != out_channels:
            self.downsample = nn.Sequential(conv1x1(in_channels, out_channels, stride), nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = self.downsample(x) if hasattr(self, "downsample") else x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


def _pair(stride: int | tuple[int, ...] | list[int]) -> tuple[int, ...]:
    return tuple(stride) if isinstance(stride, (tuple, list)) else (stride, stride)


def _zero_padded(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Zero the padded frames of ``[n, c, s, h, w]`` before a convolution mixes frames."""
    return x if mask is None else x.masked_fill(~frame_mask(mask), 0.0)


class BasicBlockP3D(nn.Module):
    """DeepGaitV2's pseudo-3D residual block (Fan et al., "Exploring Deep Models for
    Practical Gait Recognition", 2023; OpenGait's ``BasicBlockP3D``).

    Per frame: ``conv1`` = 3 x 3 conv (with the spatial ``stride``) + BN + ReLU; then a
    residual temporal step ``relu(out + sbn(shortcut3d(out)))`` with a 3 x 1 x 1
    ``Conv3d``; per frame ``conv2`` = 3 x 3 conv + BN; plus the shortcut
    (``downsample``: 1 x 1 x 1 ``Conv3d`` with stride (1, sh, sw) + ``BatchNorm3d``,
    built when the stride or width changes); ReLU. Input ``[n, c_in, s, h, w]``
    (+ optional frame mask ``[n, s]``), output ``[n, c_out, s, h / sh, w / sw]``.
    """

    expansion = 1

    def __init__(self, in_channels: int, out_channels: int, stride: int | tuple[int, int] = 1) -> None:
        super().__init__()
        stride = _pair(stride)
        self.relu = nn.ReLU(inplace=True)
        self.conv1 = SetBlockWrapper(
            nn.Sequential(conv3x3(in_channels, out_channels, stride), nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))
        )
        self.conv2 = SetBlockWrapper(nn.Sequential(conv3x3(out_channels, out_channels), nn.BatchNorm2d(out_channels)))
        self.shortcut3d = nn.Conv3d(out_channels, out_channels, (3, 1, 1), stride=1, padding=(1, 0, 0), bias=False)
        self.sbn = nn.BatchNorm3d(out_channels)
        if max(stride) > 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv3d(in_channels, out_channels, kernel_size=1, stride=(1, *stride), bias=False),
                nn.BatchNorm3d(out_channels),
            )

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        identity = self.downsample(x) if hasattr(self, "downsample") else x
        out = _zero_padded(self.conv1(x), mask)
        out = self.relu(out + self.sbn(self.shortcut3d(out)))
        out = self.conv2(out)
        return self.relu(out + identity)


class BasicBlock3D(nn.Module):
    """DeepGaitV2's full-3D residual block (OpenGait's ``BasicBlock3D``).

    ``relu(bn2(conv2(relu(bn1(conv1(x))))) + downsample(x))`` with 3 x 3 x 3 convs;
    ``conv1`` carries the stride ``(st, sh, sw)`` (temporal padding 1 for st <= 2,
    else 0). ``downsample``: 1 x 1 x 1 ``Conv3d`` + ``BatchNorm3d`` when the stride or
    width changes. Input ``[n, c_in, s, h, w]`` (+ optional frame mask), output
    ``[n, c_out, s / st, h / sh, w / sw]``.
    """

    expansion = 1

    def __init__(self, in_channels: int, out_channels: int, stride: tuple[int, int, int] = (1, 1, 1)) -> None:
        super().__init__()
        stride = tuple(stride)
        if len(stride) != 3 or stride[0] not in (1, 2, 3):
            raise ValueError(f"BasicBlock3D: stride must be (t, h, w) with t in 1..3, got {stride}")
        temporal_padding = 1 if stride[0] in (1, 2) else 0
        self.conv1 = nn.Conv3d(in_channels, out_channels, 3, stride=stride, padding=(temporal_padding, 1, 1), bias=False)
        self.bn1 = nn.BatchNorm3d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv3d(out_channels, out_channels, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm3d(out_channels)
        if max(stride) > 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv3d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm3d(out_channels),
            )

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        identity = self.downsample(x) if hasattr(self, "downsample") else x
        out = self.relu(self.bn1(self.conv1(_zero_padded(x, mask))))
        out = self.bn2(self.conv2(_zero_padded(out, mask)))
        return self.relu(out + identity)


class HorizontalPoolingPyramid(nn.Module):
    """Horizontal pooling pyramid with mean + max per strip (GaitSet's HPP, as in GaitBase).

    For each bin count ``b`` of ``bin_num`` the map ``[n, c, h, w]`` is cut into ``b``
    equal horizontal strips (``h`` divisible by ``b``) and each strip gives
    ``mean + max`` over its pixels. Output ``[n, c, sum(bin_num)]``. No parameters
    (HSTL's :class:`GeMHPP` learns a GeM exponent instead).
    """

    def __init__(self, bin_num: tuple[int, ...] | list[int] = (16, 8, 4, 2, 1)) -> None:
        super().__init__()
        self.bin_num = tuple(bin_num)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, _ = x.shape
        features = []
        for bins in self.bin_num:
            if h % bins:
                raise ValueError(f"HorizontalPoolingPyramid: height {h} is not divisible into {bins} bins")
            strips = x.reshape(n, c, bins, -1)
            features.append(strips.mean(-1) + strips.max(-1).values)
        return torch.cat(features, dim=-1)


class SeparateBNNecks(nn.Module):
    """Per-part BNNeck and classifier (GaitBase's head; OpenGait's ``SeparateBNNecks``).

    BatchNorm over the features (``parallel_BN1d``: one ``BatchNorm1d`` ``bn1d`` over
    all ``c * parts`` values, index ``channel * parts + part``; otherwise one
    ``BatchNorm1d(c)`` per part, ``bn1d.{i}``), then per part a linear classifier
    ``fc_bin`` ``[parts, c, class_num]`` without bias. With ``norm`` both the
    normalised feature and each class column of ``fc_bin`` are L2-normalised, so
    the logits are cosines in [-1, 1] (the loss scales them, e.g. by 16).
    Input ``[n, c, parts]``; returns ``(feature [n, c, parts], logits [n, class_num, parts])``,
    ``feature`` being the BN output (L2-normalised per part when ``norm``).
    """

    def __init__(self, parts_num: int, in_channels: int, class_num: int, norm: bool = True, parallel_BN1d: bool = True) -> None:
        super().__init__()
        self.p = parts_num
        self.class_num = class_num
        self.norm = norm
        self.parallel_BN1d = parallel_BN1d
        self.fc_bin = nn.Parameter(nn.init.xavier_uniform_(torch.zeros(parts_num, in_channels, class_num)))
        if parallel_BN1d:
            self.bn1d = nn.BatchNorm1d(in_channels * parts_num)
        else:
            self.bn1d = nn.ModuleList(nn.BatchNorm1d(in_channels) for _ in range(parts_num))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n, c, p = x.shape
        if self.parallel_BN1d:
            x = self.bn1d(x.reshape(n, c * p)).reshape(n, c, p)
        else:
            x = torch.stack([bn(part) for bn, part in zip(self.bn1d, x.unbind(2))], dim=2)
        feature = x.permute(2, 0, 1)
        if self.norm:
            feature = F.normalize(feature, dim=-1)
            logits = feature.matmul(F.normalize(self.fc_bin, dim=1))
        else:
            logits = feature.matmul(self.fc_bin)
        return feature.permute(1, 2, 0).contiguous(), logits.permute(1, 2, 0).contiguous()



class ResidualStage(nn.Sequential):
    """A stage of residual blocks over 5D features that hands the frame mask to each.

    Children are :class:`BasicBlockP3D` / :class:`BasicBlock3D` (keys ``{i}.conv1...``)
    or :class:`SetBlockWrapper`; input and output ``[n, c, s, h, w]``.
    """

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        for block in self:
            x = block(x, mask)
        return x
