"""Parameters and FLOPs per top-level module, counted analytically from shapes.

Convention: one multiply-add = 2 FLOPs, counted for the layers that multiply
(3D/2D/1D convolutions, linear layers, separate FC heads, the BNNeck classifiers); biases, activations,
pooling, GeM, softmax and BatchNorm are not counted (together well under 1 % of
HSTL's cost). With it the paper's CASIA-B model costs about 51.65 GFLOPs for a
30-frame 64 x 44 sequence (25.8 G multiply-adds), the paper's ~51.7 GFLOPs.
Counting one FLOP per multiply-add would give half that.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from math import prod

import torch
from torch import nn

from hstl_core.model.layers import SeparateBNNecks, SeparateFCs


@dataclass(frozen=True)
class SummaryRow:
    """One top-level module: name, class, output shape (the first output of a
    module returning a tuple, e.g. ``SeparateBNNecks``' features), parameters, FLOPs."""

    name: str
    kind: str
    output_shape: tuple[int, ...]
    params: int
    flops: int


@dataclass
class ModelSummary:
    """Rows in registration order plus totals; ``str()`` is a printable table."""

    input_shape: tuple[int, ...]
    rows: list[SummaryRow] = field(default_factory=list)

    @property
    def total_params(self) -> int:
        return sum(row.params for row in self.rows)

    @property
    def total_flops(self) -> int:
        return sum(row.flops for row in self.rows)

    def __str__(self) -> str:
        header = f"{'module':<10} {'type':<17} {'output shape':<24} {'params':>12} {'GFLOPs':>9}"
        lines = [f"input {list(self.input_shape)}; FLOPs = 2 x multiply-adds", header, "-" * len(header)]
        for row in self.rows:
            lines.append(
                f"{row.name:<10} {row.kind:<17} {str(list(row.output_shape)):<24} "
                f"{row.params:>12,} {row.flops / 1e9:>9.3f}"
            )
        lines.append("-" * len(header))
        lines.append(f"{'total':<10} {'':<17} {'':<24} {self.total_params:>12,} {self.total_flops / 1e9:>9.3f}")
        return "\n".join(lines)


def layer_flops(module: nn.Module, inputs: tuple, output: torch.Tensor) -> int:
    """FLOPs (2 per multiply-add) of one leaf layer call, from its shapes; 0 if not counted."""
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        per_output = module.in_channels // module.groups * prod(module.kernel_size)
        return 2 * output.numel() * per_output
    if isinstance(module, nn.Linear):
        return 2 * output.numel() * module.in_features
    if isinstance(module, SeparateFCs):
        return 2 * output.numel() * module.fc_bin.shape[1]
    if isinstance(module, SeparateBNNecks):
        return 2 * output[1].numel() * module.fc_bin.shape[1]
    return 0


@torch.no_grad()
def summary(model: nn.Module, input_shape: tuple[int, ...] = (1, 30, 64, 44)) -> ModelSummary:
    """Run one eval-mode forward on zeros of ``input_shape`` and count per top-level module.

    The model's train/eval mode is restored afterwards. Buffers are not parameters.
    """
    result = ModelSummary(input_shape=tuple(input_shape))
    flops: dict[str, int] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    handles = []

    def count(top: str):
        def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            flops[top] = flops.get(top, 0) + layer_flops(module, inputs, output)

        return hook

    def shape(top: str):
        def hook(_module: nn.Module, _inputs: tuple, output: torch.Tensor | tuple) -> None:
            shapes[top] = tuple((output[0] if isinstance(output, tuple) else output).shape)

        return hook

    for top, child in model.named_children():
        handles.append(child.register_forward_hook(shape(top)))
        for module in child.modules():
            handles.append(module.register_forward_hook(count(top)))
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        model(torch.zeros(input_shape, device=device))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    for top, child in model.named_children():
        result.rows.append(
            SummaryRow(
                name=top,
                kind=type(child).__name__,
                output_shape=shapes.get(top, ()),
                params=sum(p.numel() for p in child.parameters()),
                flops=flops.get(top, 0),
            )
        )
    return result
