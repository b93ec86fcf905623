"""Other ways to compute one ARME layer, against what the model does (issue 9).

    python benchmarks/bench_conv_algorithms.py [--repeats 1] [--no-paper] [--profile]

ARME's second convolution of level 3 (``arme3.1``: c2 -> c2 channels on the four
regions [8, 32, 16, 8] of a 64-high map, T' = 10 frames after FTA) holds about
half of the model's convolution FLOPs. This times its forward + backward, on the
paper's model (8 clips, 128 channels, 64 x 44) and on the small CPU config (8
clips, 32 channels, 32 x 22, T' = 5), computed three ways that give the same
result:

* ``separate``: one ``Conv3d`` per region, as ``ARMEConv`` does;
* ``grouped``: the two equal-height regions (rows 0-8 and 56-64) stacked along
  channels into one grouped ``Conv3d`` (``groups=2``), the other two separate;
* ``winograd``: Winograd's F(2 x 2, 3 x 3) (Lavin & Gray, "Fast Algorithms for
  Convolutional Neural Networks", CVPR 2016) on each frame's 3 x 3 spatial kernel,
  the three temporal taps summed in one matrix product: 2.25x fewer multiplications
  than the direct convolution, paid for with tile transforms that are memory-bound.

Prints seconds (median), the ratio to ``separate`` and the largest difference from
it relative to its largest value; with ``--profile`` also each algorithm's forward
under ``torch.profiler``, by operator. The README's speed section quotes this table.
"""
from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
import torch.nn.functional as F

from bench_speed import timed

LAYERS = {
    "paper": {"batch": 8, "channels": 128, "frames": 10, "splits": [8, 32, 16, 8], "width": 44},
    "small": {"batch": 8, "channels": 32, "frames": 5, "splits": [4, 16, 8, 4], "width": 22},
}

B_T = torch.tensor([[1.0, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]])
"""Winograd F(2, 3) input transform: a 4-sample tile -> 4 transformed samples."""
G = torch.tensor([[1.0, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])
"""Winograd F(2, 3) kernel transform: 3 taps -> 4."""
A_T = torch.tensor([[1.0, 1, 1, 0], [0, 1, -1, -1]])
"""Winograd F(2, 3) output transform: 4 products -> 2 outputs."""


def combine(parts: list[torch.Tensor], matrix: torch.Tensor) -> torch.Tensor:
    """``[rows, *parts[0].shape]``: row r is ``sum_k matrix[r, k] * parts[k]`` (zeros skipped)."""
    rows = []
    for coefficients in matrix.tolist():
        row = None
        for c, part in zip(coefficients, parts):
            if c:
                term = part if c == 1 else c * part
                row = term if row is None else row + term
        rows.append(row)
    return torch.stack(rows)


def winograd_conv3d(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``F.conv3d(x, weight, padding=1)`` by Winograd F(2 x 2, 3 x 3) per temporal tap.

    ``x`` ``[n, ci, t, h, w]`` with even ``h`` and ``w``, ``weight`` ``[co, ci, 3, 3, 3]``;
    returns ``[n, co, t, h, w]``. Each output 2 x 2 tile comes from a 4 x 4 input tile
    (stride 2): ``V = B^T d B`` per input tile, ``U = G g G^T`` per kernel, 16
    matrix products ``U @ V`` over channels and the 3 frames of each temporal window,
    and ``A^T M A`` back to the 2 x 2 outputs. Autograd differentiates every step, so
    the backward runs in the Winograd domain as well.
    """
    n, ci, t, h, w = x.shape
    co = weight.shape[0]
    padded = F.pad(x, (1, 1, 1, 1, 1, 1))
    rows = combine([padded[..., k:k + h:2, :] for k in range(4)], B_T)
    tiles = combine([rows[..., k:k + w:2] for k in range(4)], B_T)
    th, tw = h // 2, w // 2
    frames = tiles.permute(1, 0, 2, 4, 3, 5, 6).reshape(16, n, t + 2, ci, th * tw)
    windows = frames.unfold(2, 3, 1).permute(0, 1, 2, 5, 3, 4).reshape(16, n * t, 3 * ci, th * tw)
    kernels = torch.einsum("ak,oitkl,bl->aboti", G, weight, G).reshape(16, co, 3 * ci)
    products = torch.matmul(kernels[:, None], windows).reshape(4, 4, n, t, co, th, tw)
    out_rows = combine(list(products), A_T)
    outputs = combine(list(out_rows.movedim(1, 0)), A_T)
    return outputs.permute(2, 4, 3, 5, 1, 6, 0).reshape(n, co, t, h, w)


def separate(x: torch.Tensor, weights: list[torch.Tensor], splits: list[int]) -> torch.Tensor:
    """What ``ARMEConv`` does: one padded convolution per region, stacked along height."""
    return torch.cat([F.conv3d(r, wt, padding=1) for r, wt in zip(x.split(splits, dim=3), weights)], dim=3)


def grouped(x: torch.Tensor, weights: list[torch.Tensor], splits: list[int]) -> torch.Tensor:
    """The first and last regions (equal heights) in one ``groups=2`` convolution."""
    regions = x.split(splits, dim=3)
    c = x.shape[1]
    ends = F.conv3d(torch.cat([regions[0], regions[-1]], dim=1), torch.cat([weights[0], weights[-1]]), padding=1, groups=2)
    middle = [F.conv3d(r, wt, padding=1) for r, wt in zip(regions[1:-1], weights[1:-1])]
    return torch.cat([ends[:, :c], *middle, ends[:, c:]], dim=3)


def winograd(x: torch.Tensor, weights: list[torch.Tensor], splits: list[int]) -> torch.Tensor:
    """Winograd per region (each region keeps its own zero padding)."""
    return torch.cat([winograd_conv3d(r, wt) for r, wt in zip(x.split(splits, dim=3), weights)], dim=3)


def profile_forward(algorithm: Callable, x: torch.Tensor, weights: list[torch.Tensor], splits: list[int]) -> None:
    """Print the five operators with the most own time in one forward of ``algorithm``."""
    with torch.no_grad():
        algorithm(x, weights, splits)
        with torch.profiler.profile() as profiler:
            algorithm(x, weights, splits)
    events = sorted(profiler.key_averages(), key=lambda event: -event.self_cpu_time_total)
    total = sum(event.self_cpu_time_total for event in events) / 1e6
    top = ", ".join(f"{event.key} {event.self_cpu_time_total / 1e6:.3f}" for event in events[:5])
    print(f"      forward {total:.3f} s: {top}", flush=True)


def bench_layer(name: str, repeats: int, profiled: bool) -> None:
    """Print one row per algorithm for the layer ``LAYERS[name]``."""
    layer = LAYERS[name]
    torch.manual_seed(0)
    c, splits = layer["channels"], layer["splits"]
    x = torch.rand(layer["batch"], c, layer["frames"], sum(splits), layer["width"]).requires_grad_()
    weights = [(torch.randn(c, c, 3, 3, 3) / (27 * c) ** 0.5).requires_grad_() for _ in splits]
    reference = separate(x, weights, splits).detach()
    flops = 3 * 2 * reference.numel() * c * 27
    base = None
    for algorithm in (separate, grouped, winograd):
        def step(algorithm: Callable = algorithm) -> None:
            algorithm(x, weights, splits).sum().backward()

        seconds = timed(step, repeats, x.device)
        base = base or seconds
        with torch.no_grad():
            error = ((algorithm(x, weights, splits) - reference).abs().max() / reference.abs().max()).item()
        print(f"{name:5} {algorithm.__name__:9} {seconds:8.3f} {base / seconds:7.2f}x {flops / seconds / 1e9:12.1f} {error:10.1e}",
              flush=True)
        if profiled:
            profile_forward(algorithm, x.detach(), [w.detach() for w in weights], splits)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=1, help="timed runs per algorithm (after one untimed)")
    parser.add_argument("--no-paper", action="store_true", help="only the small config's layer")
    parser.add_argument("--profile", action="store_true", help="also profile each algorithm's forward")
    args = parser.parse_args()
    print(f"arme3.1 forward + backward, {torch.get_num_threads()} threads, torch {torch.__version__}")
    print(f"{'layer':5} {'algorithm':9} {'seconds':>8} {'speed-up':>8} {'GFLOP/s*':>12} {'rel. diff':>10}")
    for name in ("small",) if args.no_paper else ("small", "paper"):
        bench_layer(name, args.repeats, args.profile)
    print("* GFLOP/s of the direct convolution's FLOPs (3 x forward) over each algorithm's time")


if __name__ == "__main__":
    main()
