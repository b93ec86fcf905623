"""Forward and training-step speed of HSTL on this machine, per config.

Prints, for the small CPU config and (when a GPU is present, or with --paper) the
paper's CASIA-B config: analytic GFLOPs per sequence, seconds per forward of a batch,
seconds per training step (forward, both losses, backward, Adam step), and the
achieved GFLOP/s. Numbers are medians over repeated runs after a warm-up.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from hstl_core import build_model
from hstl_core.losses import LossAggregator
from hstl_core.model import summary

CONFIGS = {
    "small (CPU)": ({"model": "HSTL", "channels": [8, 16, 32], "class_num": 14, "input_height": 32}, (32, 20, 32, 22)),
    "paper CASIA-B": ({"model": "HSTL", "channels": [32, 64, 128], "class_num": 74}, (16, 30, 64, 44)),
}
LOSSES = [{"type": "TripletLoss", "margin": 0.2}, {"type": "CrossEntropyLoss", "scale": 1, "label_smooth": False}]


def timed(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def bench(name: str, model_cfg: dict, shape: tuple[int, ...], device: torch.device, repeats: int) -> None:
    model = build_model(model_cfg).to(device)
    gflops = summary(model, (1, *shape[1:])).total_flops / 1e9
    sils = torch.rand(shape, device=device)
    labels = torch.arange(shape[0], device=device) % (shape[0] // 4)
    losses = LossAggregator(LOSSES)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

    def forward() -> None:
        with torch.no_grad():
            model.eval()(sils)

    def train_step() -> None:
        model.train()
        total, _ = losses(model(sils), labels)
        optimizer.zero_grad()
        total.backward()
        optimizer.step()

    fwd, step = timed(forward, repeats), timed(train_step, repeats)
    batch = shape[0]
    print(
        f"{name:14s} {device.type:4s} batch {list(shape)}: {gflops:6.2f} GFLOPs/seq, "
        f"forward {fwd:6.3f} s ({batch * gflops / fwd:7.1f} GFLOP/s), train step {step:6.3f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--paper", action="store_true", help="also time the paper's config on a CPU (slow)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    for name, (model_cfg, shape) in CONFIGS.items():
        if name.startswith("paper") and device.type == "cpu" and not args.paper:
            print(f"{name:14s} skipped on a CPU (tens of seconds per step); pass --paper to time it")
            continue
        bench(name, model_cfg, shape, device, args.repeats)


if __name__ == "__main__":
    main()
