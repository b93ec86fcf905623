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

import torch
import torch.nn.functional as F
from torch import nn


def frame_mask(mask: torch.Tensor) -> torch.Tensor:
    """Broadcastable view ``[n, 1, s, 1, 1]`` of a frame mask ``[n, s]``."""
    return mask[:, None, :, None, None]


class BasicConv3d(nn.Module):
    """3D convolution without bias (the building block of ARME, paper Sec. 3).

    Input ``[n, c_in, s, h, w]``, output ``[n, c_out, s, h, w]`` with the default
    3 x 3 x 3 kernel, stride 1, padding 1. The weight is ``conv3d.weight``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, padding: int = 1) -> None:
        super().__init__()
        self.conv3d = nn.Conv3d(in_channels, out_channels, kernel_size, stride=1, padding=padding, bias=False)

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
    """

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if mask is not None:
            x = x.masked_fill(~frame_mask(mask), float("-inf"))
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
        """GeM over the last axis: ``[..., k]`` -> ``[...]``, always in float32.

        ``eps ** p`` is about 1e-39: in bfloat16 or float16 it underflows and the
        gradient of the outer root becomes NaN. CUDA's fp16 autocast already runs
        ``pow`` in float32; computing GeM in float32 gives CPU bf16 autocast the same.
        """
        return x.float().clamp(min=self.eps).pow(self.p).mean(dim=-1).pow(1.0 / self.p)

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


def leaky_relu(x: torch.Tensor) -> torch.Tensor:
    """The activation used everywhere in HSTL: leaky ReLU with slope 0.01."""
    return F.leaky_relu(x, negative_slope=0.01)
